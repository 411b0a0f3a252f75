// Hello-world HTTP server, unmodified style: binds 127.0.0.1 on the port given as argv[2], else
// $PORT (proxy / least-conn give each instance a private one). Used for the direct rows, rcluster
// round-robin (the preload redirects this bind to the daemon's socket), proxy / least-conn, pm2
// cluster mode and behind nginx.
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
