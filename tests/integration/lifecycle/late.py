"""A web server that answers /health 503 until FLAG exists (an app warming up: migrations, caches),
then 200; every other path 200 with the instance's name. The standard library only."""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLAG = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        healthy = self.path != "/health" or os.path.exists(FLAG)
        body = (b"ok " if healthy else b"warming up ") + os.environ["PS"].encode()
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print(f"GET {self.path} {200 if healthy else 503}", flush=True)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
