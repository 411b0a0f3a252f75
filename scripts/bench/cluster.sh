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
# It builds rcluster (release) and measures a copy of the binary, installs pm2 with npm into
# scripts/bench/.cache/ (never global), wrk with apt-get, and nginx from Debian's package
# unpacked into scripts/bench/.cache/ (`apt-get download`, so that no system nginx service is
# started on a public port) when no nginx is installed. pm2 or nginx rows are skipped, with the
# reason printed, when they cannot be installed. It prints a Markdown table and writes it into
# docs/benchmarks.md under "## Cluster mode (scripts/bench/cluster.sh)", keeping other sections.
#
# Knobs (environment): BENCH_THREADS (2), BENCH_CONNS (64), BENCH_DURATION (seconds, 10),
# BENCH_WARMUP (seconds of unmeasured load per row before the first round, 2), BENCH_ROUNDS (3:
# every row is measured once per round, rounds interleaved, and the round with the most req/s is
# reported per row and mode, as the box is shared with other jobs), PM2_VERSION (7.0.4),
# BENCH_QUIET_WAIT (120: before each measured run, wait up to this many seconds for half a second
# in which other jobs keep less than 10% of the CPUs busy; the run goes ahead anyway after that,
# and the report marks runs that other jobs disturbed), BENCH_NO_DOCS=1 (print only),
# RCLUSTER_BIN=<path> (measure that binary instead of building), BENCH_ONLY="proxy nginx" (measure
# only these rows, for a quick look; the report's ratios need the rows they compare).
#
# Only processes this script started are ended: by pid or process group, after `rcluster kill`
# and `pm2 kill` with their private homes. Loopback only: every server binds 127.0.0.1.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_DIR=$ROOT/scripts/bench
HERE=$BENCH_DIR/cluster
CACHE=$BENCH_DIR/.cache
DOC=$ROOT/docs/benchmarks.md
SECTION="## Cluster mode (scripts/bench/cluster.sh)"
PM2_VERSION=${PM2_VERSION:-7.0.4}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNS:-64}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
READY_DEADLINE=60 # seconds for every server to answer

say() { printf '[cluster.sh] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $THREADS =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ &&
   $WARMUP =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9][0-9]*$ && $QUIET_WAIT =~ ^[0-9]+$ ]] || die "BENCH_* knobs must be whole numbers"
((CONNS >= THREADS)) || die "BENCH_CONNS must be at least BENCH_THREADS (wrk needs a connection per thread)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcluster-bench-cluster.XXXXXX")
RC_HOME=$WORK/rcluster-home
PM2_HOME_DIR=$WORK/pm2-home
RESULTS=$WORK/results.jsonl
mkdir -p "$RC_HOME" "$PM2_HOME_DIR" "$WORK/logs"
: >"$RESULTS"
RC=""
PM2=""
NGINX=""
OWN_PIDS=() # "pid:starttime" of the processes started here directly (direct Node, nginx)

# ------------------------------------------------------------------ processes and cleanup

# "pid:starttime" of a live (not zombie) process, so that a pid reused later is never signalled.
proc_id() {
    local pid=$1 rest
    [[ -r /proc/$pid/stat ]] || return 1
    rest=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
    set -- $rest
    [[ $1 != Z && $1 != X ]] || return 1
    echo "$pid:${20}"
}

alive() { [[ $(proc_id "${1%%:*}" 2>/dev/null) == "$1" ]]; }

children_of() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

# The daemon named by a pid file and its direct children (the instances), as pid:starttime.
daemon_and_children() {
    local pidfile=$1 pid c
    [[ -s $pidfile ]] || return 0
    pid=$(head -n1 "$pidfile" | tr -dc '0-9')
    [[ -n $pid ]] || return 0
    proc_id "$pid" || return 0
    for c in $(children_of "$pid"); do proc_id "$c" || true; done
}

# Ends a process this script started and its process group (it was started with setsid).
end_own() {
    local id=$1 pid=${1%%:*} i
    alive "$id" || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do alive "$id" || return 0; sleep 0.1; done # polling, not synchronisation
    say "SIGKILL to process group $pid, still alive 5 s after SIGTERM"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? ids=() id
    trap - EXIT INT TERM
    # Any wrk still running (interrupted run) was started by this shell: end it by pid.
    for id in $(jobs -p); do kill -TERM "$id" 2>/dev/null || true; done
    mapfile -t ids < <(daemon_and_children "$RC_HOME/daemon.lock"; daemon_and_children "$PM2_HOME_DIR/pm2.pid")
    if [[ -n $RC && -e $RC_HOME/daemon.lock ]]; then
        RCLUSTER_HOME=$RC_HOME timeout 30 "$RC" kill >/dev/null 2>&1 || say "rcluster kill failed"
    fi
    if [[ -n $PM2 && -e $PM2_HOME_DIR/pm2.pid ]]; then
        PM2_HOME=$PM2_HOME_DIR timeout 30 "$PM2" kill >/dev/null 2>&1 || say "pm2 kill failed"
    fi
    for id in "${ids[@]}"; do
        [[ -n $id ]] || continue
        if alive "$id"; then
            say "SIGKILL to ${id%%:*}, still alive after the managers' kill"
            kill -KILL "${id%%:*}" 2>/dev/null || true
        fi
    done
    for id in "${OWN_PIDS[@]}"; do end_own "$id"; done
    if ((status != 0)) && [[ -s $RC_HOME/daemon.log ]]; then
        say "last lines of the rcluster daemon log:"
        tail -n 20 "$RC_HOME/daemon.log" >&2 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

as_root() {
    if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null || return 1
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; then
        [[ -z $APT_UPDATED ]] || return 1
        APT_UPDATED=1
        as_root apt-get update -q >&2 || return 1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 || return 1
    fi
}

for tool in python3 curl wrk node; do
    command -v "$tool" >/dev/null && continue
    case $tool in
        node) pkgs=(nodejs npm) ;;
        *) pkgs=("$tool") ;;
    esac
    say "installing ${pkgs[*]} (apt-get)"
    apt_install "${pkgs[@]}" || die "$tool is required and could not be installed (apt-get as root or with sudo -n)"
done
command -v cargo >/dev/null || [[ -n ${RCLUSTER_BIN:-} ]] || die "cargo is required to build rcluster"

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

# ------------------------------------------------------------------ rcluster

if [[ -n ${RCLUSTER_BIN:-} ]]; then
    src=$(realpath "$RCLUSTER_BIN")
    [[ -x $src ]] || die "RCLUSTER_BIN=$RCLUSTER_BIN is not an executable"
    say "using the prebuilt $src (RCLUSTER_BIN), no build"
else
    say "building rcluster (cargo build --release)"
    if ! cargo build --release --quiet --bin rcluster; then
        say "build failed (the tree may be mid-edit): retrying in 60 s"
        sleep 60
        cargo build --release --quiet --bin rcluster || die "cargo build --release failed twice"
    fi
    src=$ROOT/target/release/rcluster
fi
# Measure a private copy: other people rebuild target/ while this runs.
RC=$WORK/rcluster
cp "$src" "$RC"
RC_VERSION=$("$RC" --version 2>/dev/null | awk '{print $NF}')
rc() { RCLUSTER_HOME=$RC_HOME "$RC" "$@"; }

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
[[ -z $PM2_SKIP ]] || say "pm2 row skipped: $PM2_SKIP"
pm2() { PM2_HOME=$PM2_HOME_DIR "$PM2" "$@"; }

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
    [[ $mode == keepalive ]] || hdr=(-H 'Connection: close')
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

commit=$(git -C "$ROOT" rev-parse -q --verify --short=12 HEAD 2>/dev/null || echo "none (no commit yet)")
[[ -z $(git -C "$ROOT" status --porcelain -- src preload build.rs Cargo.toml Cargo.lock 2>/dev/null) ]] ||
    commit="$commit + uncommitted changes"
[[ -z ${RCLUSTER_BIN:-} ]] || commit="$commit (prebuilt binary $RCLUSTER_BIN, not built by this run)"
cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=${cpu:-unknown CPU} M_COMMIT=$commit M_RC_VERSION=$RC_VERSION M_PM2_VERSION=${PM2_VER:-} \
M_PM2_SKIP=$PM2_SKIP M_NGINX_VERSION=${NGINX_VER:-} M_NGINX_SKIP=$NGINX_SKIP M_NODE=$(node --version) \
M_WRK="$(wrk --version 2>&1 | head -n1 | awk '{print $2}')" M_THREADS=$THREADS M_CONNS=$CONNS \
M_DURATION=$DURATION M_ROUNDS=$ROUNDS M_WARMUP=$WARMUP M_LOAD=$LOAD_BEFORE \
python3 "$HERE/helpers.py" meta >"$WORK/meta.json"
python3 "$HERE/helpers.py" report "$RESULTS" "$WORK/meta.json" "$WORK/dealt.json" "$WORK/pm2.json" \
    "$WORK/daemon-errors.log" >"$WORK/section.md"

echo
echo "$SECTION"
echo
cat "$WORK/section.md"
if [[ ${BENCH_NO_DOCS:-} != 1 ]]; then
    python3 "$BENCH_DIR/lib/mdsection.py" "$DOC" "$SECTION" <"$WORK/section.md"
    say "wrote ${DOC#"$ROOT"/}"
fi
