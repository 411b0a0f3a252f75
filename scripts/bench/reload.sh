#!/usr/bin/env bash
# Reload benchmark: N zero-downtime reloads under a steady load, rcluster and pm2 side by side in
# one run (PRODUCT.md §5, §11: "failed requests during 10 reloads under load ... 0 (and 0 in 100)").
#
# The same plain hello-world Node server (scripts/bench/reload/hello.js: binds 127.0.0.1:PORT
# itself, no cluster module, no signal handler), 4 instances under each manager, both up for the
# whole run on their own ports:
#   rcluster start hello.js -i 4 -- PORT     (cluster mode, round-robin, port found by the preload)
#   pm2 start hello.js -i 4 -- PORT          (pm2 cluster mode)
# Then BENCH_ROUNDS rounds, the order alternating: for each manager, a load starts on its port (a
# `Connection: close` client and a keep-alive client in one asyncio process, scripts/bench/reload/
# load.py, exact outcome for every request), its share of the N reloads runs back to back
# (`rcluster reload hello` / `pm2 reload hello`, each timed), and the load stops. Reported per
# manager: requests served, failed requests, refused connections, keep-alive resends, and the
# reload wall time per instance = total reload time / (N × 4), with a `jlist` check after every
# reload (4 online instances, all new pids; untimed).
# Then, under the same load, each daemon is replaced BENCH_UPDATES times: `rcluster update` (the
# daemon re-executes itself in place) against `pm2 update` (pm2 kills its daemon and starts a new
# one): failed requests, instances restarted, daemon pid kept.
# Last, under the same load, one instance of 4 is SIGKILLed BENCH_KILLS times per row (PRODUCT.md
# §11: only requests that instance had accepted may fail): rcluster round-robin, the kernel's shared
# socket (a third app, rcluster --balance shared with scripts/bench/cluster/hello_fd.js, no manager
# in the path) and pm2 cluster mode; each failed request is matched to the connections the victim
# held when it died (scripts/bench/reload/kills.py).
#
# Usage, from the repo root:  bash scripts/bench/reload.sh
# It builds rcluster (release; retried once a minute later if the tree is mid-edit) and measures a
# copy of the binary, and installs pm2 with npm into scripts/bench/.cache/ (never global); pm2's
# columns are skipped, with the reason printed, when it cannot be installed or started. It prints a
# Markdown table and writes it into docs/benchmarks.md under "## Reload (scripts/bench/reload.sh)",
# leaving every other section as it is.
#
# Knobs (environment): BENCH_RELOADS (N, 100), BENCH_PM2_RELOADS (pm2's N, default N),
# BENCH_UPDATES (daemon replacements per manager, 10; 0 skips them), BENCH_KILLS (SIGKILLs per
# row, 20; 0 skips them),
# BENCH_ROUNDS (4: N is split over the rounds), BENCH_CLOSE_CONNS (4), BENCH_KEEPALIVE_CONNS (8),
# BENCH_TIMEOUT (seconds before a request counts as failed, 10), PM2_VERSION (7.0.4),
# RCLUSTER_BIN=<path> (measure that binary instead of building), BENCH_NO_DOCS=1 (print only),
# BENCH_KEEP=1 (keep the work directory: daemon logs, raw results).
#
# Only processes this script started are ended: the helper by pid, then `rcluster kill` and
# `pm2 kill` with their private homes, then SIGKILL by recorded pid (pid:starttime, so a reused
# pid is never hit) of anything left: the daemons, every instance seen, the load generator.
# Loopback only: every server binds 127.0.0.1 and every client connects to it.
# The set-up shared with the other bench scripts (process helpers, cleanup, build, pm2) is in
# scripts/bench/lib/common.sh.

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
HERE=$BENCH_DIR/reload
SECTION="## Reload (scripts/bench/reload.sh)"
N=${BENCH_RELOADS:-100}
N_PM2=${BENCH_PM2_RELOADS:-$N}
ROUNDS=${BENCH_ROUNDS:-4}
CLOSE_CONNS=${BENCH_CLOSE_CONNS:-4}
KA_CONNS=${BENCH_KEEPALIVE_CONNS:-8}
TIMEOUT=${BENCH_TIMEOUT:-10}
UPDATES=${BENCH_UPDATES:-10}
KILLS=${BENCH_KILLS:-20}
INSTANCES=4
APP_NAME=hello

say() { printf '[reload.sh] %s\n' "$*" >&2; }

for v in "$N" "$ROUNDS" "$TIMEOUT"; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "BENCH_RELOADS, BENCH_ROUNDS, BENCH_TIMEOUT must be whole numbers > 0"; done
for v in "$N_PM2" "$CLOSE_CONNS" "$KA_CONNS" "$UPDATES" "$KILLS"; do [[ $v =~ ^[0-9]+$ ]] || die "BENCH_PM2_RELOADS, BENCH_*_CONNS, BENCH_UPDATES, BENCH_KILLS must be whole numbers"; done
((CLOSE_CONNS + KA_CONNS > 0)) || die "no load: BENCH_CLOSE_CONNS and BENCH_KEEPALIVE_CONNS are both 0"

bench_init reload
PIDS=$WORK/pids # pid:starttime of every process started here or seen as an instance (the cleanup reads it)
RESULTS=$WORK/results.jsonl
: >"$PIDS"
: >"$RESULTS"

# The Python helper, in the background (run_helper) so that a signal runs the cleanup at once.
helper() { run_helper python3 "$HERE/driver.py" "$@"; }

# ------------------------------------------------------------------ tools, rcluster, pm2

need_tools python3 node
build_rcluster

if ((N_PM2 == 0)); then
    PM2_SKIP="BENCH_PM2_RELOADS=0"
else
    install_pm2 apt
fi
[[ -z $PM2_SKIP ]] || say "pm2 columns skipped: $PM2_SKIP"

# ------------------------------------------------------------------ start both apps

read -r P_RC P_PM2 P_SHARED < <(python3 "$HERE/driver.py" ports 3)
APP=$HERE/hello.js
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

say "starting $INSTANCES instances under rcluster (127.0.0.1:$P_RC)"
out=$(rc start "$APP" -i "$INSTANCES" -- "$P_RC" 2>&1) || die "rcluster start failed: $out"
RC_DAEMON=$(head -n1 "$RC_HOME/daemon.lock" | tr -dc '0-9')
proc_id "$RC_DAEMON" >>"$PIDS" || die "no live rcluster daemon pid in $RC_HOME/daemon.lock"
if ((KILLS > 0)); then
    say "starting $INSTANCES instances of the kernel-shared socket row under rcluster (127.0.0.1:$P_SHARED)"
    out=$(rc start "$BENCH_DIR/cluster/hello_fd.js" -i "$INSTANCES" --name "$APP_NAME-shared" \
        --balance shared --listen "127.0.0.1:$P_SHARED" 2>&1) || die "rcluster start (shared) failed: $out"
fi
if [[ -n $PM2 ]]; then
    say "starting $INSTANCES instances under pm2 (127.0.0.1:$P_PM2)"
    if ! out=$(pm2 start "$APP" -i "$INSTANCES" -- "$P_PM2" 2>&1); then
        PM2_SKIP="pm2 start -i $INSTANCES failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
        say "pm2 columns skipped: $PM2_SKIP"
    else
        proc_id "$(tr -dc '0-9' <"$PM2_HOME_DIR/pm2.pid")" >>"$PIDS" || true
    fi
fi

# Configuration for the helper (JSON, written with Python to get the quoting right).
write_conf() {
M_RC_BIN=$RC M_RC_HOME=$RC_HOME M_RC_PORT=$P_RC M_SHARED_PORT=$P_SHARED M_KILLS=$KILLS M_N=$N M_PM2_BIN=$([[ -z $PM2_SKIP ]] && echo "$PM2" || true) \
M_PM2_HOME=$PM2_HOME_DIR M_PM2_PORT=$P_PM2 M_N_PM2=$N_PM2 M_APP=$APP_NAME M_INST=$INSTANCES \
M_ROUNDS=$ROUNDS M_TIMEOUT=$TIMEOUT M_CLOSE=$CLOSE_CONNS M_KA=$KA_CONNS M_RESULTS=$RESULTS M_PIDS=$PIDS M_UPDATES=$UPDATES \
python3 - >"$WORK/conf.json" <<'EOF'
import json, os
e = os.environ
managers = {"rcluster": {"bin": e["M_RC_BIN"], "home": e["M_RC_HOME"], "port": int(e["M_RC_PORT"]),
                         "n": int(e["M_N"]), "log": os.path.join(e["M_RC_HOME"], "daemon.log")}}
if int(e["M_KILLS"]):
    managers["shared"] = {"bin": e["M_RC_BIN"], "home": e["M_RC_HOME"], "port": int(e["M_SHARED_PORT"]),
                          "n": 0, "app": e["M_APP"] + "-shared", "kind": "rcluster"}
if e["M_PM2_BIN"]:
    managers["pm2"] = {"bin": e["M_PM2_BIN"], "home": e["M_PM2_HOME"], "port": int(e["M_PM2_PORT"]),
                       "n": int(e["M_N_PM2"]), "log": os.path.join(e["M_PM2_HOME"], "pm2.log")}
print(json.dumps({"app": e["M_APP"], "instances": int(e["M_INST"]), "rounds": int(e["M_ROUNDS"]),
                  "timeout": float(e["M_TIMEOUT"]), "close": int(e["M_CLOSE"]),
                  "keepalive": int(e["M_KA"]), "results": e["M_RESULTS"], "pids": e["M_PIDS"],
                  "updates": int(e["M_UPDATES"]), "kills": int(e["M_KILLS"]),
                  "managers": managers}))
EOF
}
write_conf

helper wait-ready "$WORK/conf.json" rcluster || die "rcluster's app did not come up: $(rc ls 2>&1 | tail -n 12)"
if ((KILLS > 0)); then
    helper wait-ready "$WORK/conf.json" shared || die "rcluster's shared app did not come up: $(rc ls 2>&1 | tail -n 12)"
fi
if [[ -z $PM2_SKIP ]] && ! helper wait-ready "$WORK/conf.json" pm2; then
    PM2_SKIP="pm2's app did not come up (4 online instances answering) within 60 s"
    say "pm2 columns skipped: $PM2_SKIP"
    write_conf
fi
say "the apps answer; $ROUNDS rounds, $N rcluster reloads$([[ -n $PM2_SKIP ]] || echo " and $N_PM2 pm2 reloads") under load"

# ------------------------------------------------------------------ measure

helper measure "$WORK/conf.json" || die "the measurement failed"

# ------------------------------------------------------------------ report

grep -Ei 'error|warn|fail|panic' "$RC_HOME/daemon.log" 2>/dev/null | tail -n 10 >"$WORK/daemon-errors.log" || true
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=$(cpu_model) M_COMMIT=$COMMIT M_RC_VERSION=$RC_VERSION M_PM2_VERSION=$([[ -n $PM2_SKIP ]] || echo "${PM2_VER:-}") \
M_PM2_SKIP=$PM2_SKIP M_NODE=$(node --version) M_LOAD=$LOAD_BEFORE M_LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)" M_INST=$INSTANCES M_ROUNDS=$ROUNDS \
M_CLOSE=$CLOSE_CONNS M_KA=$KA_CONNS M_TIMEOUT=$TIMEOUT M_ERRORS=$WORK/daemon-errors.log \
M_RC_LOG=$RC_HOME/daemon.log M_PM2_LOG=$PM2_HOME_DIR/pm2.log \
python3 - >"$WORK/meta.json" <<'EOF'
import json, os
e = os.environ
print(json.dumps({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "nproc": e["M_NPROC"], "cpu": e["M_CPU"],
    "commit": e["M_COMMIT"], "rc_version": e["M_RC_VERSION"], "pm2_version": e["M_PM2_VERSION"],
    "pm2_skip": e["M_PM2_SKIP"], "node": e["M_NODE"], "loadavg": e["M_LOAD"],
    "loadavg_after": e["M_LOAD_AFTER"],
    "instances": int(e["M_INST"]), "rounds": int(e["M_ROUNDS"]), "close": int(e["M_CLOSE"]),
    "keepalive": int(e["M_KA"]), "timeout": float(e["M_TIMEOUT"]), "grace": 2.0,
    "daemon_errors": [l.rstrip("\n")[:300] for l in open(e["M_ERRORS"])],
    "logs": {"rcluster": e["M_RC_LOG"], "pm2": e["M_PM2_LOG"]},
}))
EOF
python3 "$HERE/driver.py" report "$RESULTS" "$WORK/meta.json" >"$WORK/section.md"

publish_section
