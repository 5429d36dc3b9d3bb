"""Start order with real processes: a worker `after: [web]` starts once web's port accepts."""

import json
import sys
from pathlib import Path

from tests.integration.helpers import ctl, free_base, write_app

BACKEND = Path(__file__).with_name("backend.py")


def test_worker_starts_after_web_is_ready(procrun, tmp_path):
    write_app(tmp_path, f"web: sleep 1; exec {sys.executable} {BACKEND}\nworker: echo worker up; sleep 100\n",
              procrun__yaml="types:\n  worker: {after: [web]}\n")
    run = procrun("start", "-p", str(free_base()), "--no-color")
    run.wait_for(r"worker waits for web to be ready before it starts")
    states = {p["name"]: p["state"] for p in json.loads(ctl(tmp_path, "ps", "--json").stdout)}
    assert states["worker.1"] == "waiting" and states["web.1"] == "starting"
    run.wait_for(r"worker\.1 +\| worker up", timeout=15)
    out = run.text()
    assert out.index("web.1 is ready on port") < out.index("web ready; starting worker") < out.index("worker.1 started")
    ctl(tmp_path, "quit")
    run.wait()


def test_a_dependency_that_never_gets_ready_is_named_and_the_type_starts(procrun, tmp_path):
    write_app(tmp_path, "web: sleep 100\nworker: echo worker up; sleep 100\n",
              procrun__yaml="types:\n  worker: {after: [web]}\n  web: {boot_timeout: 1}\n")
    run = procrun("start", "-p", str(free_base()), "--no-color")
    run.wait_for(r"web not ready after 1s; starting worker anyway", timeout=10)
    run.wait_for(r"worker\.1 +\| worker up")
    ctl(tmp_path, "quit")
    run.wait()
