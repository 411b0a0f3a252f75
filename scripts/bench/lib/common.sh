# Set-up shared by the benchmark scripts in scripts/bench/ (cli.sh, logs.sh, cluster.sh, reload.sh);
# sourced, never run. Each script defines its own say() (its "[name.sh]" prefix, used by die and
# the cleanup here) and its knobs.
#
# On sourcing: cd to the repo root; ROOT, BENCH_DIR, LIB, CACHE, DOC, PM2_VERSION (default 7.0.4).
# Then a script calls bench_init NAME (work directory, private homes, the cleanup trap),
# build_rcluster (RC, RC_VERSION, COMMIT) and install_pm2 (PM2, PM2_VER or PM2_SKIP).
# The cleanup ends only processes the script started, by pid:starttime, never by name.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
BENCH_DIR=$ROOT/scripts/bench
LIB=$BENCH_DIR/lib
CACHE=$BENCH_DIR/.cache
DOC=$ROOT/docs/benchmarks.md
PM2_VERSION=${PM2_VERSION:-7.0.4}

RC=""           # the rcluster binary measured (a private copy in $WORK), once built
PM2=""          # the pm2 binary, once installed
PM2_SKIP=""     # why pm2 is not measured, when it is not
HELPER_PID=""   # a background helper the cleanup ends first (see run_helper)
HELPER_GRACE=10 # seconds the cleanup gives that helper to exit after SIGTERM (a script may raise it)
PIDS=""         # a file of more pid:starttime lines for the cleanup to SIGKILL if alive (optional)

die() { say "error: $*"; exit 1; }

# ------------------------------------------------------------------ processes

# "pid:starttime" of a live (not zombie) process, so that a pid reused later is never signalled.
proc_id() {
    local pid=$1 rest
    [[ -r /proc/$pid/stat ]] || return 1
    rest=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
    set -- $rest
    [[ $1 != Z && $1 != X ]] || return 1
    echo "$pid:${20}"
}

# True while the process recorded as pid:starttime still runs.
alive() { [[ $(proc_id "${1%%:*}" 2>/dev/null) == "$1" ]]; }

# Direct children of a pid (all its threads'), one per word.
children_of() { cat /proc/"$1"/task/*/children 2>/dev/null || true; }

# A daemon named by its pid file and all its descendants, as pid:starttime.
daemon_tree() {
    local pidfile=$1 pid todo c
    [[ -s $pidfile ]] || return 0
    pid=$(head -n1 "$pidfile" | tr -dc '0-9')
    [[ -n $pid ]] || return 0
    proc_id "$pid" || return 0
    todo=("$pid")
    while ((${#todo[@]})); do
        for c in $(children_of "${todo[0]}"); do
            proc_id "$c" || true
            todo+=("$c")
        done
        todo=("${todo[@]:1}")
    done
}

# Runs "$@" (a measuring helper) in the background and waits for it, so that a signal to the shell
# runs the cleanup at once (bash runs traps only between foreground commands). Returns its status.
run_helper() {
    local rc=0
    "$@" &
    HELPER_PID=$!
    wait "$HELPER_PID" || rc=$?
    HELPER_PID=""
    return "$rc"
}

# Hook for a script's own processes, run by the cleanup after the managers' kill (cluster.sh).
cleanup_hook() { :; }

# EXIT trap: ends the helper, runs `rcluster kill` and `pm2 kill` with the private homes, SIGKILLs
# what they left (recorded before, by pid:starttime), then removes $WORK unless BENCH_KEEP=1.
cleanup() {
    local status=$? ids=() id i
    trap - EXIT INT TERM
    trap '' PIPE # a closed stdout (`| head`) must not cut the cleanup short
    set +e
    if [[ -n $HELPER_PID ]] && kill -0 "$HELPER_PID" 2>/dev/null; then
        kill -TERM "$HELPER_PID" 2>/dev/null # it ends what it spawned itself, then exits
        for i in $(seq $((HELPER_GRACE * 10))); do kill -0 "$HELPER_PID" 2>/dev/null || break; sleep 0.1; done # polling
    fi
    # Any other job still running (an interrupted wrk...) is this shell's unreaped child: end it by pid.
    for id in $(jobs -pr); do kill -TERM "$id" 2>/dev/null; done
    mapfile -t ids < <(daemon_tree "$RC_HOME/daemon.lock"; daemon_tree "$PM2_HOME_DIR/pm2.pid"
                       [[ -z $PIDS ]] || cat "$PIDS" 2>/dev/null)
    if [[ -n $RC && -x $RC && -e $RC_HOME/daemon.lock ]]; then
        RCLUSTER_HOME=$RC_HOME timeout 30 "$RC" kill >/dev/null 2>&1 || say "rcluster kill failed"
    fi
    if [[ -n $PM2 && -e $PM2_HOME_DIR/pm2.pid ]]; then
        PM2_HOME=$PM2_HOME_DIR timeout 60 "$PM2" kill >/dev/null 2>&1 || say "pm2 kill failed"
    fi
    for id in "${ids[@]}"; do
        [[ -n $id ]] || continue
        if alive "$id"; then
            say "SIGKILL to ${id%%:*} ($(tr '\0' ' ' <"/proc/${id%%:*}/cmdline" 2>/dev/null | cut -c1-80)), still alive after the managers' kill"
            kill -KILL "${id%%:*}" 2>/dev/null
        fi
    done
    cleanup_hook
    if ((status != 0)) && [[ -s $RC_HOME/daemon.log ]]; then
        say "last lines of the rcluster daemon log ($RC_HOME/daemon.log):"
        tail -n 20 "$RC_HOME/daemon.log" >&2
    fi
    if [[ ${BENCH_KEEP:-} == 1 ]]; then
        say "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}

# Creates the work directory ${TMPDIR:-/tmp}/rcluster-bench-NAME.* with the two private homes
# (RC_HOME, PM2_HOME_DIR) and sets the cleanup traps; call before starting any process.
bench_init() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/rcluster-bench-$1.XXXXXX")
    RC_HOME=$WORK/rcluster-home
    PM2_HOME_DIR=$WORK/pm2-home
    mkdir -p "$RC_HOME" "$PM2_HOME_DIR"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The managers with their private homes.
rc() { RCLUSTER_HOME=$RC_HOME "$RC" "$@"; }
pm2() { PM2_HOME=$PM2_HOME_DIR "$PM2" "$@"; }

# ------------------------------------------------------------------ tools

# Runs "$@" as root: directly, or with sudo when that needs no password; fails otherwise.
as_root() {
    if ((EUID == 0)); then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

APT_UPDATED=""
# apt-get install, with one `apt-get update` and a retry if the package lists are stale.
apt_install() {
    command -v apt-get >/dev/null || return 1
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; then
        [[ -z $APT_UPDATED ]] || return 1
        APT_UPDATED=1
        as_root apt-get update -q >&2 || return 1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 || return 1
    fi
}

# Installs each missing command with apt-get (node as nodejs + npm), or dies.
need_tools() {
    local tool pkgs
    for tool in "$@"; do
        command -v "$tool" >/dev/null && continue
        case $tool in
            node) pkgs=(nodejs npm) ;;
            *) pkgs=("$tool") ;;
        esac
        say "installing ${pkgs[*]} (apt-get)"
        apt_install "${pkgs[@]}" || die "$tool is required and could not be installed (apt-get as root or with sudo -n)"
    done
}

# Dies early when rcluster would have to be built and cargo is missing.
need_cargo() {
    command -v cargo >/dev/null || [[ -n ${RCLUSTER_BIN:-} ]] || die "cargo is required to build rcluster (or set RCLUSTER_BIN)"
}

# ------------------------------------------------------------------ rcluster

# Builds rcluster (release; once more 60 s later if the tree is mid-edit) unless RCLUSTER_BIN names
# a binary, and sets RC to a private copy in $WORK (others rebuild target/ while this runs),
# RC_VERSION, and COMMIT: the commit read now, as the tree that was built (others commit while
# this runs), "+ uncommitted changes" when the sources differ from it.
build_rcluster() {
    local src
    need_cargo
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
        [[ -x $src ]] || die "no $src after the build"
    fi
    cp "$src" "$WORK/rcluster"
    RC=$WORK/rcluster
    COMMIT=$(git -C "$ROOT" rev-parse -q --verify --short=12 HEAD 2>/dev/null || echo "none (no commit yet)")
    [[ -z $(git -C "$ROOT" status --porcelain -- src preload build.rs Cargo.toml Cargo.lock 2>/dev/null) ]] ||
        COMMIT="$COMMIT + uncommitted changes"
    [[ -z ${RCLUSTER_BIN:-} ]] || COMMIT="$COMMIT (prebuilt binary $RCLUSTER_BIN, not built by this run)"
    RC_VERSION=$("$RC" --version 2>/dev/null | awk '{print $NF}')
}

# ------------------------------------------------------------------ pm2

# Installs pm2@PM2_VERSION with npm into $CACHE/pm2-VERSION (never global), once (PM2_BIN=<path>
# uses a pm2 installed already instead); sets PM2 and
# PM2_VER, or PM2_SKIP to the reason it cannot be used (the caller reports it in its own words).
# With the argument "apt", a missing npm is first installed with apt-get (reload.sh installs its
# tools; the other scripts do not touch the system's packages for pm2).
install_pm2() {
    local use_apt=${1:-} prefix=$CACHE/pm2-$PM2_VERSION pkg
    pkg=$prefix/node_modules/pm2/package.json
    PM2_SKIP=""
    if [[ -n ${PM2_BIN:-} ]]; then # a pm2 installed already (PM2_BIN=<path to its bin/pm2>)
        PM2=$(realpath "$PM2_BIN")
        [[ -x $PM2 ]] || die "PM2_BIN=$PM2_BIN is not an executable"
        PM2_VER=$(PM2_HOME=$PM2_HOME_DIR "$PM2" --version 2>/dev/null | tail -n1)
        [[ -n $PM2_VER ]] || die "PM2_BIN=$PM2_BIN does not say its version"
        return 0
    fi
    [[ $PM2_VERSION =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die "PM2_VERSION=$PM2_VERSION is not a version"
    if ! command -v node >/dev/null; then
        PM2_SKIP="node is not installed"
    elif [[ ! -f $pkg || $PM2_VERSION == latest ]]; then
        if ! command -v npm >/dev/null && ! { [[ $use_apt == apt ]] && apt_install npm; }; then
            PM2_SKIP="npm is not installed${use_apt:+ and could not be installed}"
        else
            say "installing pm2@$PM2_VERSION into ${prefix#"$ROOT"/} (npm, not global)"
            mkdir -p "$prefix"
            if ! timeout 300 npm install --prefix "$prefix" --no-save --no-audit --no-fund \
                    --loglevel=error --fetch-retries=1 --fetch-timeout=30000 "pm2@$PM2_VERSION" >&2; then
                PM2_SKIP="npm install pm2@$PM2_VERSION failed (registry unreachable?)"
                rm -rf "$prefix" # no half-installed pm2 for the next run to pick up
            fi
        fi
    fi
    if [[ -z $PM2_SKIP ]]; then
        if [[ -f $pkg && -x $prefix/node_modules/.bin/pm2 ]]; then
            PM2=$prefix/node_modules/.bin/pm2
            PM2_VER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pkg")
        else
            PM2_SKIP="pm2 not found in $prefix after npm install"
        fi
    fi
}

# ------------------------------------------------------------------ report

# Model name of the first CPU, for the report.
cpu_model() {
    local cpu
    cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
    echo "${cpu:-unknown CPU}"
}

# Prints $WORK/section.md under its heading $SECTION.
print_section() {
    echo
    echo "$SECTION"
    echo
    cat "$WORK/section.md"
}

# True unless BENCH_NO_DOCS=1 (print only, leave docs/benchmarks.md alone).
docs_wanted() { [[ ${BENCH_NO_DOCS:-} != 1 ]]; }

# Prints the section, then writes it into docs/benchmarks.md (lib/mdsection.py) unless BENCH_NO_DOCS=1.
publish_section() {
    print_section
    if docs_wanted; then
        python3 "$LIB/mdsection.py" "$DOC" "$SECTION" <"$WORK/section.md"
        say "wrote ${DOC#"$ROOT"/}"
    fi
}
