"""A deliberately stateful web app: it breaks the twelve-factor rule on purpose.

- sessions live in process memory (lost on restart, not shared between web.N):
  /me answers 401 to a session this process does not know, as real apps do;
- uploads are written next to the code (lost when the instance is relocated).

procrun's chaos mode, fresh directories and router exist to expose exactly this.
Its stateless twin is examples/stateless/web.py.
"""

import http.server
import os
import sys
import uuid

NAME = os.environ.get("PS", "web")
SESSIONS: dict[str, int] = {}  # hidden local state #1: memory
UPLOADS = "uploads"  # hidden local state #2: local disk next to the code


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status: int, text: str, cookie: str = "") -> None:
        body = f"{NAME}: {text}\n".encode()
        self.send_response(status)
        if cookie:
            self.send_header("Set-Cookie", f"sid={cookie}; Path=/; HttpOnly")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def session(self) -> str:
        return self.headers.get("Cookie", "").partition("sid=")[2].split(";")[0]

    def do_GET(self) -> None:
        if self.path.startswith("/uploads/"):
            name = os.path.basename(self.path)
            try:
                with open(os.path.join(UPLOADS, name)) as f:
                    return self.reply(200, f"upload {name} says {f.read()!r}")
            except FileNotFoundError:
                return self.reply(404, f"upload {name} is gone")
        if self.path == "/me":
            sid = self.session()
            if sid not in SESSIONS:
                return self.reply(401, "who are you? this process knows no such session; log in again")
            SESSIONS[sid] += 1
            return self.reply(200, f"session {sid} has {SESSIONS[sid]} visit(s)")
        self.reply(200, "hello")

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/login":
            sid = uuid.uuid4().hex[:8]
            SESSIONS[sid] = 0
            return self.reply(200, f"logged in as session {sid}", cookie=sid)
        os.makedirs(UPLOADS, exist_ok=True)
        name = uuid.uuid4().hex[:8] + ".txt"
        with open(os.path.join(UPLOADS, name), "wb") as f:
            f.write(data)
        self.reply(201, f"stored upload {name}")

    def log_message(self, fmt: str, *args: object) -> None:
        # one write per line: print() writes the text and the newline apart, and two threads' lines mix
        sys.stdout.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "5000"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
