"""Diagnosis on real frameworks, driven like a user: Django, Flask with Flask-Login and
Flask-Session, FastAPI; each stateful app written the way its tutorial writes it, with its
stateless twin. Under `procrun start --router -c web=3` alone (no chaos), a user logs in,
acts and reads back; the stateful app is named with the right cause, the twin gives nothing."""

import http.client
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.helpers import free_base, write_app

HERE = Path(__file__).parent / "frameworks"
PY = sys.executable
SERVE = {
    "django": f"{PY} -m gunicorn -b 127.0.0.1:$PORT -w 1 django_site:application",
    "flask-login": f"{PY} -m gunicorn -b 127.0.0.1:$PORT -w 1 flask_login_app:app",
    "fastapi": f"{PY} -m uvicorn fastapi_app:app --host 127.0.0.1 --port $PORT",
    "express": "node app.js",
}
MODULE = {"django": "django_site.py", "flask-login": "flask_login_app.py", "fastapi": "fastapi_app.py",
          "express": "express/app.js"}
READS = {"django": ("/me", "/me/items"), "flask-login": ("/me", "/me/items"),
         "fastapi": ("/users/me", "/users/me/items"), "express": ("/me", "/me/items")}
EXPRESS = HERE / "express"


class Browser:
    """A user's client through the router: keeps cookies (and a bearer token), follows nothing,
    logs in again when the app sends it to the login page."""

    def __init__(self, port, framework):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.framework = framework
        self.cookies: dict[str, str] = {}
        self.token = ""
        self.answers: list[int] = []

    def call(self, method, path, form=None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode(errors="replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if value.strip('"') and "max-age=0" not in header.lower():
                self.cookies[name.strip()] = value
            else:
                self.cookies.pop(name.strip(), None)
        return response.status, text

    def log_in(self):
        if self.framework == "fastapi":
            status, text = self.call("POST", "/token", {"username": "ada", "password": "pw"})
            self.token = re.search(r'"access_token":"([^"]+)"', text).group(1)
        elif self.framework == "django":
            status, text = self.call("GET", "/accounts/login/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text).group(1)
            self.call("POST", "/accounts/login/", {"csrfmiddlewaretoken": csrf, "username": "ada"})
        else:
            self.call("POST", "/login", {"username": "ada"})

    def use(self, reads, seconds):
        """Log in, then read back, path after path, for ``seconds``; log in again when forgotten."""
        self.log_in()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in reads:
                status, _ = self.call("GET", path)
                self.answers.append(status)
                if status in (302, 401, 403):
                    self.log_in()

    def close(self):
        self.conn.close()


@pytest.fixture(scope="session")
def express_modules():
    """express, express-session and cookie-session from the npm registry, as the committed
    lockfile pins them (npm ci), once per test run."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed for the Express app (Debian: nodejs, npm)")
    if not (EXPRESS / "node_modules" / "express-session").is_dir():
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    return EXPRESS / "node_modules"


def app_dir(tmp_path, framework, mode, request=None):
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(HERE / MODULE[framework], root)
    if framework == "express":
        (root / "node_modules").symlink_to(request.getfixturevalue("express_modules"))
    write_app(root, f"web: exec {SERVE[framework]}\n", __env=f"MODE={mode}\nSECRET_KEY=twelve-factor-shared\n")
    return root


CASES = [  # framework, mode, the cause procrun must name (None: the stateless twin)
    ("django", "memory", "memory"),
    ("django", "random", "secret-key"),
    ("django", "shared", None),
    ("flask-login", "random", "secret-key"),
    ("flask-login", "memory", "memory"),
    ("flask-login", "shared", None),
    ("fastapi", "memory", "memory"),
    ("fastapi", "shared", None),
    ("express", "memory", "memory"),  # express-session's s%3A<id>.<sig> is an opaque id, not signed data
    ("express", "shared", None),
]


CHAOS = ("--chaos", "--chaos-interval", "1.5", "--chaos-seed", "5", "--chaos-types", "web")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("chaos", [False, True], ids=["router", "chaos"])
@pytest.mark.parametrize("framework, mode, cause", CASES, ids=[f"{f}-{m}" for f, m, _ in CASES])
def test_a_real_framework_app_is_named_with_its_cause_and_its_twin_is_not(procrun, tmp_path, framework, mode, cause,
                                                                          request, chaos):
    """Under the router alone, and under chaos (fresh directories, kills, relocations, pauses)."""
    root = app_dir(tmp_path, framework, mode, request)
    port = free_base()
    run = procrun("start", "--router", "-c", "web=3", "-p", str(port), "-t", "1", *(CHAOS if chaos else ()),
                  cwd=root)
    run.wait_count(r"web\.\d is ready on port", 3, timeout=40)
    browser = Browser(port, framework)
    try:
        if cause is not None:
            browser.use(READS[framework], 3)
            run.wait_for(r"finding +\| .* \[confirmed\]$", timeout=20)
            data = ctl_report(root)
            kinds = {f["kind"] for f in data["state"] if f["status"] == "confirmed"}
            # under chaos an opaque session is also lost with a restarted process (forgotten)
            assert cause in kinds and kinds <= {cause, "forgotten" if chaos and cause == "memory" else cause}, \
                data["state"]
        else:
            browser.use(READS[framework], 4)
            if not chaos:  # (under chaos, a request may meet an instance being killed: 502/503)
                assert set(browser.answers) == {200}, browser.answers  # the twin never forgets its user
            assert not {302, 401, 403} & set(browser.answers), browser.answers
            data = ctl_report(root)
            assert data["state"] == [] and data["findings"] == [], (data["state"], data["findings"])
    finally:
        browser.close()
        run.signal(signal.SIGINT)
        run.wait(timeout=20)
    if cause is None:
        assert "finding |" not in run.text()


def ctl_report(root):
    import json

    from tests.integration.helpers import ctl

    return json.loads(ctl(root, "report", "--json").stdout)


DEPLOYS = [("flask-login", "secret"), ("django", "secret"), ("flask-login", "route"), ("django", "route")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("framework, change", DEPLOYS, ids=[f"{f}-{c}" for f, c in DEPLOYS])
def test_a_deploy_under_watch_is_never_a_finding(procrun, tmp_path, framework, change):
    """A rotated SECRET_KEY (.env) or a moved route (code) restarts the instances as a new release:
    answers of the old and the new release are never compared, so what the user sees across the
    rolling restart (logged out, a 404 where a page was) is not hidden state."""
    root = app_dir(tmp_path, framework, "shared")
    port = free_base()
    run = procrun("start", "--router", "--watch", "-c", "web=3", "-p", str(port), "-t", "1", cwd=root)
    run.wait_count(r"web\.\d is ready on port", 3, timeout=40)
    browser = Browser(port, framework)
    try:
        browser.use(READS[framework], 2)
        if change == "secret":
            (root / ".env").write_text("MODE=shared\nSECRET_KEY=rotated-at-deploy\n")
        else:
            module = root / MODULE[framework]
            module.write_text(module.read_text().replace('"/me/items"', '"/me/things"').replace(
                '"me/items"', '"me/things"'))
        run.wait_for(r"rolling restart of web", timeout=20)
        browser.use(READS[framework], 2)  # old and new release side by side, then the new alone
        run.wait_count(r"web\.\d is ready on port", 7, timeout=40)
        browser.use(READS[framework], 2)
        assert ctl_report(root)["state"] == []
    finally:
        browser.close()
        run.signal(signal.SIGINT)
        run.wait(timeout=20)
    assert "finding |" not in run.text()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["tmpdir", "shared"])
def test_tmpdir_used_across_requests_is_named_under_the_router_alone(procrun, tmp_path, mode):
    """Each instance behind the router has a TMPDIR of its own, as on separate machines: an upload
    kept there for the next request fails on another instance (500), and procrun names TMPDIR."""
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(HERE / "upload_app.py", root)
    store = tmp_path / "store"
    store.mkdir()
    write_app(root, f"web: exec {PY} -m gunicorn -b 127.0.0.1:$PORT -w 1 upload_app:app\n",
              __env=f"MODE={mode}\nSTORE={store}\n")
    port = free_base()
    run = procrun("start", "--router", "-c", "web=3", "-p", str(port), "-t", "1", cwd=root)
    run.wait_count(r"web\.\d is ready on port", 3, timeout=40)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers = []
    try:
        for _ in range(12):
            conn.request("POST", "/upload", body=b"a,b\n1,2\n")
            name = re.search(r'"id":\s*"([^"]+)"', conn.getresponse().read().decode()).group(1)
            conn.request("GET", f"/process/{name}")
            response = conn.getresponse()
            response.read()
            answers.append(response.status)
        if mode == "tmpdir":
            run.wait_for(r"finding +\| GET /process/<id>\.csv .* — a file kept in TMPDIR between requests.* "
                         r"\[confirmed\]$", timeout=15)
            assert {f["kind"] for f in ctl_report(root)["state"]} == {"tmpdir"}
            assert 500 in answers
        else:
            assert set(answers) == {200} and ctl_report(root)["state"] == []
    finally:
        conn.close()
        run.signal(signal.SIGINT)
        run.wait(timeout=20)
    if mode == "shared":
        assert "finding |" not in run.text() and "warning |" not in run.text()


@pytest.mark.timeout(90)
def test_server_side_sessions_on_local_disk_are_named_disk_under_chaos(procrun, tmp_path, request):
    """Flask-Session's filesystem backend: each instance starts from the slug in a fresh directory,
    so a session file written while serving the login lives on one instance's disk."""
    root = app_dir(tmp_path, "flask-login", "files", request)
    port = free_base()
    run = procrun("start", "--router", "-c", "web=3", "-p", str(port), "-t", "1", *CHAOS, cwd=root)
    run.wait_count(r"web\.\d is ready on port", 3, timeout=40)
    browser = Browser(port, "flask-login")
    try:
        browser.use(READS["flask-login"], 3)
        run.wait_for(r"finding +\| .* — state kept on local disk.* \[confirmed\]$", timeout=20)
        assert "disk" in {f["kind"] for f in ctl_report(root)["state"] if f["status"] == "confirmed"}
    finally:
        browser.close()
        run.signal(signal.SIGINT)
        run.wait(timeout=20)
