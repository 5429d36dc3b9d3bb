"""A web process (one request at a time) whose redis client has no timeout: after a blackhole it
waits forever, and so does every request behind it."""
import http.server
import os

import redis

r = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=None)  # none (redis-py 8 defaults to 5 s)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(r.incr("hits")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
