// Hello-world HTTP server for the reload benchmark, unmodified style: no cluster module, no signal
// handler, no readiness call. Binds 127.0.0.1 on the port given as argv[2] (else $PORT). pm2 runs
// it in cluster mode (`pm2 start hello.js -i 4 -- PORT`), rcluster as `rcluster start hello.js -i 4
// -- PORT` (its preload hands the bind to the daemon's shared socket).
'use strict';
const http = require('http');
const port = Number(process.argv[2] || process.env.PORT);
if (!port) {
  console.error('hello.js: no port (argv[2] or $PORT)');
  process.exit(2);
}
const body = 'hello world\n';
http
  .createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  })
  .listen(port, '127.0.0.1');
