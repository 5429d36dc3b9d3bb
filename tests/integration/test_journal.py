"""The session journal with real sessions: `procrun logs` (filters, --grep, --json, -f ending with
the session, after a SIGKILL of procrun), sessions kept, and the HTML timeline in a real Chromium."""

import base64
import http.client
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.browser import Browser, chromium
from tests.integration.helpers import ctl, free_base, wait_until, write_app

PY = sys.executable
BACKEND = Path(__file__).with_name("backend.py")
STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def logs(root, *args, check=True):
    return ctl(root, "logs", *args, check=check)


def sessions(root):
    return sorted(p.name for p in (root / ".procrun" / "sessions").iterdir())


def unstamped(text):
    lines = text.splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [line[9:] for line in lines]


def test_logs_shows_what_start_printed_filtered_and_exact(procrun, tmp_path):
    write_app(tmp_path, "a: printf 'one\\ntwo\\n'; printf '\\377\\376 raw\\n'; sleep 1\n"
                        "b: echo from-b; sleep 3\n")
    run = procrun("start", "--no-color")
    run.wait(timeout=20)  # b is stopped when a exits, as honcho does
    printed = unstamped(run.text())
    shown = unstamped(logs(tmp_path).stdout)
    assert shown == printed  # every line, system lines included, in the same format
    assert "a.1    | one" in shown and "b.1    | from-b" in shown
    assert unstamped(logs(tmp_path, "b").stdout) == ["b.1    | from-b"]
    assert unstamped(logs(tmp_path, "a.1", "--grep", "^tw").stdout) == ["a.1    | two"]
    assert logs(tmp_path, "--since", "1h").stdout == logs(tmp_path).stdout
    records = [json.loads(line) for line in logs(tmp_path, "--json").stdout.splitlines()]
    chunks = [base64.b64decode(r["b"]) if "b" in r else r["s"].encode()
              for r in records if r["k"] == "out" and r["n"] == "a.1"]
    assert b"\n".join(chunks) == b"one\ntwo\n\xff\xfe raw"  # bytes that are not UTF-8 kept exactly
    kinds = [r["k"] for r in records]
    assert kinds.count("start") == 2 and kinds.count("exit") == 2 and kinds[-1] == "end"
    exits = {r["n"]: r for r in records if r["k"] == "exit"}
    assert exits["a.1"]["code"] == 0 and not exits["a.1"]["asked"]
    assert exits["b.1"]["code"] == -signal.SIGTERM and exits["b.1"]["asked"]
    bad = logs(tmp_path, "--since", "ten minutes", check=False)
    assert bad.returncode == 2 and "write it like 30s" in bad.stderr and "Traceback" not in bad.stderr


def test_follow_prints_as_lines_come_and_ends_with_the_session(procrun, tmp_path):
    write_app(tmp_path, "t: i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"t\.1 +\| tick 3")
    out = tmp_path / "follow.txt"
    with open(out, "w") as f:
        follower = subprocess.Popen([PY, "-m", "procrun", "logs", "-f", "-d", str(tmp_path)], stdout=f)
    try:
        count = len(re.findall("tick", run.text()))
        wait_until(lambda: len(re.findall("tick", out.read_text())) > count + 5, timeout=10)  # new lines, live
        assert follower.poll() is None
        run.signal(signal.SIGINT)
        run.wait()
        assert follower.wait(timeout=10) == 0  # ends when the session does
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert out.read_text() == logs(tmp_path).stdout
    assert "SIGINT received" in out.read_text()


CHATTY = ("import os, sys, time\nwhile not os.path.exists('go'):\n    time.sleep(0.05)\n"
          "for i in range(400_000):\n    sys.stdout.write(f'line {i}\\n')\nsys.stdout.flush()\ntime.sleep(100)\n")


def test_follow_across_rotation_reads_every_segment_or_says_where_lines_are_missing(procrun, tmp_path):
    """Regression (#27): `logs -f` with journal max_mb 1 under a chatty app skipped silently: 31
    gaps, 288k of 911k lines shown, one notice. A segment removed while read is read to its end
    (it stays open), the follower reads again at once while lines come, and a gap that still
    happens is said where it is."""
    write_app(tmp_path, f"chatty: exec {PY} chatty.py\n", chatty__py=CHATTY,
              procrun__yaml="journal: {max_mb: 1}\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"chatty\.1 started")
    follower = subprocess.Popen([PY, "-m", "procrun", "logs", "-f", "-d", str(tmp_path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)  # following
        (tmp_path / "go").touch()
        wait_until(lambda: "line 399999" in logs(tmp_path).stdout, timeout=60)
        run.signal(signal.SIGINT)
        run.wait()
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    numbers = [int(n) for n in re.findall(r"chatty\.1 +\| line (\d+)", out)]
    jumps = sum(1 for a, b in zip(numbers, numbers[1:]) if b != a + 1)
    said = err.count("are missing here: the journal's size cap removed them")
    assert numbers and numbers[-1] == 399999 and numbers == sorted(numbers)
    assert jumps <= said <= jumps + 1, (jumps, said, len(numbers))  # no silent gap, no false alarm


def test_what_was_relayed_is_in_the_journal_after_a_sigkill_of_procrun(procrun, tmp_path):
    write_app(tmp_path, "p: for i in $(seq 1 3000); do echo line-$i; done; sleep 100\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"p\.1 +\| line-3000$")
    run.proc.kill()
    run.wait()
    shown = logs(tmp_path, "p").stdout
    assert [line.split("| ", 1)[1] for line in shown.splitlines()] == [f"line-{i}" for i in range(1, 3001)]
    assert logs(tmp_path, "-f").returncode == 0  # the session is gone: -f does not wait for it


def test_the_last_sessions_are_kept_and_no_journal_writes_none(procrun, tmp_path):
    write_app(tmp_path, "a: true\n", procrun__yaml="journal:\n  keep: 2\n")
    for _ in range(3):
        procrun("start").wait(timeout=20)
        time.sleep(1.01)  # session ids are per second (and pid)
    kept = sessions(tmp_path)
    assert len(kept) == 2
    procrun("start", "--no-journal").wait(timeout=20)
    assert sessions(tmp_path) == kept
    earlier = logs(tmp_path, "--session", kept[0]).stdout
    assert "a.1 stopped" in earlier or "a.1 exited" in earlier
    missing = logs(tmp_path, "--session", "nope", check=False)
    assert missing.returncode != 0 and "no session 'nope'" in missing.stderr


def _browse(port, seconds):
    deadline = time.monotonic() + seconds
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < deadline:
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
        time.sleep(0.02)
    conn.close()


@pytest.mark.timeout(120)
def test_chaos_session_page_in_a_real_browser(procrun, tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium here (scripts/test installs Debian's chromium under CI)")
    write_app(tmp_path, f"web: exec {PY} {BACKEND}\nworker: sleep 1000\n")
    port = free_base()
    run = procrun("start", "--chaos", "--chaos-interval", "0.4", "--chaos-seed", "3", "-c", "web=2",
                  "-p", str(port), "-t", "0.5", "--no-color")
    run.wait_count(r"web\.\d is ready on port", 2, timeout=30)
    _browse(port, 4)
    ctl(tmp_path, "quit")
    run.wait(timeout=20)
    auto = re.search(r"timeline: file://(\S+)$", run.text(), re.M)
    assert auto and Path(auto[1]).is_file()  # a chaos session writes its page unasked
    page = tmp_path / "page.html"
    assert ctl(tmp_path, "report", "--html", str(page)).stdout.strip() == f"wrote file://{page}"
    records = [json.loads(line) for line in logs(tmp_path, "--json").stdout.splitlines()]
    names = {r["n"] for r in records if r["k"] == "start"}
    chaos = [r for r in records if r["k"] == "chaos"]
    assert len(chaos) >= 3 and any(r["k"] == "req" for r in records)
    browser = Browser(binary)
    try:
        for width in (1280, 390):
            session = browser.open(page.as_uri(), width)
            counts = browser.evaluate(session, "[document.querySelectorAll('g.lane').length,"
                                               "document.querySelectorAll('path.chaos').length,"
                                               "document.querySelectorAll('svg path.ok').length,"
                                               "document.documentElement.scrollWidth, window.innerWidth]")
            assert counts[:2] == [len(names), len(chaos)]
            assert counts[2] == 1  # the request bars
            assert counts[3] <= counts[4], f"horizontal scroll at {width}px"
            shot = browser.screenshot(session)
            assert shot.startswith(b"\x89PNG") and len(shot) > 5000
            assert browser.errors() == []
            assert browser.requests() == [page.as_uri()]  # nothing but the page itself
    finally:
        browser.close()
