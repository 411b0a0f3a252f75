// The same hello-world server, socket-activated: takes its listener from fd 3 (LISTEN_FDS, as
// rcluster passes it for `--balance shared` and `--balance reuseport`).
'use strict';
const http = require('http');
if (Number(process.env.LISTEN_FDS || 0) < 1) {
  console.error('hello_fd.js: no LISTEN_FDS');
  process.exit(2);
}
const body = 'hello world\n';
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  })
  .listen({ fd: 3 });
