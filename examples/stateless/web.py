"""The stateless twin of examples/app/web.py: the same API, twelve-factor style.

- the session lives in a cookie signed with SECRET_KEY from the environment (.env),
  so every instance accepts it; visits are counted in the backing store;
- uploads go to the backing store (SQLite at $STORE, outside the app root), never
  next to the code.

Under procrun's chaos mode and router it answers the same whichever instance
serves, so procrun finds nothing.
"""

import hashlib
import hmac
import http.server
import os
import sys
import sqlite3
import uuid

NAME = os.environ.get("PS", "web")
SECRET = os.environ["SECRET_KEY"].encode()
STORE = os.environ["STORE"]


def db() -> sqlite3.Connection:
    conn = sqlite3.connect(STORE, timeout=10)
    conn.execute("CREATE TABLE IF NOT EXISTS visits (sid TEXT PRIMARY KEY, n INTEGER)")
    conn.execute("CREATE TABLE IF NOT EXISTS uploads (name TEXT PRIMARY KEY, data BLOB)")
    return conn


def sign(sid: str) -> str:
    return sid + "." + hmac.new(SECRET, sid.encode(), hashlib.sha256).hexdigest()[:16]


def verified(cookie: str) -> str | None:
    sid, _, _ = cookie.partition(".")
    return sid if sid and hmac.compare_digest(sign(sid), cookie) else None


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

    def do_GET(self) -> None:
        with db() as conn:
            if self.path.startswith("/uploads/"):
                name = os.path.basename(self.path)
                row = conn.execute("SELECT data FROM uploads WHERE name = ?", (name,)).fetchone()
                if row is None:
                    return self.reply(404, f"upload {name} is gone")
                return self.reply(200, f"upload {name} says {row[0].decode()!r}")
            if self.path == "/me":
                sid = verified(self.headers.get("Cookie", "").partition("sid=")[2].split(";")[0])
                if sid is None:
                    return self.reply(401, "who are you? log in first")
                conn.execute("INSERT INTO visits VALUES (?, 1) ON CONFLICT(sid) DO UPDATE SET n = n + 1", (sid,))
                n = conn.execute("SELECT n FROM visits WHERE sid = ?", (sid,)).fetchone()[0]
                return self.reply(200, f"session {sid} has {n} visit(s)")
        self.reply(200, "hello")

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/login":
            return self.reply(200, "logged in", cookie=sign(uuid.uuid4().hex[:8]))
        name = uuid.uuid4().hex[:8] + ".txt"
        with db() as conn:
            conn.execute("INSERT INTO uploads VALUES (?, ?)", (name, data))
        self.reply(201, f"stored upload {name}")

    def log_message(self, fmt: str, *args: object) -> None:
        # one write per line: print() writes the text and the newline apart, and two threads' lines mix
        sys.stdout.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "5000"))), Handler)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()
