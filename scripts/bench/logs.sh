#!/usr/bin/env bash
# Log benchmark: rcluster against pm2 and the writer alone, side by side in one run (issue #6,
# PRODUCT.md §11 and its Corrections: time for 400k lines to reach the files ≤ 1.3× the
# writer-alone floor, ≥ 4× less daemon CPU per line than pm2, 0 lost or cut, timestamps on).
#
# Usage, from the repo root:  bash scripts/bench/logs.sh
# It builds rcluster (release; retried once a minute later if the tree is mid-edit) and measures a
# copy of the binary, installs pm2 from npm into scripts/bench/.cache/ (never global; the pm2
# column is skipped, with the reason printed, if node or npm is missing or npm cannot be reached),
# runs both daemons in private temp homes, prints a Markdown table and writes it into
# docs/benchmarks.md under "## Logs (scripts/bench/logs.sh)", keeping the other sections.
#
# Knobs (environment): PM2_VERSION (default 7.0.4, the version PRODUCT.md measured), BENCH_LINES
# (400000), BENCH_ROUNDS (3), BENCH_NO_DOCS=1 (print only), RCLUSTER_BIN=<path> (measure that
# binary instead of building; the report says so), BENCH_KEEP=1 (keep the work directory: daemon
# logs, raw results).
#
# Only processes this script started are ended: the measuring helper by pid, then `rcluster kill`
# and `pm2 kill` with their private homes, then SIGKILL by recorded pid:starttime of any daemon or
# descendant of theirs still alive. The set-up shared with the other bench scripts (process
# helpers, cleanup, build, pm2) is in scripts/bench/lib/common.sh.

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
SECTION="## Logs (scripts/bench/logs.sh)"

say() { printf '[logs.sh] %s\n' "$*" >&2; }

command -v python3 >/dev/null || die "python3 is required (it is the writer)"

bench_init logs

# ------------------------------------------------------------------ rcluster, pm2

build_rcluster
install_pm2 # without node, PM2_SKIP says so: the writer is Python, only pm2 needs node
[[ -z $PM2_SKIP ]] || say "pm2 column skipped: $PM2_SKIP"

# ------------------------------------------------------------------ daemons up, then measure

rc ping >/dev/null || die "rcluster ping failed"
if [[ -n $PM2 ]]; then
    pm2 ping >/dev/null 2>&1 || die "pm2 ping failed"
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average: $LOAD_BEFORE"
META=$(M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" \
    M_NPROC=$(nproc) M_CPU=$(cpu_model) M_COMMIT=$COMMIT \
    M_RC_VERSION=$RC_VERSION M_PM2_VERSION=${PM2_VER:-} \
    M_NODE=$(node --version 2>/dev/null || echo none) M_PYTHON="$(python3 --version 2>&1)" M_LOAD=$LOAD_BEFORE \
    python3 -c '
import json, os
keys = {"date": "M_DATE", "machine": "M_MACHINE", "nproc": "M_NPROC", "cpu": "M_CPU", "commit": "M_COMMIT",
        "rcluster_version": "M_RC_VERSION", "pm2_version": "M_PM2_VERSION", "node_version": "M_NODE",
        "python_version": "M_PYTHON", "loadavg": "M_LOAD"}
print(json.dumps({k: os.environ.get(v, "") for k, v in keys.items()}))
')

args=(--rcluster "$RC" --rcluster-home "$RC_HOME" --workdir "$WORK/runs"
      --lines "${BENCH_LINES:-400000}" --rounds "${BENCH_ROUNDS:-3}" --meta "$META"
      --json-out "$WORK/results.json")
if [[ -n $PM2 ]]; then
    args+=(--pm2 "$PM2" --pm2-home "$PM2_HOME_DIR")
else
    args+=(--pm2-skip "$PM2_SKIP")
fi
# In the background (run_helper), so that a signal reaches the trap at once.
run_helper python3 "$BENCH_DIR/logs/bench.py" "${args[@]}" >"$WORK/section.md" || die "the measurements failed (see above)"

publish_section
