"""Hidden state diagnosed, not just broken: the demo app and its stateless twin under chaos,
and a real framework (Flask) three ways behind the router."""

import hashlib
import http.client
import json
import re
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, free_base, write_app

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
COOKIE_MARK = "sid="


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".procrun":
            continue
        digest.update(str(rel).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


class User:
    """A browser-like client of the router: keeps its cookies, logs in again when forgotten."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.cookies: dict[str, str] = {}
        self.seen: list[tuple[str, int]] = []

    def call(self, method, path, body=None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            text = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, ""
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]
        self.seen.append((path, response.status))
        return response.status, text

    def close(self):
        self.conn.close()


def flows(user, rounds, login="/login"):
    """Log in, then /me, upload, read back; log in again after two answers that forgot us."""
    user.call("POST", login, b"")
    upload, forgotten = "", 0
    for i in range(rounds):
        status, _ = user.call("GET", "/me")
        forgotten = forgotten + 1 if status in (401, 302) else 0
        if forgotten >= 2:
            user.call("POST", login, b"")
            forgotten = 0
        if i % 5 == 1:
            status, text = user.call("POST", "/upload", b"hello")
            upload = text.strip().rsplit(" ", 1)[-1] if status == 201 else upload
        elif upload and i % 5 == 3:
            user.call("GET", f"/uploads/{upload}")


def report(root):
    return json.loads(ctl(root, "report", "--json").stdout)


def demo(tmp_path, which, env=""):
    root = tmp_path / "app"
    shutil.copytree(REPO / "examples" / which, root / "examples" / which)
    write_app(root, f"web: exec {PY} examples/{which}/web.py\n", __env=env)
    return root


@pytest.mark.timeout(120)
def test_stateful_demo_is_diagnosed_memory_and_files_and_its_root_untouched(procrun, tmp_path):
    root = demo(tmp_path, "app")
    before = tree_hash(root)
    port = free_base()
    run = procrun("start", "--chaos", "--chaos-interval", "0.5", "--chaos-seed", "5", "--chaos-types", "web",
                  "-c", "web=3", "-p", str(port), "-t", "0.5", cwd=root)
    run.wait_count(r"web\.\d is ready on port", 3, timeout=30)
    user = User(port)
    browsing = threading.Thread(target=flows, args=(user, 220))
    try:
        browsing.start()  # the first /me that meets another instance exposes the sessions at once
        run.wait_for(r"finding +\| GET /me with the same session: (?:200 from|issued by) web\.\d.*, 401 from web\.\d.* — state kept "
                     r"in process memory \(sessions\?\) \[confirmed\]", timeout=10)
        run.wait_for(r"warning +\| web\.\d wrote uploads/[0-9a-f]{8}\.txt", timeout=10)
        browsing.join(timeout=60)
        assert len(user.seen) >= 300
        data = report(root)
        assert data["schema"] == 1
        assert data["kinds"]["memory"] == "confirmed" or data["kinds"].get("disk") == "confirmed"
        assert data["kinds"]["files"] == "confirmed"
        memory = [f for f in data["state"] if f["request"] == "GET /me"]
        assert memory and memory[0]["rule"].startswith("twelve-factor VI") and "Redis" in memory[0]["fix"]
        assert all(len(e) == 3 for e in memory[0]["evidence"])
        # one clock in the report (#27: evidence was monotonic seconds, events epoch seconds)
        now = time.time()
        assert all(now - 120 < e[0] <= now + 1 for e in memory[0]["evidence"])
        assert all(now - 120 < e["at"] <= now + 1 for e in data["events"])
        assert ctl(root, "report", "--fail-on", "confirmed", check=False).returncode == 1
    finally:
        browsing.join(timeout=60)
        user.close()
    ctl(root, "quit")
    run.wait(timeout=20)
    assert tree_hash(root) == before  # chaos means fresh directories: the app root is never written
    out = run.text()
    assert "hidden local state: " in out and "memory (confirmed)" in out
    kept = [p.read_text(errors="replace") for p in (root / ".procrun" / "sessions").rglob("*") if p.is_file()]
    assert any("report.html" in p.name for p in (root / ".procrun" / "sessions").rglob("*"))
    for value in user.cookies.values():  # cookie values never appear in output, report, journal or page
        assert value not in out
        assert value not in (root / ".procrun" / "report.json").read_text()
        assert all(value not in text for text in kept)


@pytest.mark.timeout(120)
def test_stateless_twin_gives_no_finding(procrun, tmp_path):
    store = tmp_path / "store.db"
    root = demo(tmp_path, "stateless", env=f"SECRET_KEY=twelve-factor\nSTORE={store}\n")
    port = free_base()
    run = procrun("start", "--chaos", "--chaos-interval", "0.5", "--chaos-seed", "5", "--chaos-types", "web",
                  "-c", "web=3", "-p", str(port), "-t", "0.5", cwd=root)
    run.wait_count(r"web\.\d is ready on port", 3, timeout=30)
    user = User(port)
    try:
        flows(user, 220)
        assert len(user.seen) >= 300
        assert sum(1 for _, status in user.seen if status in (401, 404)) == 0
        assert run.proc.poll() is None
        data = report(root)
        assert data["state"] == [] and data["findings"] == [] and data["kinds"] == {}
        assert ctl(root, "report", "--fail-on", "suspected").returncode == 0
    finally:
        user.close()
    ctl(root, "quit")
    run.wait(timeout=20)
    assert "finding |" not in run.text() and "hidden local state: none found" in run.text()


FLASK = [("shared", "", None), ("memory", "", "memory"), ("memory", "?redirect=1", "memory"),
         ("random", "", "secret-key")]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode, query, kind", FLASK)
def test_flask_sessions(procrun, tmp_path, mode, query, kind):
    write_app(tmp_path, f"web: exec {PY} {HERE / 'flaskapp.py'}\n", __env=f"MODE={mode}\nSECRET_KEY=abc\n")
    port = free_base()
    run = procrun("start", "--router", "-c", "web=3", "-p", str(port), "-t", "0.5")
    run.wait_count(r"web\.\d is ready on port", 3, timeout=30)
    user = User(port)
    try:
        user.call("POST", "/login", b"")
        for _ in range(12):
            user.call("GET", "/me" + query)
        state = report(tmp_path)["state"]
        if kind is None:
            assert state == []
        else:
            assert {f["kind"] for f in state} == {kind}, state
            assert state[0]["status"] == "confirmed"
            run.wait_for(r"finding +\| GET /me with the same session: (?:200 from web\.\d|issued by web\.\d \(POST /login\)), "
                         + (r"302" if query else r"401"), timeout=5)
    finally:
        user.close()


def free_port(family, host):
    """A port the OS just gave out (free_base() caps its answer and may return a busy port)."""
    with socket.socket(getattr(socket, family)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


LISTENER = ("import socket, time; s = socket.socket(socket.{family}); "
            "s.bind(('{host}', {port})); s.listen(); time.sleep(600)")


@pytest.mark.parametrize("family, host", [("AF_INET", "127.0.0.1"), ("AF_INET6", "::1")])
def test_an_instance_listening_elsewhere_than_port_is_named(procrun, tmp_path, family, host):
    base, other = free_base(), free_port(family, host)
    code = LISTENER.format(family=family, host=host, port=other)
    write_app(tmp_path, f'web: exec {PY} -c "{code}"\n')
    run = procrun("start", "-p", str(base), "-t", "0.5")
    run.wait_for(rf"finding +\| web\.1 listens on {other}, not \$PORT={base} \(port binding\) \[confirmed\]",
                 timeout=15)
    state = report(tmp_path)["state"]
    assert state[0]["kind"] == "ports" and "twelve-factor VII" in state[0]["rule"]


def test_an_instance_that_binds_nothing_gets_a_warning_at_its_boot_timeout(procrun, tmp_path):
    write_app(tmp_path, "web: exec sleep 600\n", procrun__yaml="types:\n  web: {boot_timeout: 1}\n")
    run = procrun("start", "-p", str(free_base()), "-t", "0.5")
    run.wait_for(r"warning +\| web\.1 has bound no port 1s after it started", timeout=10)


WRITER = r'''
import http.server, os, uuid
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        os.makedirs("uploads", exist_ok=True)
        os.makedirs("__pycache__", exist_ok=True)
        os.makedirs("logs", exist_ok=True)
        open(f"uploads/{uuid.uuid4().hex[:8]}.txt", "w").write("x")
        open("__pycache__/cache.pyc", "w").write("x")
        open(os.path.join(os.environ["TMPDIR"], "scratch"), "w").write("x")
        open("logs/app.log", "a").write("line\n")
        self.send_response(201); self.send_header("Content-Length", "0"); self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''


def test_writes_are_named_as_they_happen_with_the_request_in_flight(procrun, tmp_path):
    (tmp_path / "writer.py").write_text(WRITER)
    write_app(tmp_path, f"web: exec {PY} writer.py\n")
    port = free_base()
    run = procrun("start", "--fresh", "--router", "-p", str(port), "-t", "0.5")
    run.wait_for(r"web\.1 is ready on port")
    user = User(port)
    try:
        for _ in range(3):
            assert user.call("POST", "/upload", b"x")[0] == 201
        run.wait_for(r"warning +\| web\.1 wrote uploads/[0-9a-f]{8}\.txt while serving POST /upload; the next "
                     r"instance will not see it", timeout=5)
        run.wait_for(r"warning +\| web\.1 wrote logs/app\.log while serving POST /upload; logs belong on stdout",
                     timeout=5)
    finally:
        user.close()
    ctl(tmp_path, "quit")
    run.wait(timeout=20)
    text = run.text()
    assert "__pycache__" not in text and "scratch" not in text.split("report")[0]  # caches and TMPDIR are fine
    assert len([l for l in text.splitlines() if "wrote uploads/" in l and "while serving" in l]) == 1  # grouped


def test_writes_through_a_linked_folder_are_their_own_kind(procrun, tmp_path):
    (tmp_path / "node_modules" / ".cache").mkdir(parents=True)
    write_app(tmp_path, "web: sleep 0.3; echo x > node_modules/.cache/build-1234abcd.json; exec sleep 600\n")
    run = procrun("start", "--fresh", "-t", "0.5")
    run.wait_for(r"warning +\| an instance wrote node_modules/\.cache/build-1234abcd\.json through the linked "
                 rf"node_modules/ \({re.escape(str(tmp_path))}/node_modules\), which is outside its fresh directory",
                 timeout=10)
