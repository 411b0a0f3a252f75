#!/usr/bin/env bash
# CLI and daemon benchmark: rcluster against pm2, side by side in one run (PRODUCT.md §11).
#
#   1. `jlist` wall time with 4 idle instances in each          (target ≥ 50× faster, aim 100×)
#   2. idle daemon RSS after serving clients                    (target ≤ 5 MiB)
#   3. start 50 instances until all are online                  (target ≤ 0.1 s)
#   4. kill -9 → replacement running the program               (target ≥ 3× faster than pm2)
#
# Usage, from the repo root:  bash scripts/bench/cli.sh
# It builds rcluster (release), installs pm2 from npm into scripts/bench/.cache/ (never global;
# the pm2 columns are skipped, with the reason printed, if npm cannot be reached), runs both
# daemons in private temp homes, prints a Markdown table and writes it into docs/benchmarks.md
# under "## CLI and daemon (scripts/bench/cli.sh)", keeping the other sections.
#
# Knobs (environment): PM2_VERSION (default 7.0.4, the version PRODUCT.md measured; "latest"
# works), BENCH_RUNS (jlist runs, 30), BENCH_KILLS (kill -9 trials, 20), BENCH_ROUNDS (start -i 50
# rounds, 3), BENCH_NO_DOCS=1 (print only, leave docs/benchmarks.md alone), RCLUSTER_BIN=<path>
# (measure that binary instead of building; the report says so).
#
# Only processes this script started are ended, by pid: `rcluster kill` and `pm2 kill` with their
# private homes, then SIGKILL of any daemon or instance of theirs still alive.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_DIR=$ROOT/scripts/bench
LIB=$BENCH_DIR/lib
CACHE=$BENCH_DIR/.cache
DOC=$ROOT/docs/benchmarks.md
SECTION="## CLI and daemon (scripts/bench/cli.sh)"
PM2_VERSION=${PM2_VERSION:-7.0.4}

say() { printf '[cli.sh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in python3 node; do
    command -v "$tool" >/dev/null || die "$tool is required (node runs the idle instances of both managers)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcluster-bench-cli.XXXXXX")
RC_HOME=$WORK/rcluster-home
PM2_HOME_DIR=$WORK/pm2-home
mkdir -p "$RC_HOME" "$PM2_HOME_DIR"
RC=$ROOT/target/release/rcluster
PM2=""
BENCH_PID=""

# ------------------------------------------------------------------ cleanup

# "pid:starttime" of a live (not zombie) process, so that a pid reused later is never signalled.
proc_id() {
    local pid=$1 rest
    [[ -r /proc/$pid/stat ]] || return 1
    rest=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
    set -- $rest
    [[ $1 != Z && $1 != X ]] || return 1
    echo "$pid:${20}"
}

daemon_and_children() {
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(head -n1 "$pidfile" | tr -dc '0-9')
    [[ -n $pid ]] || return 0
    proc_id "$pid" || return 0
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do proc_id "$c" || true; done
}

cleanup() {
    local status=$? ids=() id
    trap - EXIT INT TERM
    if [[ -n $BENCH_PID ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true  # it ends what it spawned itself, then exits
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    mapfile -t ids < <(daemon_and_children "$RC_HOME/daemon.lock"; daemon_and_children "$PM2_HOME_DIR/pm2.pid")
    if [[ -x $RC && -e $RC_HOME/daemon.lock ]]; then
        RCLUSTER_HOME=$RC_HOME timeout 30 "$RC" kill >/dev/null 2>&1 || say "rcluster kill failed"
    fi
    if [[ -n $PM2 && -e $PM2_HOME_DIR/pm2.pid ]]; then
        PM2_HOME=$PM2_HOME_DIR timeout 30 "$PM2" kill >/dev/null 2>&1 || say "pm2 kill failed"
    fi
    for id in "${ids[@]}"; do
        [[ -n $id ]] || continue
        if [[ $(proc_id "${id%%:*}" 2>/dev/null) == "$id" ]]; then
            say "SIGKILL to ${id%%:*}, still alive after the managers' kill"
            kill -9 "${id%%:*}" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ rcluster

# The commit measured, taken before the build; "+ uncommitted changes" when the sources differ.
commit=$(git -C "$ROOT" rev-parse -q --verify --short=12 HEAD 2>/dev/null || echo "none (no commit yet)")
[[ -z $(git -C "$ROOT" status --porcelain -- src preload build.rs Cargo.toml Cargo.lock 2>/dev/null) ]] ||
    commit="$commit + uncommitted changes"
[[ -z ${RCLUSTER_BIN:-} ]] || commit="$commit (prebuilt binary $RCLUSTER_BIN, not built by this run)"

if [[ -n ${RCLUSTER_BIN:-} ]]; then
    RC=$(realpath "$RCLUSTER_BIN")
    [[ -x $RC ]] || die "RCLUSTER_BIN=$RCLUSTER_BIN is not an executable"
    say "using the prebuilt $RC (RCLUSTER_BIN), no build"
else
    command -v cargo >/dev/null || die "cargo is required to build rcluster (or set RCLUSTER_BIN)"
    say "building rcluster (cargo build --release)"
    cargo build --release --quiet --bin rcluster || die "cargo build --release failed"
    [[ -x $RC ]] || die "no $RC after the build"
fi

# ------------------------------------------------------------------ pm2

PM2_SKIP=""
PM2_PREFIX=$CACHE/pm2-$PM2_VERSION
pm2_pkg=$PM2_PREFIX/node_modules/pm2/package.json
if [[ ! -f $pm2_pkg || $PM2_VERSION == latest ]]; then
    if ! command -v npm >/dev/null; then
        PM2_SKIP="npm is not installed"
    else
        say "installing pm2@$PM2_VERSION into ${PM2_PREFIX#"$ROOT"/} (npm, not global)"
        mkdir -p "$PM2_PREFIX"
        if ! timeout 300 npm install --prefix "$PM2_PREFIX" --no-save --no-audit --no-fund \
                --loglevel=error --fetch-retries=1 --fetch-timeout=30000 "pm2@$PM2_VERSION" >&2; then
            PM2_SKIP="npm install pm2@$PM2_VERSION failed (registry unreachable?)"
            rm -rf "$PM2_PREFIX"
        fi
    fi
fi
if [[ -z $PM2_SKIP ]]; then
    if [[ -f $pm2_pkg && -x $PM2_PREFIX/node_modules/.bin/pm2 ]]; then
        PM2=$PM2_PREFIX/node_modules/.bin/pm2
        PM2_VER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pm2_pkg")
    else
        PM2_SKIP="pm2 not found in $PM2_PREFIX after npm install"
    fi
fi
[[ -z $PM2_SKIP ]] || say "pm2 columns skipped: $PM2_SKIP"

# ------------------------------------------------------------------ measure

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average: $LOAD_BEFORE"

args=(--workdir "$WORK/apps" --rcluster "$RC" --rcluster-home "$RC_HOME" --out "$WORK/results.json"
      --runs "${BENCH_RUNS:-30}" --kills "${BENCH_KILLS:-20}" --rounds "${BENCH_ROUNDS:-3}")
[[ -z $PM2 ]] || args+=(--pm2 "$PM2" --pm2-home "$PM2_HOME_DIR")
# In the background, so that a signal reaches the trap at once (bash runs traps only between
# foreground commands); the trap ends it first.
python3 "$LIB/clibench.py" "${args[@]}" &
BENCH_PID=$!
wait "$BENCH_PID" || die "the measurements failed (see above)"
BENCH_PID=""

# ------------------------------------------------------------------ report

cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=${cpu:-unknown CPU} M_COMMIT=$commit M_RC_VERSION=$("$RC" --version 2>/dev/null | awk '{print $NF}') \
M_PM2_VERSION=${PM2_VER:-} M_PM2_SKIP=$PM2_SKIP M_NODE=$(node --version) M_LOAD=$LOAD_BEFORE \
python3 -c '
import json, os, sys
keys = {"date": "M_DATE", "machine": "M_MACHINE", "nproc": "M_NPROC", "cpu": "M_CPU", "commit": "M_COMMIT",
        "rcluster_version": "M_RC_VERSION", "pm2_version": "M_PM2_VERSION", "pm2_skip": "M_PM2_SKIP",
        "node_version": "M_NODE", "loadavg": "M_LOAD"}
json.dump({k: os.environ.get(v, "") for k, v in keys.items()}, open(sys.argv[1], "w"))
' "$WORK/meta.json"
python3 "$LIB/clireport.py" "$WORK/results.json" "$WORK/meta.json" >"$WORK/section.md"

echo
echo "$SECTION"
echo
cat "$WORK/section.md"
if [[ ${BENCH_NO_DOCS:-} != 1 ]]; then
    python3 "$LIB/mdsection.py" "$DOC" "$SECTION" <"$WORK/section.md"
    say "wrote ${DOC#"$ROOT"/}"
fi
