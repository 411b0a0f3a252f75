#!/usr/bin/env bash
# Cluster-mode benchmark: rcluster's balancing strategies against direct Node processes, pm2
# cluster mode and nginx, side by side in one run (PRODUCT.md §4, §11; SOCKET-PASSING.md §6).
#
# One hello-world Node HTTP server (scripts/bench/cluster/hello.js, hello_fd.js for fd 3), every
# row up at the same time on its own 127.0.0.1 port, then for each row, with the same wrk
# settings (default -t2 -c64 -d10s --latency):
#   keep-alive (wrk's default)        and        `Connection: close` (-H 'Connection: close')
# rows:
#   direct 1       one Node process, wrk straight at it (the limit of one process)
#   direct sum     two Node processes on two ports, two wrk at once, each with half the threads
#                  and half the connections (so the total load is the same as every other row)
#   rcluster round-robin  (unmodified app binding the port: the preload redirects it), shared and
#                  reuseport (app listening on fd 3), proxy and least-conn (app on $PORT); -i 2;
#                  plus round-robin -i 1, for context: rcluster's own cost with the same client
#                  load as "direct 1" (wrk threads spread over two servers behave differently from
#                  wrk threads each paired with one server, as in the direct sum)
#   pm2 -i 2       pm2 cluster mode, the same unmodified app (Node's cluster module deals)
#   nginx          least_conn upstream with keepalive 64 over the two direct processes
# and the CPU time (utime+stime from /proc/<pid>/stat) of the manager process during each run:
# rcluster's daemon, pm2's God daemon (the cluster primary), nginx (master + workers), divided by
# the requests wrk completed (with `Connection: close`, one connection per request).
#
# Usage, from the repo root:  bash scripts/bench/cluster.sh
# It builds rcluster (release; retried once a minute later if the tree is mid-edit) and measures a
# copy of the binary, installs pm2 with npm into scripts/bench/.cache/ (never global), wrk with
# apt-get, and nginx from Debian's package unpacked into scripts/bench/.cache/ (`apt-get
# download`, so that no system nginx service is started on a public port) when no nginx is
# installed. pm2 or nginx rows are skipped, with the reason printed, when they cannot be
# installed. It prints a Markdown table and writes it into docs/benchmarks.md under
# "## Cluster mode (scripts/bench/cluster.sh)", keeping other sections.
#
# Knobs (environment): BENCH_THREADS (2), BENCH_CONNS (64), BENCH_DURATION (seconds, 10),
# BENCH_WARMUP (seconds of unmeasured load per row before the first round, 2), BENCH_ROUNDS (3:
# every row is measured once per round, rounds interleaved, and the round with the most req/s is
# reported per row and mode, as the box is shared with other jobs), BENCH_ROTATIONS (6: after the
# rounds, the keep-alive target's rows -- direct sum, round-robin, shared -- run back to back this
# many times, each time starting with the next of them, so that each ratio compares runs seconds
# apart; 0 skips them), PM2_VERSION (7.0.4),
# BENCH_QUIET_WAIT (120: before each measured run, wait up to this many seconds for half a second
# in which other jobs keep less than 10% of the CPUs busy; the run goes ahead anyway after that,
# and the report marks runs that other jobs disturbed), BENCH_NO_DOCS=1 (print only),
# RCLUSTER_BIN=<path> (measure that binary instead of building), BENCH_ONLY="proxy nginx" (measure
# only these rows, for a quick look; the report's ratios need the rows they compare), BENCH_KEEP=1
# (keep the work directory: daemon logs, raw results).
#
# Only processes this script started are ended: by pid or process group, after `rcluster kill`
# and `pm2 kill` with their private homes (then SIGKILL by recorded pid:starttime of any daemon or
# descendant of theirs still alive). Loopback only: every server binds 127.0.0.1.
# The set-up shared with the other bench scripts (process helpers, cleanup, build, pm2) is in
# scripts/bench/lib/common.sh.

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
HERE=$BENCH_DIR/cluster
SECTION="## Cluster mode (scripts/bench/cluster.sh)"
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
ROTATIONS=${BENCH_ROTATIONS:-6}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
READY_DEADLINE=60 # seconds for every server to answer

say() { printf '[cluster.sh] %s\n' "$*" >&2; }

[[ $THREADS =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ &&
   $WARMUP =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9][0-9]*$ && $ROTATIONS =~ ^[0-9]+$ && $QUIET_WAIT =~ ^[0-9]+$ ]] || die "BENCH_* knobs must be whole numbers"
((CONNS >= THREADS)) || die "BENCH_CONNS must be at least BENCH_THREADS (wrk needs a connection per thread)"

NGINX=""
OWN_PIDS=() # "pid:starttime" of the processes started here directly (direct Node, nginx)
bench_init cluster
RESULTS=$WORK/results.jsonl
mkdir -p "$WORK/logs"
: >"$RESULTS"

# ------------------------------------------------------------------ own processes

# Ends a process this script started and its process group (it was started with setsid).
end_own() {
    local id=$1 pid=${1%%:*} i
    alive "$id" || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do alive "$id" || return 0; sleep 0.1; done # polling, not synchronisation
    say "SIGKILL to process group $pid, still alive 5 s after SIGTERM"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# The cleanup (lib/common.sh) ends this script's own processes, by process group, after the managers'.
cleanup_hook() {
    local id
    for id in "${OWN_PIDS[@]}"; do end_own "$id"; done
}

# Starts "$@" in a new session (own process group) with output to $WORK/logs/$1.log, records it
# for the cleanup and leaves its pid in LAST_PID. (The shell has no job control, so the child is
# not a group leader and setsid execs the program in place: $! is the program's pid.)
start_own() {
    local name=$1 id
    shift
    setsid "$@" </dev/null >"$WORK/logs/$name.log" 2>&1 &
    LAST_PID=$!
    id=$(proc_id "$LAST_PID") || die "$name exited at once: $(tail -n 5 "$WORK/logs/$name.log")"
    OWN_PIDS+=("$id")
}

# Polls until http://127.0.0.1:PORT/ answers 200, or dies after READY_DEADLINE seconds.
wait_http() {
    local what=$1 port=$2 deadline=$((SECONDS + READY_DEADLINE))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null) == 200 ]]; do
        ((SECONDS < deadline)) || die "$what on 127.0.0.1:$port did not answer 200 within ${READY_DEADLINE} s"
        sleep 0.05 # polling interval
    done
}

# ------------------------------------------------------------------ tools

need_tools python3 curl wrk node
need_cargo

# nginx: an installed one, else Debian's package unpacked into the cache (apt-get download + dpkg-deb:
# installing the package would start a system nginx on port 80 of every interface).
NGINX_SKIP=""
if command -v nginx >/dev/null; then
    NGINX=$(command -v nginx)
elif [[ -x /usr/sbin/nginx ]]; then
    NGINX=/usr/sbin/nginx
else
    NGINX_DIR=$CACHE/nginx-deb
    if [[ ! -x $NGINX_DIR/usr/sbin/nginx ]]; then
        say "fetching Debian's nginx package into ${NGINX_DIR#"$ROOT"/} (apt-get download, unpacked, not installed)"
        if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
            rm -rf "$NGINX_DIR.tmp" && mkdir -p "$NGINX_DIR.tmp"
            if (cd "$NGINX_DIR.tmp" && timeout 300 apt-get download -q nginx >&2) ||
                { as_root apt-get update -q >&2 && (cd "$NGINX_DIR.tmp" && timeout 300 apt-get download -q nginx >&2); }; then
                deb=$(ls "$NGINX_DIR.tmp"/nginx_*.deb 2>/dev/null | head -n1)
                if [[ -n $deb ]] && dpkg-deb -x "$deb" "$NGINX_DIR.tmp/root"; then
                    rm -rf "$NGINX_DIR" && mv "$NGINX_DIR.tmp/root" "$NGINX_DIR"
                fi
            fi
            rm -rf "$NGINX_DIR.tmp"
        fi
    fi
    if [[ -x $NGINX_DIR/usr/sbin/nginx ]] && "$NGINX_DIR/usr/sbin/nginx" -v >/dev/null 2>&1; then
        NGINX=$NGINX_DIR/usr/sbin/nginx
    else
        NGINX_SKIP="nginx is not installed and Debian's nginx package could not be fetched or run"
    fi
fi
if [[ -n $NGINX ]]; then
    NGINX_VER=$("$NGINX" -v 2>&1 | sed 's/^.*nginx\///')
else
    say "nginx row skipped: $NGINX_SKIP"
fi

# ------------------------------------------------------------------ rcluster, pm2

build_rcluster
install_pm2
[[ -z $PM2_SKIP ]] || say "pm2 row skipped: $PM2_SKIP"

# ------------------------------------------------------------------ start every row

APP=$HERE/hello.js
APP_FD=$HERE/hello_fd.js
read -r P_D1 P_D2 P_RR1 P_RR P_SHARED P_REUSE P_PROXY P_LEAST P_PM2 P_NGINX < <(python3 "$HERE/helpers.py" ports 10)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

say "starting the servers (ports $P_D1..., all on 127.0.0.1)"
start_own direct1 node "$APP" "$P_D1"
PID_D1=$LAST_PID
start_own direct2 node "$APP" "$P_D2"
PID_D2=$LAST_PID

declare -A RC_STRATEGY=([rr1]=round-robin [rr]=round-robin [shared]=shared [reuseport]=reuseport [proxy]=proxy [leastconn]=least-conn)
declare -A RC_PORT=([rr1]=$P_RR1 [rr]=$P_RR [shared]=$P_SHARED [reuseport]=$P_REUSE [proxy]=$P_PROXY [leastconn]=$P_LEAST)
RC_APPS=(rr1 rr shared reuseport proxy leastconn)
for app in "${RC_APPS[@]}"; do
    port=${RC_PORT[$app]}
    case $app in
        rr1) cmd=("$APP" -i 1 -- "$port") ;;       # context: one instance, same client load as direct 1
        rr) cmd=("$APP" -i 2 -- "$port") ;;        # unmodified: binds 127.0.0.1:port itself
        shared | reuseport) cmd=("$APP_FD" -i 2) ;; # listen({fd: 3})
        *) cmd=("$APP" -i 2) ;;                     # listens on $PORT (private per instance)
    esac
    out=$(rc start "${cmd[0]}" --name "$app" --listen "127.0.0.1:$port" --balance "${RC_STRATEGY[$app]}" \
        "${cmd[@]:1}" 2>&1) || die "rcluster start (${RC_STRATEGY[$app]}) failed: $out"
done
RC_DAEMON=$(head -n1 "$RC_HOME/daemon.lock" | tr -dc '0-9')
[[ -n $RC_DAEMON && -r /proc/$RC_DAEMON/stat ]] || die "no rcluster daemon pid in $RC_HOME/daemon.lock"

if [[ -n $PM2 ]]; then
    if ! out=$(pm2 start "$APP" -i 2 --name hello -- "$P_PM2" 2>&1); then
        say "pm2 start failed, pm2 row skipped: $(tail -n 5 <<<"$out")"
        PM2_SKIP="pm2 start -i 2 failed"
    else
        PM2_GOD=$(tr -dc '0-9' <"$PM2_HOME_DIR/pm2.pid")
    fi
fi

if [[ -n $NGINX ]]; then
    NGX_DIR=$WORK/nginx
    mkdir -p "$NGX_DIR"
    sed -e "s|@WORK@|$NGX_DIR|g" -e "s|@PORT@|$P_NGINX|g" -e "s|@UP1@|$P_D1|g" -e "s|@UP2@|$P_D2|g" \
        "$HERE/nginx.conf.in" >"$NGX_DIR/nginx.conf"
    if "$NGINX" -t -q -p "$NGX_DIR" -c "$NGX_DIR/nginx.conf" -e "$NGX_DIR/error.log" >"$WORK/logs/nginx-t.log" 2>&1; then
        start_own nginx "$NGINX" -p "$NGX_DIR" -c "$NGX_DIR/nginx.conf" -e "$NGX_DIR/error.log"
        PID_NGINX=$LAST_PID
    else
        NGINX_SKIP="nginx -t rejected the config: $(tail -n 3 "$WORK/logs/nginx-t.log" | tr '\n' ' ')"
        say "nginx row skipped: $NGINX_SKIP"
        NGINX=""
    fi
fi

# Readiness: every port answers, every managed instance is online.
wait_http "direct Node 1" "$P_D1"
wait_http "direct Node 2" "$P_D2"
for app in "${RC_APPS[@]}"; do wait_http "rcluster ${RC_STRATEGY[$app]}" "${RC_PORT[$app]}"; done
deadline=$((SECONDS + READY_DEADLINE))
until rc jlist 2>/dev/null | python3 "$HERE/helpers.py" rc-online rr1=1 rr=2 shared=2 reuseport=2 proxy=2 leastconn=2; do
    ((SECONDS < deadline)) || die "rcluster instances not all online: $(rc ls 2>&1 | tail -n 20)"
    sleep 0.1
done
if [[ -z $PM2_SKIP ]]; then
    wait_http "pm2 cluster" "$P_PM2"
    deadline=$((SECONDS + READY_DEADLINE))
    until pm2 jlist 2>/dev/null | python3 "$HERE/helpers.py" pm2-online 2 hello; do
        ((SECONDS < deadline)) || die "pm2 instances not all online"
        sleep 0.1
    done
fi
[[ -z $NGINX ]] || wait_http "nginx" "$P_NGINX"
say "all servers answer"

# ------------------------------------------------------------------ measure

ROWS=(direct1 direct2 "${RC_APPS[@]}")
[[ -n $PM2_SKIP ]] || ROWS+=(pm2)
[[ -z $NGINX ]] || ROWS+=(nginx)
if [[ -n ${BENCH_ONLY:-} ]]; then
    read -r -a only <<<"$BENCH_ONLY"
    picked=()
    for row in "${ROWS[@]}"; do [[ " ${only[*]} " == *" $row "* ]] && picked+=("$row"); done
    ((${#picked[@]})) || die "BENCH_ONLY names no row of: ${ROWS[*]}"
    ROWS=("${picked[@]}")
fi

row_ports() {
    case $1 in
        direct1) echo "$P_D1" ;;
        direct2) echo "$P_D1 $P_D2" ;;
        pm2) echo "$P_PM2" ;;
        nginx) echo "$P_NGINX" ;;
        *) echo "${RC_PORT[$1]}" ;;
    esac
}

# pids whose CPU time is the manager's cost for that row
row_manager_pids() {
    case $1 in
        direct1 | direct2) ;;
        pm2) echo "$PM2_GOD" ;;
        nginx) echo "$PID_NGINX" $(children_of "$PID_NGINX") ;;
        *) echo "$RC_DAEMON" ;;
    esac
}

# CHILD_CPU = CPU seconds of this shell's reaped children (wrk), from the `times` builtin (called
# directly, not in a command substitution, which would report the subshell's).
children_cpu() {
    times >"$WORK/times"
    CHILD_CPU=$(sed -n 2p "$WORK/times" | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } } END { printf "%.3f", s }')
}

# Waits up to QUIET_WAIT seconds for a half-second window in which the machine (our servers idle)
# is less than 10% busy; QUIET_BUSY is the last window's busy share. One window per helper call,
# so that a signal is handled within half a second.
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT))
    until QUIET_BUSY=$(python3 "$HERE/helpers.py" quiet 0.10 0); do
        ((SECONDS < deadline)) || return 1
    done
}

# run ROW MODE ROUND SECONDS [record]: wrk at the row's port(s); one JSON line in $RESULTS.
run() {
    local row=$1 mode=$2 round=$3 secs=$4 record=${5:-} ports i t c hdr=() outs=() pids=() mgr s0 s1 w0 w1
    read -r -a ports <<<"$(row_ports "$row")"
    t=$THREADS c=$CONNS
    if ((${#ports[@]} == 2)); then
        t=$(((THREADS + 1) / 2)) c=$((CONNS / 2))
    fi
    [[ $mode != close ]] || hdr=(-H 'Connection: close')
    read -r -a mgr <<<"$(row_manager_pids "$row")"
    if [[ -n $record ]] && ! wait_quiet; then
        say "the machine stayed busy (${QUIET_BUSY} of its CPUs) for ${QUIET_WAIT} s: measuring $row ($mode) anyway"
    fi
    children_cpu
    w0=$CHILD_CPU
    s0=$(python3 "$HERE/helpers.py" sample "${mgr[@]}" -- "${SERVER_ROOTS[@]}")
    for i in "${!ports[@]}"; do
        outs+=("$WORK/wrk-$row-$mode-$round-$i.out")
        timeout $((secs + 60)) wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$HERE/wrk_report.lua" "${hdr[@]}" \
            "http://127.0.0.1:${ports[$i]}/" >"${outs[$i]}" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || die "wrk failed on $row ($mode): $(tail -n 5 "${outs[$i]}")"
    done
    s1=$(python3 "$HERE/helpers.py" sample "${mgr[@]}" -- "${SERVER_ROOTS[@]}")
    children_cpu
    w1=$CHILD_CPU
    [[ -n $record ]] || return 0
    python3 "$HERE/helpers.py" wrk-result --row "$row" --mode "$mode" --round "$round" --hz "$HZ" \
        --before "$s0" --after "$s1" --wrk-cpu "$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')" \
        "${outs[@]}" >>"$RESULTS" || die "no result from wrk on $row ($mode): $(tail -n 5 "${outs[0]}")"
    python3 "$HERE/helpers.py" line "$RESULTS" >&2
}

HZ=$(getconf CLK_TCK)
SERVER_ROOTS=("$PID_D1" "$PID_D2" "$RC_DAEMON")
[[ -n $PM2_SKIP ]] || SERVER_ROOTS+=("$PM2_GOD")
[[ -z $NGINX ]] || SERVER_ROOTS+=("$PID_NGINX")

if ((WARMUP > 0)); then
    say "warm-up: ${WARMUP} s of keep-alive load per row (not measured)"
    for row in "${ROWS[@]}"; do run "$row" keepalive 0 "$WARMUP"; done
fi
rc_before=$(rc jlist)
for round in $(seq "$ROUNDS"); do
    say "round $round/$ROUNDS: wrk -t$THREADS -c$CONNS -d${DURATION}s per row and mode"
    for row in "${ROWS[@]}"; do
        run "$row" keepalive "$round" "$DURATION" record
        run "$row" close "$round" "$DURATION" record
    done
done
# The keep-alive target compares rows a few minutes apart in the rounds above; on a shared box
# that spread is as wide as the 5% the target allows. Back to back, rotating which goes first, a
# ratio compares runs seconds apart ("keepalive-ab" results).
AB_ROWS=()
for row in direct2 rr shared; do [[ " ${ROWS[*]} " == *" $row "* ]] && AB_ROWS+=("$row"); done
if ((ROTATIONS > 0 && ${#AB_ROWS[@]} > 1)); then
    say "back to back: ${AB_ROWS[*]}, keep-alive, $ROTATIONS rotation(s)"
    for rotation in $(seq "$ROTATIONS"); do
        for i in "${!AB_ROWS[@]}"; do
            row=${AB_ROWS[$(((i + rotation - 1) % ${#AB_ROWS[@]}))]}
            run "$row" keepalive-ab "$rotation" "$DURATION" record
        done
    done
fi
rc_after=$(rc jlist)

# Sanity: connections dealt per instance, restarts during the run.
python3 "$HERE/helpers.py" rc-dealt <(echo "$rc_before") <(echo "$rc_after") >"$WORK/dealt.json"
if [[ -z $PM2_SKIP ]]; then
    pm2 jlist 2>/dev/null | python3 "$HERE/helpers.py" pm2-restarts hello >"$WORK/pm2.json" || echo '{}' >"$WORK/pm2.json"
else
    echo '{}' >"$WORK/pm2.json"
fi
grep -Ei 'error|warn|fail|panic' "$RC_HOME/daemon.log" | tail -n 20 >"$WORK/daemon-errors.log" || true

# ------------------------------------------------------------------ report

M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=$(cpu_model) M_COMMIT=$COMMIT M_RC_VERSION=$RC_VERSION M_PM2_VERSION=${PM2_VER:-} \
M_PM2_SKIP=$PM2_SKIP M_NGINX_VERSION=${NGINX_VER:-} M_NGINX_SKIP=$NGINX_SKIP M_NODE=$(node --version) \
M_WRK="$(wrk --version 2>&1 | head -n1 | awk '{print $2}')" M_THREADS=$THREADS M_CONNS=$CONNS \
M_DURATION=$DURATION M_ROUNDS=$ROUNDS M_ROTATIONS=$ROTATIONS M_WARMUP=$WARMUP M_LOAD=$LOAD_BEFORE \
python3 "$HERE/helpers.py" meta >"$WORK/meta.json"
python3 "$HERE/helpers.py" report "$RESULTS" "$WORK/meta.json" "$WORK/dealt.json" "$WORK/pm2.json" \
    "$WORK/daemon-errors.log" >"$WORK/section.md"

publish_section
