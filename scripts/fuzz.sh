#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer; docs/fuzzing.md) for SECONDS each, one
# after the other, one process at a time (one core), and prints per target the executions, the
# executions per second and the coverage libFuzzer reports.
#
# Usage, from anywhere in the repo:  bash scripts/fuzz.sh [SECONDS]     (default 20)
# .ci/run runs it with 20 s per target. Needs a nightly toolchain and cargo-fuzz; without them it
# says so and exits 0 (FUZZ_REQUIRED=1 makes that an error). The build always uses nightly
# (`cargo +nightly`), never the default toolchain.
#
# New inputs go to a scratch corpus that is deleted at the end (FUZZ_KEEP=1 keeps it and prints
# where); the seeds in fuzz/corpus/<target>/seed-* are read, never written. Limits per input: 10 s
# (a hang), 256 MiB in one allocation and 2 GiB in all (an allocation that grows with a number in
# the input). A finding stops the script with exit 1 and its reproducer in fuzz/artifacts/<target>/:
# replay it with `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`. The C preload
# target (preload_c) runs when clang is installed (FUZZ_CLANG names it), and is skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: SECONDS must be a whole number > 0" >&2; exit 2; }

missing=""
rustup run nightly rustc --version >/dev/null 2>&1 || missing="a nightly toolchain (rustup toolchain install nightly)"
cargo fuzz --version >/dev/null 2>&1 || missing="${missing:+$missing and }cargo-fuzz (cargo install cargo-fuzz)"
if [[ -n $missing ]]; then
    echo "fuzz.sh: fuzzing skipped: it needs $missing"
    [[ ${FUZZ_REQUIRED:-} == 1 ]] && exit 1
    exit 0
fi

# preload_c compiles the C preload library with clang (libFuzzer's coverage of C is clang's).
features=()
clang=${FUZZ_CLANG:-}
if [[ -z $clang ]]; then
    for c in clang clang-{21..14}; do
        if command -v "$c" >/dev/null 2>&1; then clang=$c; break; fi
    done
fi
if [[ -n $clang ]]; then
    export FUZZ_CLANG=$clang
    features=(--features preload-c)
else
    echo "fuzz.sh: preload_c skipped: it needs clang (apt-get install clang)"
fi

echo "fuzz.sh: building the fuzz targets (cargo +nightly fuzz build)"
cargo +nightly fuzz build -O "${features[@]}"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/rcluster-fuzz.XXXXXX")
[[ ${FUZZ_KEEP:-} == 1 ]] || trap 'rm -rf "$scratch"' EXIT
status=0
for target in $(cargo +nightly fuzz list); do
    [[ $target != preload_c || -n $clang ]] || continue
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    log=$scratch/$target.log
    echo "fuzz.sh: $target for ${secs}s"
    if ! cargo +nightly fuzz run -O "${features[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz.sh: $target FOUND A FAULT (above); reproducer in fuzz/artifacts/$target/"
        status=1
        continue
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n1)
    echo "fuzz.sh: $target: $execs executions, $rate/s, $cov, 0 crashes"
done
[[ ${FUZZ_KEEP:-} != 1 ]] || echo "fuzz.sh: logs and corpus kept in $scratch"
exit "$status"
