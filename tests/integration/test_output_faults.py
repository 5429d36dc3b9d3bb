"""procrun's own output failing or stalling: the session always stops, and nothing is left."""

import os
import re
import signal
import subprocess
import sys
import time

from tests.integration.helpers import TOKEN_VAR, ctl, marked, wait_until, write_app


def _env(token):
    env = dict(os.environ, **{TOKEN_VAR: token})
    env.pop("NO_COLOR", None)
    return env


def _start(root, token, stdout, stderr=subprocess.PIPE, args=()):
    return subprocess.Popen([sys.executable, "-m", "procrun", "start", "-t", "0.5", *args], cwd=root,
                            env=_env(token), stdout=stdout, stderr=stderr, start_new_session=True)


def _cleanup(proc, token):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pid in marked(token):
        os.kill(pid, signal.SIGKILL)
    if proc.stderr is not None:
        proc.stderr.close()


def test_full_output_stops_every_child_with_one_line(tmp_path):
    write_app(tmp_path, "web: sleep 7781\nworker: sleep 7782\n")
    with open("/dev/full", "wb") as full:
        proc = _start(tmp_path, "full-" + tmp_path.name, full)
    try:
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 1
        assert err.decode().splitlines() == [
            "procrun: cannot write the output (No space left on device); stopped the session"]
        assert marked("full-" + tmp_path.name) == []
    finally:
        _cleanup(proc, "full-" + tmp_path.name)


def test_reader_going_away_ends_the_session_quietly_with_141(tmp_path):
    write_app(tmp_path, "".join(f"y{i}: yes\n" for i in range(8)))
    token = "pipe-" + tmp_path.name
    read_fd, write_fd = os.pipe()
    proc = _start(tmp_path, token, write_fd)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as out:
            assert out.readline()  # like `head -1`: read a line, then go away
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 141 and err == b""
        wait_until(lambda: marked(token) == [], timeout=5)
    finally:
        _cleanup(proc, token)


def test_stalled_output_blocks_neither_control_nor_signals_and_counts_dropped_lines(tmp_path):
    write_app(tmp_path, "flood: yes\nidle: sleep 1000\n")
    token = "stall-" + tmp_path.name
    read_fd, write_fd = os.pipe()
    proc = _start(tmp_path, token, write_fd)
    os.close(write_fd)
    try:
        wait_until(lambda: (tmp_path / ".procrun" / "control.sock").exists(), timeout=10)
        # nobody reads: the pipe and procrun's buffer fill; after 1 s without progress the
        # output counts as stalled and lines are dropped. The session answers throughout.
        stalled_from = time.monotonic()
        while time.monotonic() - stalled_from < 3:
            assert '"flood.1"' in ctl(tmp_path, "ps", "--json").stdout
        proc.send_signal(signal.SIGINT)
        notices, tail = [], b""
        with os.fdopen(read_fd, "rb") as out:
            deadline = time.monotonic() + 20
            while chunk := out.read(1 << 20):
                notices += re.findall(rb"procrun: [\d,]+ lines not shown: the output did not read them\n",
                                      tail[-200:] + chunk)
                tail = chunk
                assert time.monotonic() < deadline
        proc.wait(timeout=20)
        assert proc.returncode == 130
        assert marked(token) == []
        assert notices
    finally:
        _cleanup(proc, token)


def test_closed_stdout_is_refused_before_anything_starts(tmp_path):
    write_app(tmp_path, "web: sleep 7783\n")
    token = "closed-" + tmp_path.name
    proc = subprocess.run([sys.executable, "-m", "procrun", "start"], cwd=tmp_path, env=_env(token),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2 or proc.returncode == 1
    assert "standard output is closed" in proc.stderr.decode()
    assert marked(token) == []


def test_a_stopped_session_gets_one_line_and_late_requests_are_dropped(procrun, tmp_path):
    write_app(tmp_path, "web: sleep 7784\n")
    run = procrun("start")
    run.wait_for(r"web\.1 started")
    wait_until(lambda: (tmp_path / ".procrun" / "control.sock").exists())
    run.signal(signal.SIGSTOP)
    try:
        env = dict(os.environ, PROCRUN_CLIENT_TIMEOUT="0.5")
        for args in (["ps"], ["scale", "web=3"]):
            result = subprocess.run([sys.executable, "-m", "procrun", *args], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=20)
            assert result.returncode == 1, result
            assert result.stderr == f"procrun: the session does not answer (pid {run.proc.pid}, stopped?)\n"
    finally:
        run.signal(signal.SIGCONT)
    run.wait_for(r"system +\| ignored scale web=3: the client gave up")
    assert '"web.2"' not in ctl(tmp_path, "ps", "--json").stdout
