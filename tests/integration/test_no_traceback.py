"""Every verb, odd inputs and broken outputs: one clear line at most, never a traceback,
a prompt exit, and nothing left running."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import TOKEN_VAR, marked, wait_until, write_app

PY = sys.executable
PROCFILE = "web: sleep 7790\nworker: sleep 7791\n"

CLIENT_VERBS = [["ps"], ["ps", "--json"], ["scale"], ["scale", "worker=1"], ["restart", "worker"],
                ["chaos", "status"], ["report"], ["report", "--json"], ["check"], ["run", "echo", "hi"],
                ["export", "compose", "out"], ["--help"], ["--version"], ["stop", "worker"], ["quit"]]

ODD = [["scale", "web=-1"], ["scale", "web="], ["scale", "=3"], ["scale", "web=99999999999999999999"],
       ["scale", "nope=1"], ["scale", "web=1", "web=x"], ["restart", "nope"], ["restart", ""], ["stop", ""],
       ["stop", "web.99"], ["chaos", "now", "nope"], ["chaos", "now", "--action", "explode"], ["chaos", "maybe"],
       ["chaos", "now", "web.1", "--action", "kill"], ["report", "--html"], ["export", "nope", "out"],
       ["export", "compose", "/proc/nope/out"], ["export", "kubernetes", "out"], ["run"], ["run", ""],
       ["run", "--", "no-such-command-xyz"], ["check", "-e", "/dev/null"], ["check", "-p", ""], ["check", "-c", ",,,"],
       ["check", "-c", "all=-1"], ["check", "-f", "/dev/null"], ["check", "-f", "/"], ["check", "-d", "/dev/null"],
       ["start", "-d", "/dev/null"], ["start", "nope"], ["start", "-t", "-1"], ["start", "--chaos-actions", "x"],
       ["start", "--chaos-types", "nope"], ["start", "--watch", "nope"], ["ps", "-d", "/nonexistent"],
       ["export", "compose"], ["logs"], [], ["--bogus"], ["start", "-p", "0"], ["start", "-c", "web=1001"]]


def _run(root, args, stdout=subprocess.PIPE, preexec=None, token="t"):
    env = dict(os.environ, **{TOKEN_VAR: token}, PROCRUN_CLIENT_TIMEOUT="5")
    return subprocess.run([PY, "-m", "procrun", *args], cwd=root, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=20, preexec_fn=preexec)


def _assert_clean(result, args):
    err = result.stderr.decode(errors="replace")
    assert "Traceback" not in err and "internal error" not in err, (args, err)
    assert err.count("\n") <= 1 or args[:1] in (["--help"], []), (args, err)


@pytest.fixture
def live(procrun, tmp_path):
    write_app(tmp_path, PROCFILE)
    run = procrun("start", "--restart", "always", "-t", "0.5")
    run.wait_for(r"worker\.1 started")
    wait_until(lambda: (tmp_path / ".procrun" / "control.sock").exists())
    return run, tmp_path


def test_odd_inputs_without_a_session(tmp_path):
    write_app(tmp_path, PROCFILE)
    for args in ODD:
        _assert_clean(_run(tmp_path, args), args)
    assert marked("t") == []


def test_odd_inputs_against_a_live_session(live):
    run, root = live
    for args in ODD:
        _assert_clean(_run(root, args), args)
    assert run.proc.poll() is None
    assert "Traceback" not in run.text()


class BadStdout:
    """A closed, a full or a broken stdout for a child, with its own cleanup."""

    def __init__(self, kind):
        self.kind, self.preexec, self._fd = kind, None, None
        if kind == "closed":
            self.stdout, self.preexec = subprocess.DEVNULL, lambda: os.close(1)
        elif kind == "full":
            self.stdout = self._fd = os.open("/dev/full", os.O_WRONLY)
        else:
            r, self._fd = os.pipe()
            os.close(r)
            self.stdout = self._fd

    def close(self):
        if self._fd is not None:
            os.close(self._fd)


KINDS = ("closed", "full", "broken")


def test_every_client_verb_with_a_bad_stdout_exits_promptly(live):
    run, root = live
    for kind in KINDS:
        bad = BadStdout(kind)
        try:
            for args in CLIENT_VERBS[:-1]:
                _assert_clean(_run(root, args, stdout=bad.stdout, preexec=bad.preexec), [kind, *args])
        finally:
            bad.close()
    bad = BadStdout("full")
    try:
        _assert_clean(_run(root, ["quit"], stdout=bad.stdout), ["quit"])
    finally:
        bad.close()
    assert run.wait(timeout=10) == 0
    assert marked(run.token) == []


@pytest.mark.parametrize("kind", KINDS)
def test_start_with_a_bad_stdout_stops_and_leaves_nothing(tmp_path, kind):
    write_app(tmp_path, PROCFILE)
    token = f"start-{kind}-{tmp_path.name}"
    bad = BadStdout(kind)
    try:
        result = _run(tmp_path, ["start", "-t", "0.5"], stdout=bad.stdout, preexec=bad.preexec, token=token)
    finally:
        bad.close()
        for pid in marked(token):
            os.kill(pid, signal.SIGKILL)
    _assert_clean(result, ["start", kind])
    assert result.returncode == {"closed": 1, "full": 1, "broken": 141}[kind]
    assert marked(token) == []


@pytest.mark.parametrize("mode", ["control", "tcp-router"])
def test_a_session_ending_with_clients_connected_says_no_traceback(procrun, tmp_path, mode):
    """Regression (#27): a control client still connected (procrun top, an idle socket) or a TCP
    router connection open when the session ended printed `Exception in callback
    StreamReaderProtocol... CancelledError` (asyncio reports a cancelled stream handler)."""
    import socket

    from tests.integration.helpers import ctl, free_base

    write_app(tmp_path, "web: exec " + PY + " -m http.server $PORT --bind 127.0.0.1\n")
    base = free_base()
    run = procrun("start", "--router", "--router-mode", "tcp", "-p", str(base), "--no-color")
    run.wait_for(r"web\.1 is ready on port")
    held = socket.socket(socket.AF_UNIX if mode == "control" else socket.AF_INET)
    held.connect(str(tmp_path / ".procrun" / "control.sock") if mode == "control" else ("127.0.0.1", base))
    try:
        ctl(tmp_path, "quit")
        run.wait()
    finally:
        held.close()
    text = run.text() + run.stderr.decode(errors="replace")
    assert "Traceback" not in text and "Exception in callback" not in text, text


def test_an_app_root_whose_name_is_not_utf8_works_like_any_other(procrun, tmp_path):
    """Regression (#27): in a folder named b"bad\\xff\\xfe" start, ps and quit failed with
    `internal error: UnicodeEncodeError`; then a file name that is not UTF-8 broke the journal, the
    report and the timeline page. honcho runs there; so does procrun, names shown as they are."""
    from tests.integration.helpers import ctl

    root = os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xff\xfe")
    os.mkdir(root)
    write_app(Path(root), "web: touch \"$(printf 'n\\377m')\"; echo hi; sleep 300\n")
    run = procrun("start", "--fresh", "--chaos", "--chaos-interval", "600", "--no-color", cwd=Path(root))
    run.wait_for(r"web\.1 +\| hi")
    for verb in (["ps"], ["ps", "--json"], ["logs"], ["chaos", "now", "web.1", "--action", "restart"]):
        result = ctl(Path(root), *verb)
        assert "internal error" not in result.stderr, (verb, result.stderr)
    run.wait_for(r"web\.1 wrote n\S+m during")
    ctl(Path(root), "quit")
    assert run.wait() == 0
    out = subprocess.run([PY, "-m", "procrun", "report", "-d", root], capture_output=True, timeout=30)
    assert out.returncode == 0 and b"created n\xffm" in out.stdout, out
    page = subprocess.run([PY, "-m", "procrun", "report", "--html", "-d", root], capture_output=True, timeout=30)
    assert page.returncode == 0 and b"file://" in page.stdout and b"bad%FF%FE" in page.stdout, page
    assert "internal error" not in run.text() and "Traceback" not in run.text()
