#!/usr/bin/env bash
# Static files: `rcluster serve` against `pm2 serve` (pm2's Serve.js under node) and nginx, side by
# side in one run. The same folder (an index.html of 1 KiB, an asset of 100 KiB), one server
# process each, wrk keep-alive per file, rounds interleaved: req/s, p99, errors, server CPU per
# request and RSS (scripts/bench/serve/bench.py measures, serve/report.py writes the section).
#
# `pm2 serve` listens on every interface and cannot be told otherwise, so the measuring helper runs
# in a network namespace of its own (`unshare -rn`) whose only interface is loopback; without
# user namespaces the pm2 column is skipped (rcluster and nginx are told 127.0.0.1 and run anyway).
#
# Usage, from the repo root:  bash scripts/bench/serve.sh
# Knobs: BENCH_ROUNDS (3), BENCH_DURATION (seconds per wrk run, 10), RCLUSTER_BIN, PM2_VERSION,
# BENCH_NO_DOCS=1 (print only), BENCH_KEEP=1 (keep the work directory).
# Only processes this script started are ended (by pid, and the managers' kill with their homes).

set -euo pipefail

# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh" # ROOT (cwd), processes, cleanup, build, pm2
SECTION="## Static files (scripts/bench/serve.sh)"
HERE=$BENCH_DIR/serve
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10}

say() { printf '[serve.sh] %s\n' "$*" >&2; }

for v in "$ROUNDS" "$DURATION"; do [[ $v =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS and BENCH_DURATION must be whole numbers > 0"; done

bench_init serve
PIDS=$WORK/pids
: >"$PIDS"

need_tools python3 node wrk
build_rcluster
install_pm2
NGINX=$(command -v nginx || true)
[[ -n $NGINX || ! -x /usr/sbin/nginx ]] || NGINX=/usr/sbin/nginx

# Loopback only: everything that listens runs in a namespace with nothing but lo.
NETNS=(unshare -rn)
if ! "${NETNS[@]}" true 2>/dev/null; then
    NETNS=()
    [[ -n $PM2_SKIP ]] || PM2_SKIP="no user namespaces here (unshare -rn), and pm2 serve would listen on every interface"
fi
[[ -z $PM2_SKIP ]] || say "pm2 column skipped: $PM2_SKIP"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
args=(--work "$WORK" --rcluster "$RC" --rc-home "$RC_HOME" --pids "$PIDS"
      --rounds "$ROUNDS" --duration "$DURATION")
[[ -n $PM2_SKIP ]] || args+=(--pm2 "$PM2" --pm2-home "$PM2_HOME_DIR")
[[ -z $NGINX ]] || args+=(--nginx "$NGINX")
# `ip link set lo up` inside: a new namespace's loopback starts down.
run_helper "${NETNS[@]}" sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh \
    python3 "$HERE/bench.py" "${args[@]}" >"$WORK/results.json" || die "the measurements failed (see above)"

M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') M_MACHINE="$(uname -s) $(uname -r) $(uname -m)" M_NPROC=$(nproc) \
M_CPU=$(cpu_model) M_COMMIT=$COMMIT M_RC_VERSION=$RC_VERSION M_PM2_VERSION=$([[ -n $PM2_SKIP ]] || echo "${PM2_VER:-}") \
M_PM2_SKIP=$PM2_SKIP M_NODE=$(node --version) M_LOAD=$LOAD_BEFORE \
M_NGINX=$([[ -z $NGINX ]] || "$NGINX" -v 2>&1 | sed 's|.*nginx/||') \
python3 - >"$WORK/meta.json" <<'EOF'
import json, os
e = os.environ
print(json.dumps({"date": e["M_DATE"], "machine": e["M_MACHINE"], "nproc": e["M_NPROC"],
                  "cpu": e["M_CPU"], "commit": e["M_COMMIT"], "rc_version": e["M_RC_VERSION"],
                  "pm2_version": e["M_PM2_VERSION"], "pm2_skip": e["M_PM2_SKIP"],
                  "nginx_version": e["M_NGINX"], "node": e["M_NODE"], "loadavg": e["M_LOAD"]}))
EOF
python3 "$HERE/report.py" "$WORK/results.json" "$WORK/meta.json" >"$WORK/section.md"

publish_section
