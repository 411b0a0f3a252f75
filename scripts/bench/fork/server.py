# A one-instance Python server as pm2 users run it (`pm2 start server.py`): binds 127.0.0.1 on
# the port given as argv[1] (else $PORT) itself, threads per request, HTTP/1.1 keep-alive, and
# answers with its pid so that the benchmark sees which process served.
import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = f"{os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["PORT"])
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
