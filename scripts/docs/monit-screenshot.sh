#!/usr/bin/env bash
# The screenshot of `rcluster monit` in the README (docs/monit.png): a few real apps (Express in
# cluster mode under a little load, a Python worker that logs), monit in a 132x36 tmux pane, the
# pane captured with its colours, turned into HTML (ansi2html.py) and photographed by headless
# Chromium.
#
#   bash scripts/docs/monit-screenshot.sh [OUT.png]      (default docs/monit.png)
#
# Needs tmux, chromium, node with express (NODE_PATH), python3. RCLUSTER_BIN=<path> uses
# that binary (default: target/release/rcluster, built if missing). Everything runs in a private
# RCLUSTER_HOME and a private tmux server, ended by the trap: `rcluster kill`, then the tmux
# server by its socket.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-docs/monit.png}
for tool in tmux chromium node python3; do
    command -v "$tool" >/dev/null || { echo "monit-screenshot: $tool is required" >&2; exit 1; }
done
RC=${RCLUSTER_BIN:-target/release/rcluster}
[[ -x $RC ]] || cargo build --release
RC=$(realpath "$RC")
WORK=$(mktemp -d)
export RCLUSTER_HOME=$WORK/home
SOCK=$WORK/tmux.sock
cleanup() {
    tmux -S "$SOCK" kill-server 2>/dev/null || true
    "$RC" kill >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/app"
cat >"$WORK/app/server.js" <<'JS'
const express = require('express');
const app = express();
let served = 0;
app.get('/', (req, res) => {
  const start = process.hrtime.bigint();
  let x = 0; for (let i = 0; i < 3e6; i++) x += i;   // some work per request
  res.send(`hello from ${process.env.RCLUSTER_INSTANCE} ${x}\n`);
  if (++served % 25 === 0) {
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    console.log(`GET / 200 ${ms.toFixed(1)} ms (${served} served)`);
  }
});
app.listen(3000, () => console.log(`listening on :3000 (instance ${process.env.RCLUSTER_INSTANCE})`));
JS
cat >"$WORK/app/worker.py" <<'PY'
import random, time
for job in range(1, 10**6):
    time.sleep(random.uniform(0.3, 1.2))
    print(f"job {job} done in {random.randint(3, 90)} ms")
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/3000/$PORT/g" "$WORK/app/server.js"
cd "$WORK/app"
NODE_PATH=${NODE_PATH:-/work/tools/node_modules} "$RC" start server.js --name api -i 2 >/dev/null
"$RC" start worker.py --name jobs >/dev/null
"$RC" start "sleep 100000" --name cron-idle >/dev/null
cd - >/dev/null
# Some traffic, bounded in time, so that CPU and the connection counts move.
python3 -c '
import sys, time, urllib.request
end = time.time() + 40
while time.time() < end:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=5).read()
    except OSError:
        time.sleep(0.1)
' "http://127.0.0.1:$PORT/" &
LOAD=$!
tmux -S "$SOCK" -f /dev/null new-session -d -x 132 -y 36 "env RCLUSTER_HOME=$RCLUSTER_HOME $RC monit --interval 500ms"
sleep 30   # sparklines of the last half minute
tmux -S "$SOCK" capture-pane -e -p >"$WORK/capture.txt"
kill "$LOAD" 2>/dev/null || true
python3 scripts/docs/ansi2html.py "$WORK/capture.txt" >"$WORK/page.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/chromium" --hide-scrollbars --window-size=1224,$((36 * 18 + 30)) \
    --screenshot="$WORK/shot.png" "file://$WORK/page.html" >/dev/null 2>&1
mkdir -p "$(dirname "$OUT")"
cp "$WORK/shot.png" "$OUT"
echo "monit-screenshot: wrote $OUT"
