#!/usr/bin/env bash
# Soak benchmark (issue #17, "Proof"): a million dealt connections and 500 `kill -9` of instances
# under load, rcluster and pm2 side by side in one run, watching the manager daemon for growth.
#
# The same unmodified hello-world Node server (scripts/bench/reload/hello.js: binds 127.0.0.1:PORT
# itself), 4 instances under each manager, both up for the whole run on their own ports:
#   rcluster start hello.js -i 4 -- PORT     (cluster mode, round-robin, port found by the preload)
#   pm2 start hello.js -i 4 -- PORT          (pm2 cluster mode)
# Then, one manager at a time (scripts/bench/soak/driver.py): wrk with `Connection: close` (each
# request one dealt connection) in chunks until BENCH_CONNS connections are served and
# BENCH_KILLS instances have been SIGKILLed (the oldest instance once all have run BENCH_GAP
# seconds, stopped a moment first to read which connections it holds), while the daemon's RSS,
# open fds and threads are sampled every second. Reported per manager: connections, kills,
# restarts, failed requests against what the killed instances held, refused connections, and the
# daemon's RSS/fds/threads at the start, the end and their maximum (target: flat).
#
# Usage, from the repo root:  bash scripts/bench/soak.sh     (about 10 minutes on 2 cores)
# It builds rcluster (release) and measures a copy of the binary, and installs pm2 with npm into
# scripts/bench/.cache/ (never global); pm2's column is skipped, with the reason, when it cannot
# be installed or started. It prints a Markdown table and writes it into docs/benchmarks.md under
# "## Soak (scripts/bench/soak.sh)", leaving every other section as it is.
#
# Knobs (environment): BENCH_CONNS (connections per manager, 1000000), BENCH_KILLS (per manager,
# 500), BENCH_GAP (seconds every instance has run before the next kill, 0.3), BENCH_MAX_SECONDS
# (cap of one manager's load, 270, so that a run stays near 10 minutes on a busy machine; the
# table shows a count short of its target), BENCH_WRK_THREADS (2), BENCH_WRK_CONNS (16),
# BENCH_PM2=0 (rcluster only), PM2_VERSION (7.0.4), RCLUSTER_BIN=<path> (measure that binary instead of
# building), BENCH_NO_DOCS=1 (print only), BENCH_KEEP=1 (keep the work directory).
#
# Only processes this script started are ended: the helper by pid, then `rcluster kill` and
# `pm2 kill` with their private homes, then SIGKILL by recorded pid:starttime of anything left.
# Loopback only. The set-up shared with the other bench scripts is in scripts/bench/lib/common.sh.

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
HERE=$BENCH_DIR/soak
SECTION="## Soak (scripts/bench/soak.sh)"
CONNS=${BENCH_CONNS:-1000000}
KILLS=${BENCH_KILLS:-500}
GAP=${BENCH_GAP:-0.3}
MAX_SECONDS=${BENCH_MAX_SECONDS:-270}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
WRK_CONNS=${BENCH_WRK_CONNS:-16}
INSTANCES=4
APP_NAME=hello

say() { printf '[soak.sh] %s\n' "$*" >&2; }

for v in "$CONNS" "$KILLS" "$MAX_SECONDS" "$WRK_THREADS" "$WRK_CONNS"; do
    [[ $v =~ ^[0-9]+$ ]] || die "BENCH_CONNS, BENCH_KILLS, BENCH_MAX_SECONDS, BENCH_WRK_* must be whole numbers"
done
[[ $GAP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_GAP must be a number of seconds"
((WRK_CONNS >= WRK_THREADS && WRK_THREADS > 0)) || die "BENCH_WRK_CONNS must be at least BENCH_WRK_THREADS (> 0)"

bench_init soak
PIDS=$WORK/pids
RESULTS=$WORK/results.jsonl
: >"$PIDS"
: >"$RESULTS"
HELPER_GRACE=80 # a phase ends its wrk chunk and joins its threads before exiting

need_tools python3 node wrk
build_rcluster
if [[ ${BENCH_PM2:-1} == 0 ]]; then
    PM2_SKIP="BENCH_PM2=0"
else
    install_pm2
fi
[[ -z $PM2_SKIP ]] || say "pm2 column skipped: $PM2_SKIP"

read -r P_RC P_PM2 < <(python3 "$HERE/driver.py" ports 2)
APP=$BENCH_DIR/reload/hello.js
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

say "starting $INSTANCES instances under rcluster (127.0.0.1:$P_RC)"
out=$(rc start "$APP" -i "$INSTANCES" --name "$APP_NAME" -- "$P_RC" 2>&1) || die "rcluster start failed: $out"
proc_id "$(head -n1 "$RC_HOME/daemon.lock" | tr -dc '0-9')" >>"$PIDS" || die "no rcluster daemon"
if [[ -z $PM2_SKIP ]]; then
    say "starting $INSTANCES instances under pm2 (127.0.0.1:$P_PM2)"
    if ! out=$(pm2 start "$APP" -i "$INSTANCES" --name "$APP_NAME" -- "$P_PM2" 2>&1); then
        PM2_SKIP="pm2 start -i $INSTANCES failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        say "pm2 column skipped: $PM2_SKIP"
    else
        proc_id "$(tr -dc '0-9' <"$PM2_HOME_DIR/pm2.pid")" >>"$PIDS" || true
    fi
fi

M_RC_BIN=$RC M_RC_HOME=$RC_HOME M_RC_PORT=$P_RC M_PM2_BIN=$([[ -z $PM2_SKIP ]] && echo "$PM2" || true) \
M_PM2_HOME=$PM2_HOME_DIR M_PM2_PORT=$P_PM2 M_APP=$APP_NAME M_INST=$INSTANCES M_CONNS=$CONNS \
M_KILLS=$KILLS M_GAP=$GAP M_MAX=$MAX_SECONDS M_WT=$WRK_THREADS M_WC=$WRK_CONNS M_RESULTS=$RESULTS \
M_PIDS=$PIDS M_LUA=$BENCH_DIR/cluster/wrk_report.lua \
python3 - >"$WORK/conf.json" <<'EOF'
import json, os
e = os.environ
managers = {"rcluster": {"kind": "rcluster", "bin": e["M_RC_BIN"], "home": e["M_RC_HOME"],
                         "port": int(e["M_RC_PORT"]), "log": os.path.join(e["M_RC_HOME"], "daemon.log")}}
if e["M_PM2_BIN"]:
    managers["pm2"] = {"kind": "pm2", "bin": e["M_PM2_BIN"], "home": e["M_PM2_HOME"],
                       "port": int(e["M_PM2_PORT"]), "log": os.path.join(e["M_PM2_HOME"], "pm2.log")}
print(json.dumps({"app": e["M_APP"], "script": "hello.js", "instances": int(e["M_INST"]),
                  "connections": int(e["M_CONNS"]), "kills": int(e["M_KILLS"]),
                  "gap": float(e["M_GAP"]), "max_seconds": int(e["M_MAX"]),
                  "wrk_threads": int(e["M_WT"]), "wrk_conns": int(e["M_WC"]),
                  "wrk_lua": e["M_LUA"], "results": e["M_RESULTS"], "pids": e["M_PIDS"],
                  "managers": managers}))
EOF

# Both apps answer before anything is measured (pm2's workers boot after `start` returns).
wait_answer() {
    local port=$1 i
    for i in $(seq 600); do
        curl -fsS -m 2 "http://127.0.0.1:$port/" >/dev/null 2>&1 && return 0
        sleep 0.1 # polling interval
    done
    return 1
}
wait_answer "$P_RC" || die "rcluster's app does not answer on 127.0.0.1:$P_RC: $(rc ls 2>&1 | tail -n 8)"
if [[ -z $PM2_SKIP ]] && ! wait_answer "$P_PM2"; then
    PM2_SKIP="pm2's app did not answer within 60 s"
    say "pm2 column skipped: $PM2_SKIP"
fi

for name in rcluster pm2; do
    [[ $name == rcluster || -z $PM2_SKIP ]] || continue
    say "$name: $CONNS connections and $KILLS kills under load (at most $MAX_SECONDS s of load)"
    run_helper python3 "$HERE/driver.py" phase "$WORK/conf.json" "$name" || die "the $name phase failed"
done

M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=$(cpu_model) M_COMMIT=$COMMIT M_RC_VERSION=$RC_VERSION M_PM2_VERSION=$([[ -n $PM2_SKIP ]] || echo "${PM2_VER:-}") \
M_PM2_SKIP=$PM2_SKIP M_NODE=$(node --version) M_WRK="$(wrk --version 2>&1 | head -n1 | awk '{print $2}')" \
M_LOAD=$LOAD_BEFORE M_LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)" M_CONNS=$CONNS M_KILLS=$KILLS \
M_GAP=$GAP M_WT=$WRK_THREADS M_WC=$WRK_CONNS \
python3 - >"$WORK/meta.json" <<'EOF'
import json, os
e = os.environ
print(json.dumps({"date": e["M_DATE"], "machine": e["M_MACHINE"], "nproc": e["M_NPROC"],
                  "cpu": e["M_CPU"], "commit": e["M_COMMIT"], "rc_version": e["M_RC_VERSION"],
                  "pm2_version": e["M_PM2_VERSION"], "pm2_skip": e["M_PM2_SKIP"], "node": e["M_NODE"],
                  "wrk": e["M_WRK"], "loadavg": e["M_LOAD"], "loadavg_after": e["M_LOAD_AFTER"],
                  "connections": int(e["M_CONNS"]), "kills": int(e["M_KILLS"]),
                  "gap": float(e["M_GAP"]), "wrk_threads": int(e["M_WT"]), "wrk_conns": int(e["M_WC"])}))
EOF
python3 "$HERE/driver.py" report "$RESULTS" "$WORK/meta.json" >"$WORK/section.md"

publish_section
