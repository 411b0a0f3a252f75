// A one-instance Express 5 app as pm2 users write it: `app.listen(port, cb)` on the port given as
// argv[2] (else $PORT), no cluster module, no signal handler, no readiness call; answers with its
// pid so that the benchmark sees which process served.
'use strict';
const express = require('express');
const app = express();
app.get('/', (req, res) => res.type('text/plain').send(`${process.pid}\n`));
const port = Number(process.argv[2] || process.env.PORT);
app.listen(port, '127.0.0.1', (err) => {
  if (err) {
    console.error(`express.js: cannot listen on ${port}: ${err.code}`);
    process.exit(1);
  }
});
