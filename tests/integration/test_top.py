"""procrun top in a real terminal (tmux): rows and states, keys that act, resize, NO_COLOR, quitting."""

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, free_base, wait_until, write_app

PY = sys.executable
BACKEND = Path(__file__).with_name("backend.py")


class Tmux:
    def __init__(self, command: str, env: dict[str, str] | None = None) -> None:
        self.server = f"procrun-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        self.tmux("new-session", "-d", "-s", "top", "-x", "80", "-y", "24",
                  f"{exports} {command}; echo TOP-EXITED $?; sleep 60")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=10).stdout

    def screen(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-t", "top", "-p", *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "top", *keys)

    def close(self) -> None:
        self.tmux("kill-server")


def pids(root):
    return {p["name"]: p["pid"] for p in json.loads(ctl(root, "ps", "--json").stdout)}


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        pytest.skip("no tmux here (scripts/test installs it under CI)")
    made = []

    def start(command, env=None):
        made.append(Tmux(command, env))
        return made[-1]
    yield start
    for t in made:
        t.close()


def test_top_shows_every_instance_and_its_keys_act(procrun, tmp_path, tmux):
    write_app(tmp_path, f"web: exec {PY} {BACKEND}\nworker: sleep 1000\n")
    run = procrun("start", "-c", "web=2", "-p", str(free_base()), "--no-color")
    run.wait_count(r"web\.\d is ready on port", 2)
    term = tmux(f"{PY} -m procrun top -d {tmp_path}")
    rows = lambda: {line.split()[0]: line.split()[1] for line in term.screen().splitlines()  # noqa: E731
                    if line.split() and line.split()[0] in ("web.1", "web.2", "web.3", "worker.1")}
    wait_until(lambda: rows() == {"web.1": "running", "web.2": "running", "worker.1": "running"}, timeout=10)
    assert all(len(line) <= 80 for line in term.screen().splitlines())
    before = pids(tmp_path)["web.2"]
    term.keys("j", "r")  # the second row, restart
    wait_until(lambda: pids(tmp_path)["web.2"] not in (before, None), timeout=10)
    wait_until(lambda: "restarting web.2" in term.screen(), timeout=5)
    term.keys("+")  # scale the selected row's type up by one
    wait_until(lambda: rows().get("web.3") == "running", timeout=10)
    term.tmux("resize-window", "-t", "top", "-x", "60", "-y", "12")
    wait_until(lambda: "web.3" in term.screen() and all(len(line) <= 60 for line in term.screen().splitlines()),
               timeout=5)
    term.keys("q")
    wait_until(lambda: "TOP-EXITED 0" in term.screen(), timeout=5)
    assert sorted(pids(tmp_path)) == ["web.1", "web.2", "web.3", "worker.1"]  # the session goes on
    ctl(tmp_path, "quit")
    run.wait()


def test_top_without_colour_when_no_color_is_set(procrun, tmp_path, tmux):
    write_app(tmp_path, "worker: sleep 1000\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"worker\.1 started")
    coloured = tmux(f"{PY} -m procrun top -d {tmp_path}")
    plain = tmux(f"{PY} -m procrun top -d {tmp_path}", {"NO_COLOR": "1"})
    wait_until(lambda: "worker.1" in coloured.screen() and "worker.1" in plain.screen(), timeout=10)
    assert "\x1b[32m" in coloured.screen(escapes=True)  # running is green
    assert not re.search(r"\x1b\[3[0-7]m", plain.screen(escapes=True))  # no colour (39: the default)
    ctl(tmp_path, "quit")
    run.wait()


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_the_logs_pane_follows_searches_cycles_and_fits_small_terminals(procrun, tmp_path, tmux):
    """#29: under the table, the selected instance's lines (l: its type's, everyone's), following
    live; / searches and highlights, n/N move, Enter full screen, Esc back; down to 20x6; a chatty
    instance does not grow procrun (the session sends a bounded batch a push)."""
    write_app(tmp_path, "tick: i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done\n"
                        f"chatty: exec {PY} chatty.py\n",  # 20,000 lines a second
              chatty__py="import sys, time\nwhile True:\n    sys.stdout.write('chatty line of output\\n' * 2000)\n"
                         "    sys.stdout.flush()\n    time.sleep(0.1)\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"tick\.1 +\| tick 2")
    term = tmux(f"{PY} -m procrun top -d {tmp_path}", env={"NO_COLOR": "1"})
    wait_until(lambda: "── logs: " in term.screen(), timeout=10)
    if "tick.1" not in term.screen().split("── logs: ")[1].split()[0]:
        term.keys("j")  # select the tick instance
    wait_until(lambda: term.screen().split("── logs: ")[1].startswith("tick.1"), timeout=5)
    first = re.findall(r"tick\.1 \| tick (\d+)", term.screen())
    wait_until(lambda: re.findall(r"tick\.1 \| tick (\d+)", term.screen())[-1:] > first[-1:], timeout=5)  # follows
    wait_until(lambda: len(re.findall(r"tick\.1 \| tick", term.screen())) >= 4, timeout=5)
    term.keys("/", "tick [0-9]+", "Enter")
    found = wait_until(lambda: re.search(r"match (\d+) of (\d+)", term.screen()), timeout=5)
    assert found[1] == found[2] and int(found[2]) >= 2  # from the end
    assert "\x1b[7m" in term.screen(escapes=True)  # the match shown in reverse video
    term.keys("N")
    wait_until(lambda: f"match {int(found[1]) - 1} of {found[2]}" in term.screen(), timeout=5)
    term.keys("l")
    wait_until(lambda: "logs of type" in term.screen(), timeout=5)
    term.keys("l")
    wait_until(lambda: "── logs: everyone" in term.screen() and "chatty.1 | chatty line" in term.screen(), timeout=5)
    before = _rss_kib(run.proc.pid)
    import time as clock

    clock.sleep(5)  # 100,000 lines meanwhile; top is sent a bounded batch a push
    assert _rss_kib(run.proc.pid) - before < 20_000
    term.keys("Enter")
    wait_until(lambda: "NAME" not in term.screen() and "── logs: " in term.screen(), timeout=5)  # full screen
    term.keys("Escape")
    wait_until(lambda: "NAME" in term.screen(), timeout=5)
    for size in (("80", "24"), ("20", "6")):
        term.tmux("resize-window", "-t", "top", "-x", size[0], "-y", size[1])
        wait_until(lambda: all(len(line) <= int(size[0]) for line in term.screen().splitlines())
                   and len(term.screen().splitlines()) <= int(size[1]), timeout=5)
    term.keys("q")
    wait_until(lambda: "TOP-EXITED 0" in term.screen(), timeout=5)
    ctl(tmp_path, "quit")
    run.wait()
