"""Runtime control of a live session over its Unix socket."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest

from procrun.statedir import fallback
from tests.integration.helpers import ctl, free_base, marked, wait_until, write_app
from tests.integration.test_fresh import unprivileged  # noqa: F401  (a fixture: procrun as nobody)

WEB = f"{sys.executable} -m http.server --bind 127.0.0.1 $PORT"


def ps(root):
    return {p["name"]: p for p in json.loads(ctl(root, "ps", "--json").stdout)}


def running(root, names):
    rows = ps(root)
    return set(rows) == set(names) and all(rows[n]["state"] == "running" for n in names) and rows


@pytest.fixture
def session(procrun, tmp_path):
    write_app(tmp_path, f"web: {WEB}\nworker: sleep 600\n")
    run = procrun("start", "-t", "1", "-p", str(free_base()))
    run.wait_for(r"web\.1 is ready on port")
    return run, tmp_path


def test_scale_up_and_down_restart_stop_quit(session):
    run, root = session
    base = ps(root)["web.1"]["port"]
    assert ctl(root, "scale", "web=3", "worker=0").stdout.strip() == "web=3 worker=0"
    rows = wait_until(lambda: running(root, ["web.1", "web.2", "web.3"]))
    assert [rows[f"web.{i}"]["port"] for i in (1, 2, 3)] == [base, base + 1, base + 2]
    assert ctl(root, "scale").stdout.strip() == "web=3 worker=0"
    run.wait_for(r"scale web=3 worker=0 requested")

    old = rows["web.2"]["pid"]
    assert ctl(root, "restart", "web.2").stdout.strip() == "restarting web.2"
    rows = wait_until(lambda: (r := running(root, ["web.1", "web.2", "web.3"])) and r["web.2"]["pid"] != old and r)
    assert rows["web.2"]["restarts"] == 1 and rows["web.2"]["port"] == base + 1

    ctl(root, "scale", "web=1", "worker=2")
    wait_until(lambda: running(root, ["web.1", "worker.1", "worker.2"]))
    ctl(root, "stop", "worker")
    wait_until(lambda: {n: r["state"] for n, r in ps(root).items()}
               == {"web.1": "running", "worker.1": "stopped", "worker.2": "stopped"})
    assert ctl(root, "scale").stdout.strip() == "web=1 worker=0"  # the formation that runs
    assert run.proc.poll() is None  # processes procrun stopped never end the session

    assert ctl(root, "quit").returncode == 0
    assert run.wait() == 0
    assert marked(run.token) == []
    assert not os.path.exists(root / ".procrun" / "control.sock")


def test_ps_table_columns(session):
    run, root = session
    lines = ctl(root, "ps").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PID", "STATE", "UPTIME", "RESTARTS", "PORT", "READY", "CPU", "RSS", "DIR"]
    assert lines[1].split()[0] == "web.1" and lines[1].split()[2] == "running"
    assert lines[1].split()[-1] == str(root)


def test_bad_control_input(session):
    run, root = session
    for args, words in [(["scale", "web=-1"], "negative"), (["scale", "web=x"], "not TYPE=COUNT"),
                        (["scale", "api=2"], "no process type 'api'"), (["stop", "nope"], "no process or type named 'nope'"),
                        (["restart", "web.9"], "web.9")]:
        result = ctl(root, *args, check=False)
        assert result.returncode == 2 and words in result.stderr and len(result.stderr.splitlines()) == 1
    assert running(root, ["web.1", "worker.1"])


def raw(root, payload: bytes, shut=True) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(root / ".procrun" / "control.sock"))
        s.sendall(payload)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_line(s)


def read_line(sock: socket.socket) -> bytes:
    """One reply: bytes up to a newline, or all there is before the session hangs up."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_socket_is_private_and_survives_garbage(session):
    run, root = session
    assert stat.S_IMODE(os.stat(root / ".procrun").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root / ".procrun" / "control.sock").st_mode) == 0o600
    cases = {
        b"not json\n": "not JSON",
        b"[1,2]\n": "must be a JSON object",
        b'{"cmd": "format-disk"}\n': "unknown command",
        b'{"cmd": "scale", "formation": {"web": "many"}}\n': "formation must map",
        b'{"cmd": "ps"': "truncated request",
        b"\xff\xfe\n": "not JSON",
        b"x" * (70 * 1024) + b"\n": "larger than",
    }
    for payload, words in cases.items():
        reply = json.loads(raw(root, payload))
        assert reply["ok"] is False and words in reply["error"], (payload[:30], reply)
    assert json.loads(raw(root, b'{"cmd": "ping"}\n'))["ok"] is True
    assert running(root, ["web.1", "worker.1"])


def test_other_users_are_refused(session):
    run, root = session
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another user")
    # Open the way for "nobody" (mode bits and directories) so only the uid check is left:
    # a hard link to the socket in a world-traversable directory, socket mode 0666.
    import tempfile
    open_dir = tempfile.mkdtemp(prefix="pr-", dir="/tmp")
    os.chmod(open_dir, 0o755)
    link = os.path.join(open_dir, "s")
    os.link(root / ".procrun" / "control.sock", link)
    os.chmod(link, 0o666)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, ask the session to quit, report the reply (or the error)
        try:
            os.close(read_fd)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(20)
                s.connect(link)
                try:
                    s.sendall(b'{"cmd":"quit"}\n')
                except BrokenPipeError:
                    pass  # the session may refuse and hang up before reading anything
                os.write(write_fd, read_line(s))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            os.write(write_fd, f"child error: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        reply = f.read()
    os.waitpid(pid, 0)
    os.unlink(link)
    os.rmdir(open_dir)
    assert b"refused" in reply, reply
    assert running(root, ["web.1", "worker.1"])


def test_second_start_refused_and_stale_socket_replaced(session, procrun):
    run, root = session
    second = subprocess.run([sys.executable, "-m", "procrun", "start"], cwd=root, capture_output=True,
                            text=True, timeout=30)
    assert second.returncode == 1
    assert f"already running in {root} (pid {run.proc.pid}" in second.stderr
    run.signal(signal.SIGKILL)
    run.wait()
    wait_until(lambda: marked(run.token) == [])
    assert os.path.exists(root / ".procrun" / "control.sock")  # left behind by the killed session
    again = procrun("start", "-t", "1", "-p", str(free_base()))
    again.wait_for(r"replaced a stale control socket")
    again.wait_for(r"web\.1 is ready")
    assert running(root, ["web.1", "worker.1"])
    ctl(root, "quit")
    assert again.wait() == 0


def test_long_app_root_uses_runtime_dir(procrun, tmp_path):
    root = tmp_path / ("d" * 60) / ("e" * 40)
    write_app(root, "worker: sleep 600\n")
    run = procrun("start", cwd=root)
    run.wait_for(r"worker\.1 started")
    wait_until(lambda: os.path.exists(os.path.join(fallback(str(root)), "control.sock")))
    assert list(ps(root)) == ["worker.1"]
    assert not (root / ".procrun").exists()
    ctl(root, "quit")
    assert run.wait() == 0


def test_no_session(tmp_path):
    result = ctl(tmp_path, "ps", check=False)
    assert result.returncode == 1 and "no procrun session is running" in result.stderr


def test_scale_after_stop_runs_what_it_prints(session):
    """Regression: `stop web; scale web=1` printed web=1 and started nothing."""
    run, root = session
    ctl(root, "stop", "worker")
    wait_until(lambda: ps(root)["worker.1"]["state"] == "stopped")
    assert ctl(root, "scale", "worker=1").stdout.strip() == "web=1 worker=1"
    wait_until(lambda: running(root, ["web.1", "worker.1"]))
    ctl(root, "scale", "worker=3")
    wait_until(lambda: running(root, ["web.1", "worker.1", "worker.2", "worker.3"]))


def test_refused_scale_is_a_clean_error_and_changes_nothing(procrun, tmp_path):
    """Regression: scale worker=50 at -p 65500 crashed the request and left phantom instances."""
    write_app(tmp_path, "web: sleep 600\nworker: sleep 600\n")
    run = procrun("start", "-p", "65400")
    run.wait_for(r"worker\.1 started")
    before = ps(tmp_path)
    for counts, words in ((["worker=50"], "above 65535"), (["worker=5000"], "more than 1000 instances"),
                          (["web=101"], "worker.1 and web.101 would both get port 65500")):
        result = ctl(tmp_path, "scale", *counts, check=False)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and words in result.stderr, result
        assert "Traceback" not in run.text()
    assert ps(tmp_path).keys() == before.keys()
    assert ctl(tmp_path, "scale").stdout.strip() == "web=1 worker=1"


def test_a_client_waits_for_a_session_that_holds_its_lock_but_has_no_socket_yet(tmp_path):
    """A session starts its processes before its control socket: `procrun ps` then waits for the
    socket while the session holds its lock, and says "no session" at once when nobody does."""
    import fcntl
    import threading

    from procrun import statedir
    from procrun.control.client import request
    from procrun.errors import SessionError

    directory = statedir.create(str(tmp_path))
    lock = os.open(os.path.join(directory, statedir.LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # this test is the session: starting, no socket yet
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def serve_later():
        import time
        time.sleep(0.3)
        server.bind(os.path.join(directory, statedir.SOCKET))
        server.listen(1)
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b'{"ok": true, "answered": "late"}\n')
        conn.close()

    thread = threading.Thread(target=serve_later)
    thread.start()
    try:
        assert request(str(tmp_path), {"cmd": "ping"}, timeout=5)["answered"] == "late"
    finally:
        thread.join(5)
        server.close()
        os.unlink(os.path.join(directory, statedir.SOCKET))
    os.close(lock)  # the session is gone: the next client is told at once
    with pytest.raises(SessionError, match="no procrun session is running"):
        request(str(tmp_path), {"cmd": "ping"}, timeout=5)


def test_clients_find_a_session_running_from_the_fallback_beside_a_stale_procrun_folder(procrun, unprivileged):
    """Regression (#27): in an app root the user cannot write, holding a .procrun an earlier
    session left, the session ran from the per-user fallback but clients read the stale lock
    (ps, quit: "no procrun session is running"; logs showed the old session)."""
    from pathlib import Path

    base, uid, python, env = unprivileged
    root = Path(base) / "readonly-app"
    write_app(root, "web: echo new session; sleep 300\n")
    stale = root / ".procrun"
    (stale / "sessions" / "20200101-000000-1").mkdir(parents=True)
    (stale / "session.lock").write_text('{"pid": 1}')
    for path in (root, stale, stale / "sessions", stale / "sessions" / "20200101-000000-1"):
        os.chmod(path, 0o755)  # readable by the user, writable by root only
    run = procrun("start", "--no-color", cwd=root, python=python, env={**env, "TMPDIR": base})

    def client(*args, tmpdir="/var/tmp"):  # another shell: another TMPDIR
        return subprocess.run([*python, "-m", "procrun", *args, "-d", str(root)], capture_output=True, text=True,
                              env={**os.environ, **env, "TMPDIR": tmpdir}, timeout=30)

    run.wait_for(r"web\.1 +\| new session")
    ps = client("ps")
    assert ps.returncode == 0 and "web.1" in ps.stdout, ps
    assert "new session" in client("logs").stdout
    assert client("quit").returncode == 0
    assert run.wait() == 0
