#!/usr/bin/env bash
# Fork-mode benchmark (issue #16): pm2's commonest setup, one instance of a server that binds a
# fixed port itself, no flags. rcluster and pm2 side by side in one run:
#   1. reloads under load: a Python server (scripts/bench/fork/server.py) and an Express 5 app
#      (scripts/bench/fork/express.js, `app.listen(PORT, cb)`), each `start`ed with only its port
#      as argument under each manager; for each (manager, app) in turn, a steady load on its port
#      (scripts/bench/reload/load.py: `Connection: close` and keep-alive workers, an exact outcome
#      for every request) while the manager reloads it BENCH_RELOADS times back to back; after each
#      reload, the port is polled until the manager's new pid answers. Reported: requests served,
#      failed requests, refused connections, keep-alive resends, new pid serving after each reload.
#   2. what keeping the port costs at steady state: scripts/bench/reload/hello.js (plain Node http)
#      direct, under rcluster in fork mode (the daemon holds the port, the program accepts on it),
#      under rcluster with `-i 1 --exec-mode cluster` (the daemon accepts and deals each
#      connection), and under pm2 in fork mode; wrk with `Connection: close` then keep-alive, and
#      the manager daemon's CPU time (utime+stime from /proc) per request.
# The driver is scripts/bench/fork/bench.py.
#
# Usage, from the repo root:  bash scripts/bench/fork.sh
# It builds rcluster (release; retried once a minute later if the tree is mid-edit) and measures a
# copy of the binary, installs pm2 with npm into scripts/bench/.cache/ (never global) unless
# PM2_BIN names one, and finds Express 5 in NODE_PATH or EXPRESS_MODULES (a node_modules folder),
# else installs it with npm into scripts/bench/.cache/express-5; the Express rows are skipped,
# with the reason printed, when it cannot. pm2's rows are skipped likewise. It prints Markdown
# and writes it into docs/benchmarks.md under "## Fork mode: one-instance reload
# (scripts/bench/fork.sh)", keeping other sections.
#
# Knobs (environment): BENCH_RELOADS (3), BENCH_CLOSE_CONNS (2), BENCH_KEEPALIVE_CONNS (4),
# BENCH_TIMEOUT (seconds before a request counts as failed, 10), BENCH_THREADS (2), BENCH_CONNS
# (32), BENCH_DURATION (seconds per wrk run, 10), BENCH_WARMUP (seconds, 2), BENCH_ROUNDS (3: the
# cost rows run interleaved this many times, the best round of each is shown), PM2_VERSION (7.0.4),
# PM2_BIN=<path> (use that pm2), EXPRESS_MODULES=<node_modules folder>, RCLUSTER_BIN=<path>
# (measure that binary instead of building), BENCH_NO_DOCS=1 (print only), BENCH_KEEP=1 (keep the
# work directory: daemon logs, raw results).
#
# Only processes this script started are ended: the helper by pid, then `rcluster kill` and
# `pm2 kill` with their private homes, then SIGKILL by recorded pid:starttime of anything left
# (the daemons and their descendants, the load generator, the direct server).
# Loopback only: every server binds 127.0.0.1 and every client connects to it.
# The set-up shared with the other bench scripts (process helpers, cleanup, build, pm2) is in
# scripts/bench/lib/common.sh.

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
HERE=$BENCH_DIR/fork
SECTION="## Fork mode: one-instance reload (scripts/bench/fork.sh)"
RELOADS=${BENCH_RELOADS:-3}
CLOSE_CONNS=${BENCH_CLOSE_CONNS:-2}
KA_CONNS=${BENCH_KEEPALIVE_CONNS:-4}
TIMEOUT=${BENCH_TIMEOUT:-10}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-32}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}

say() { printf '[fork.sh] %s\n' "$*" >&2; }

for v in "$RELOADS" "$TIMEOUT" "$THREADS" "$CONNS" "$DURATION" "$WARMUP" "$ROUNDS"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "BENCH_RELOADS, BENCH_TIMEOUT, BENCH_THREADS, BENCH_CONNS, BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS must be whole numbers > 0"
done
for v in "$CLOSE_CONNS" "$KA_CONNS"; do [[ $v =~ ^[0-9]+$ ]] || die "BENCH_*_CONNS must be whole numbers"; done
((CLOSE_CONNS + KA_CONNS > 0)) || die "no load: BENCH_CLOSE_CONNS and BENCH_KEEPALIVE_CONNS are both 0"

bench_init fork
PIDS=$WORK/pids # pid:starttime of every process started here (the cleanup reads it)
RESULTS=$WORK/results.jsonl
: >"$PIDS"
: >"$RESULTS"

# The Python helper, in the background (run_helper) so that a signal runs the cleanup at once.
helper() { run_helper python3 "$HERE/bench.py" "$@"; }

# ------------------------------------------------------------------ tools, rcluster, pm2, Express

need_tools python3 node wrk
build_rcluster
install_pm2
[[ -z $PM2_SKIP ]] || say "pm2 rows skipped: $PM2_SKIP"

# Express 5: a node_modules folder with it, or an npm install into the cache.
has_express5() { [[ -f $1/express/package.json ]] && grep -q '"version": *"5\.' "$1/express/package.json"; }
EXPRESS=""
NODE_PATHS=${NODE_PATH:-}
for dir in ${EXPRESS_MODULES:-} ${NODE_PATHS//:/ }; do
    if has_express5 "$dir"; then EXPRESS=$(realpath "$dir"); break; fi
done
if [[ -z $EXPRESS ]]; then
    if has_express5 "$CACHE/express-5/node_modules"; then
        EXPRESS=$CACHE/express-5/node_modules
    elif command -v npm >/dev/null; then
        say "installing express@5 into ${CACHE#"$ROOT"/}/express-5 (npm, not global)"
        mkdir -p "$CACHE/express-5"
        if timeout 300 npm install --prefix "$CACHE/express-5" --no-save --no-audit --no-fund \
                --loglevel=error express@5 >&2 && has_express5 "$CACHE/express-5/node_modules"; then
            EXPRESS=$CACHE/express-5/node_modules
        fi
    fi
fi
[[ -n $EXPRESS ]] || say "Express rows skipped: no Express 5 (set EXPRESS_MODULES, or let npm install it)"

# ------------------------------------------------------------------ measure

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
read -r -a PORTS < <(python3 "$HERE/bench.py" ports 10)
M_RC_BIN=$RC M_RC_HOME=$RC_HOME M_PM2_BIN=$([[ -z $PM2_SKIP ]] && echo "$PM2" || true) M_PM2_HOME=$PM2_HOME_DIR \
M_EXPRESS=$EXPRESS M_PORTS="${PORTS[*]}" M_RELOADS=$RELOADS M_CLOSE=$CLOSE_CONNS M_KA=$KA_CONNS M_TIMEOUT=$TIMEOUT \
M_THREADS=$THREADS M_CONNS=$CONNS M_DURATION=$DURATION M_WARMUP=$WARMUP M_ROUNDS=$ROUNDS M_RESULTS=$RESULTS M_PIDS=$PIDS \
M_BENCH=$BENCH_DIR python3 - >"$WORK/conf.json" <<'EOF'
import json, os
e = os.environ
managers = {"rcluster": {"bin": e["M_RC_BIN"], "home": e["M_RC_HOME"]}}
if e["M_PM2_BIN"]:
    managers["pm2"] = {"bin": e["M_PM2_BIN"], "home": e["M_PM2_HOME"]}
print(json.dumps({"managers": managers, "express": e["M_EXPRESS"], "ports": [int(p) for p in e["M_PORTS"].split()],
                  "reloads": int(e["M_RELOADS"]), "close": int(e["M_CLOSE"]), "keepalive": int(e["M_KA"]),
                  "timeout": float(e["M_TIMEOUT"]), "threads": int(e["M_THREADS"]), "conns": int(e["M_CONNS"]),
                  "duration": int(e["M_DURATION"]), "warmup": int(e["M_WARMUP"]), "rounds": int(e["M_ROUNDS"]),
                  "results": e["M_RESULTS"],
                  "pids": e["M_PIDS"], "bench_dir": e["M_BENCH"]}))
EOF
helper run "$WORK/conf.json" || die "the measurement failed"

# ------------------------------------------------------------------ report

M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=$(cpu_model) M_COMMIT=$COMMIT M_RC_VERSION=$RC_VERSION M_PM2_VERSION=$([[ -n $PM2_SKIP ]] || echo "${PM2_VER:-}") \
M_PM2_SKIP=$PM2_SKIP M_NODE=$(node --version) M_PYTHON="$(python3 --version 2>&1)" M_LOAD=$LOAD_BEFORE \
M_LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)" M_RELOADS=$RELOADS M_CLOSE=$CLOSE_CONNS M_KA=$KA_CONNS \
M_THREADS=$THREADS M_CONNS=$CONNS M_DURATION=$DURATION M_WARMUP=$WARMUP M_ROUNDS=$ROUNDS \
python3 - >"$WORK/meta.json" <<'EOF'
import json, os
e = os.environ
print(json.dumps({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "nproc": e["M_NPROC"], "cpu": e["M_CPU"],
    "commit": e["M_COMMIT"], "rc_version": e["M_RC_VERSION"], "pm2_version": e["M_PM2_VERSION"],
    "pm2_skip": e["M_PM2_SKIP"], "node": e["M_NODE"], "python": e["M_PYTHON"], "loadavg": e["M_LOAD"],
    "loadavg_after": e["M_LOAD_AFTER"], "reloads": int(e["M_RELOADS"]), "close": int(e["M_CLOSE"]),
    "keepalive": int(e["M_KA"]), "threads": int(e["M_THREADS"]), "conns": int(e["M_CONNS"]),
    "duration": int(e["M_DURATION"]), "warmup": int(e["M_WARMUP"]), "rounds": int(e["M_ROUNDS"]),
}))
EOF
python3 "$HERE/bench.py" report "$RESULTS" "$WORK/meta.json" >"$WORK/section.md"

publish_section
