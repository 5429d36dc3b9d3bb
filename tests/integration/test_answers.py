"""#30: state that never errs, found by comparing answers across instances (router.compare at its
default) on real frameworks driven like a user: a Flask shop and a Django shop under `procrun
start --router -c web=3` alone. The stateful shops (a cart in a module-level dict, a per-process
cache of a price the app changes, a visit counter) are named within 30 s of ordinary use, by
path and never by value; their stateless twins, with pages carrying the time, CSRF tokens and
the instance's name, conditional GETs, a large page, a download and an event stream, give none."""

import http.client
import json
import re
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, free_base, write_app

HERE = Path(__file__).parent / "frameworks"
PY = sys.executable
SERVE = {"flask": f"{PY} -m gunicorn -b 127.0.0.1:$PORT -w 1 --chdir {HERE} shop_flask:app",
         "django": f"{PY} -m gunicorn -b 127.0.0.1:$PORT -w 1 --chdir {HERE} shop_django:application"}
EXTRA = {"flask": ("/catalog", "/big", "/events", "/export.csv"), "django": ()}
STATEFUL = {"GET /cart", "GET /price", "GET /visits"}


class Shopper:
    """A user's browser through the router: keeps cookies, sends Django's CSRF token back."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def call(self, method, path, form=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            form = {**form, **({"csrfmiddlewaretoken": self.csrf} if self.csrf else {})}
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode(errors="replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
        if token:
            self.csrf = token.group(1)
        return response.status, text


def findings(root):
    return json.loads(ctl(root, "report", "--json").stdout)["state"]


def shop(procrun, tmp_path, framework, mode):
    (tmp_path / "cache").mkdir()
    write_app(tmp_path, f"web: {SERVE[framework]}\n",
              __env=f"MODE={mode}\nSTORE={tmp_path / 'db.json'}\nCACHE_DIR={tmp_path / 'cache'}\n")
    run = procrun("start", "--router", "-c", "web=3", "-p", (port := str(free_base())), "--no-color")
    run.wait_count(r"web\.\d is ready", 3, timeout=30)
    return run, Shopper(int(port))


def browse(user, framework, until):
    """What a user does: look around (the price read on every instance, so each has cached it),
    put tea in the cart, an admin changes the price (one instance serves it and drops its own
    cache), then keep reading the cart, the price and the pages while the clock runs."""
    user.call("GET", "/")
    user.call("GET", "/cart")
    for _ in range(4):
        user.call("GET", "/price")
    user.call("POST", "/cart", {"item": "tea"})
    user.call("POST", "/price", {"price": "12.00"})
    while time.monotonic() < until():
        for path in ("/cart", "/price", "/visits", "/", *EXTRA[framework]):
            assert user.call("GET", path)[0] == 200
        if framework == "flask":
            assert user.call("GET", "/catalog", headers={"If-None-Match": '"catalog-v1"'})[0] == 304
        time.sleep(0.3)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_a_stateful_shop_is_named_within_30_seconds_by_path_never_by_value(procrun, tmp_path, framework):
    run, user = shop(procrun, tmp_path, framework, "stateful")
    start = time.monotonic()

    def named():
        return {f["request"] for f in findings(tmp_path) if f["kind"] == "answers"} >= STATEFUL

    checked = [0.0]

    def until():  # browse until all three are named (checking every 2 s), at most 30 s
        if time.monotonic() - checked[0] > 2:
            checked[0] = time.monotonic()
            if named():
                return 0
        return start + 30

    browse(user, framework, until)
    found = {f["request"]: f for f in findings(tmp_path) if f["kind"] == "answers"}
    assert set(found) >= STATEFUL, (time.monotonic() - start, found, run.text()[-3000:])
    cart = found["GET /cart"]["line"]
    assert re.search(r"the list at `(items|cart\.lines)` is empty on web\.\d, not on web\.\d", cart), cart
    assert "`price` differs between web" in found["GET /price"]["line"]
    assert "a count kept on its own by each instance" in found["GET /visits"]["line"]
    for f in found.values():
        assert "tea" not in f["line"] and "12.00" not in f["line"] and "10.00" not in f["line"]
        assert f["fix"].startswith("keep it in a backing store")
    assert all(f["kind"] == "answers" for f in findings(tmp_path))  # (no status rule fired: all 200)
    user.conn.close()
    ctl(tmp_path, "quit")
    run.wait()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("framework", ["flask", "django"])
def test_the_stateless_twin_gives_no_finding(procrun, tmp_path, framework):
    run, user = shop(procrun, tmp_path, framework, "stateless")
    start = time.monotonic()
    browse(user, framework, lambda: start + 20)
    assert findings(tmp_path) == []
    user.conn.close()
    ctl(tmp_path, "quit")
    run.wait()


@pytest.mark.timeout(120)
def test_router_compare_zero_turns_it_off(procrun, tmp_path):
    (tmp_path / "cache").mkdir()
    write_app(tmp_path, f"web: {SERVE['flask']}\n", __env=f"MODE=stateful\nSTORE={tmp_path / 'db.json'}\n",
              procrun__yaml="router: {compare: 0}\n")
    run = procrun("start", "--router", "-c", "web=3", "-p", (port := str(free_base())), "--no-color")
    run.wait_count(r"web\.\d is ready", 3, timeout=30)
    start, user = time.monotonic(), Shopper(int(port))
    browse(user, "flask", lambda: start + 8)
    user.conn.close()
    assert findings(tmp_path) == []
    ctl(tmp_path, "quit")
    run.wait()
