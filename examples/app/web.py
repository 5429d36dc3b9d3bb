"""A deliberately stateful web app: it keeps sessions in process memory.

Twelve-factor says processes share nothing; this one breaks that rule on
purpose, so procrun's router and chaos mode have something to expose.
"""

import http.server
import os
import uuid

NAME = os.environ.get("PS", "web")
SESSIONS: dict[str, int] = {}  # the hidden local state


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        cookie = self.headers.get("Cookie", "")
        sid = cookie.partition("sid=")[2].split(";")[0] or uuid.uuid4().hex[:8]
        SESSIONS[sid] = SESSIONS.get(sid, 0) + 1
        body = f"{NAME}: session {sid} has {SESSIONS[sid]} visit(s)\n".encode()
        self.send_response(200)
        self.send_header("Set-Cookie", f"sid={sid}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
