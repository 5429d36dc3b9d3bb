"""Backing chaos under load, for a minute (scripts/bench runs the same for five): web=4 worker=4
under --chaos --chaos-interval 0.3 --chaos-backing, a client hammering the router, every web
request making a short connection to the service and every worker holding one. What cannot be
noise: procrun's descriptors back to their baseline once it is quiet again, faults still firing
at the end, every scheduled fault fired or skipped, no traceback."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.integration.helpers import ctl, free_base, write_app

PY = sys.executable
ECHO = r"""
import socket, sys, threading
def echo(c):
    try:
        while d := c.recv(65536):
            c.sendall(d)
    except OSError:
        pass
    c.close()
s = socket.create_server(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    threading.Thread(target=echo, args=(s.accept()[0],), daemon=True).start()
"""
WEB = r"""
import http.server, os, socket, urllib.parse
u = urllib.parse.urlsplit(os.environ["ECHO_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            with socket.create_connection((u.hostname, u.port), timeout=1) as c:
                c.sendall(b"ping"); c.shutdown(socket.SHUT_WR)
                status = 200 if c.recv(16) == b"ping" else 502
        except OSError:
            status = 503
        self.send_response(status); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""
WORKER = r"""
import os, socket, time, urllib.parse
u = urllib.parse.urlsplit(os.environ["ECHO_URL"])
c = None
while True:
    try:
        if c is None:
            c = socket.create_connection((u.hostname, u.port), timeout=1)
        c.sendall(b"job")
        if c.recv(16) != b"job":
            raise OSError("closed")
    except OSError:
        if c is not None:
            c.close()
        c = None
    time.sleep(0.05)
"""


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def soak(procrun, root, seconds, rate, sample=None):
    """Run the soak, ``rate`` requests a second on one keep-alive connection; what was measured.
    ``procrun`` starts a session (the test fixture, or scripts/bench's), ``sample(t, fds,
    rss_kib, ps_seconds)`` sees every 5 s. (Each request leaves two connections in TIME_WAIT
    for a minute, web to proxy and proxy to service: the rate keeps the machine's ports free.)"""
    echo = subprocess.Popen([PY, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    port = int(echo.stdout.readline())
    try:
        write_app(root, f"web: exec {PY} web.py\nworker: exec {PY} worker.py\n", web__py=WEB, worker__py=WORKER,
                  __env=f"ECHO_URL=http://localhost:{port}/\n")
        base = free_base()
        run = procrun("start", "--router", "-c", "web=4,worker=4", "--chaos", "--chaos-interval", "0.3",
                      "--chaos-backing", "--chaos-seed", "11", "-p", str(base), "--no-color", cwd=root)
        run.wait_for(r"backing +\| ECHO_URL", timeout=30)
        ctl(root, "chaos", "off")
        run.wait_for(r"web\.4 is ready on port", timeout=30)
        time.sleep(3)  # every worker connected, nothing in flight
        baseline = descriptors(run.proc.pid)
        ctl(root, "chaos", "on")
        stop, answers = threading.Event(), {}
        client = threading.Thread(target=hammer, args=(base, rate, stop, answers), daemon=True)
        client.start()
        started, samples = time.monotonic(), []
        while (elapsed := time.monotonic() - started) < seconds:
            time.sleep(5)
            t0 = time.monotonic()
            ctl(root, "ps")
            samples.append((elapsed, descriptors(run.proc.pid), rss_kib(run.proc.pid), time.monotonic() - t0))
            if sample is not None:
                sample(*samples[-1])
        faults_before_end = faults(root)
        time.sleep(5)
        still_firing = faults(root) - faults_before_end
        ctl(root, "chaos", "off")
        stop.set()
        client.join(timeout=10)
        time.sleep(8)  # the last fault (at most 5 s) ends, the workers connect again
        quiet = descriptors(run.proc.pid)
        counts = json.loads(ctl(root, "report", "--json").stdout).get("backing_counts", {})
        t0 = time.monotonic()
        run.signal(signal.SIGTERM)
        run.wait(timeout=60)
        return {"baseline": baseline, "quiet": quiet, "samples": samples, "still_firing": still_firing,
                "counts": counts, "answers": answers, "quit": time.monotonic() - t0,
                "output": run.text() + run.stderr.decode(errors="replace")}
    finally:
        echo.kill()
        echo.wait()
        echo.stdout.close()


def faults(root):
    return sum(1 for line in ctl(root, "logs", "--json").stdout.splitlines() if json.loads(line).get("k") == "fault")


def hammer(port, rate, stop, answers):
    conn, start, sent = None, time.monotonic(), 0
    while not stop.is_set():
        conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status, conn = "error", conn.close()
        answers[status] = answers.get(status, 0) + 1
        sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    if conn is not None:
        conn.close()


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_minute_of_backing_chaos_under_load_leaks_nothing_and_keeps_firing(procrun, tmp_path):
    got = soak(procrun, tmp_path / "app", 60, rate=50)
    assert abs(got["quiet"] - got["baseline"]) <= 5, (got["baseline"], got["quiet"], got["samples"])
    assert got["still_firing"] > 0  # faults still fire at the end
    counts = got["counts"]
    assert counts["scheduled"] > 50 and counts["fired"] + counts["skipped"] == counts["scheduled"]
    assert sum(n for status, n in got["answers"].items() if status == 200) > 100  # the app kept serving
    assert "Traceback" not in got["output"] and "exception" not in got["output"].lower()
