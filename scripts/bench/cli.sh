#!/usr/bin/env bash
# CLI and daemon benchmark: rcluster against pm2, side by side in one run (PRODUCT.md §11).
#
#   1. `jlist` wall time with 4 idle instances in each          (target ≥ 50× faster, aim 100×)
#   2. idle daemon RSS after serving clients                    (target ≤ 5 MiB)
#   3. start 50 instances until all are online                  (target ≤ 0.1 s)
#   4. kill -9 → replacement running the program               (target ≥ 3× faster than pm2)
#
# Usage, from the repo root:  bash scripts/bench/cli.sh
# It builds rcluster (release; retried once a minute later if the tree is mid-edit) and measures a
# copy of the binary, installs pm2 from npm into scripts/bench/.cache/ (never global; the pm2
# columns are skipped, with the reason printed, if npm cannot be reached), runs both daemons in
# private temp homes, prints a Markdown table and writes it into docs/benchmarks.md under
# "## CLI and daemon (scripts/bench/cli.sh)", keeping the other sections.
#
# Knobs (environment): PM2_VERSION (default 7.0.4, the version PRODUCT.md measured; "latest"
# works), BENCH_RUNS (jlist runs, 30), BENCH_KILLS (kill -9 trials, 20), BENCH_ROUNDS (start -i 50
# rounds, 3), BENCH_NO_DOCS=1 (print only, leave docs/benchmarks.md alone), RCLUSTER_BIN=<path>
# (measure that binary instead of building; the report says so), BENCH_KEEP=1 (keep the work
# directory: daemon logs, raw results).
#
# Only processes this script started are ended: the measuring helper by pid, then `rcluster kill`
# and `pm2 kill` with their private homes, then SIGKILL by recorded pid:starttime of any daemon or
# descendant of theirs still alive. The set-up shared with the other bench scripts (process
# helpers, cleanup, build, pm2) is in scripts/bench/lib/common.sh.

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
SECTION="## CLI and daemon (scripts/bench/cli.sh)"
HELPER_GRACE=70 # clibench.py unwinds on SIGTERM, waiting up to 60 s for the node processes it spawned

say() { printf '[cli.sh] %s\n' "$*" >&2; }

for tool in python3 node; do
    command -v "$tool" >/dev/null || die "$tool is required (node runs the idle instances of both managers)"
done

bench_init cli

# ------------------------------------------------------------------ rcluster, pm2

build_rcluster
install_pm2
[[ -z $PM2_SKIP ]] || say "pm2 columns skipped: $PM2_SKIP"

# ------------------------------------------------------------------ measure

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average: $LOAD_BEFORE"

args=(--workdir "$WORK/apps" --rcluster "$RC" --rcluster-home "$RC_HOME" --out "$WORK/results.json"
      --runs "${BENCH_RUNS:-30}" --kills "${BENCH_KILLS:-20}" --rounds "${BENCH_ROUNDS:-3}")
[[ -z $PM2 ]] || args+=(--pm2 "$PM2" --pm2-home "$PM2_HOME_DIR")
# In the background (run_helper), so that a signal reaches the trap at once; the trap ends it first.
run_helper python3 "$LIB/clibench.py" "${args[@]}" || die "the measurements failed (see above)"

# ------------------------------------------------------------------ report

M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=$(cpu_model) M_COMMIT=$COMMIT M_RC_VERSION=$RC_VERSION \
M_PM2_VERSION=${PM2_VER:-} M_PM2_SKIP=$PM2_SKIP M_NODE=$(node --version) M_LOAD=$LOAD_BEFORE \
python3 -c '
import json, os, sys
keys = {"date": "M_DATE", "machine": "M_MACHINE", "nproc": "M_NPROC", "cpu": "M_CPU", "commit": "M_COMMIT",
        "rcluster_version": "M_RC_VERSION", "pm2_version": "M_PM2_VERSION", "pm2_skip": "M_PM2_SKIP",
        "node_version": "M_NODE", "loadavg": "M_LOAD"}
json.dump({k: os.environ.get(v, "") for k, v in keys.items()}, open(sys.argv[1], "w"))
' "$WORK/meta.json"
python3 "$LIB/clireport.py" "$WORK/results.json" "$WORK/meta.json" >"$WORK/section.md"

publish_section
