"""procrun attach: a debugger in a tty type, driven through a real pseudo-terminal."""

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

from tests.integration.helpers import ctl, write_app

PY = sys.executable
CONSOLE = """import pdb, sys
print("isatty", sys.stdin.isatty(), sys.stdout.isatty(), flush=True)
pdb.set_trace()
print("after")
"""


class Terminal:
    """A command on its own pseudo-terminal, as a user's shell would run it."""

    def __init__(self, args, cwd, size=(33, 101)):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))  # the user's terminal size
        self.proc = subprocess.Popen(args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.seen = b""

    def read_until(self, needle: bytes, timeout=10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not seen within {timeout}s: {self.seen!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # the command exited and closed its side
                    assert needle in self.seen, self.seen
        return self.seen

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def test_attach_to_a_debugger_type_and_detach(procrun, tmp_path):
    write_app(tmp_path, f"console: {PY} console.py\nplain: sleep 100\n", console__py=CONSOLE,
              procrun__yaml="types:\n  console: {tty: true}\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"console\.1 +\| isatty True True$")  # its own terminal, line by line in the stream
    run.wait_for(r"console\.1 +\| > .*console\.py\(4\)<module>\(\)$")  # pdb's prompt line follows (no newline)
    pid = {p["name"]: p["pid"] for p in json.loads(ctl(tmp_path, "ps", "--json").stdout)}["console.1"]
    term = Terminal([PY, "-m", "procrun", "attach", "console.1", "-d", str(tmp_path)], tmp_path)
    try:
        term.read_until(b"detach with Ctrl-]")
        term.type(b"p 6 * 7\n")
        term.read_until(b"42")
        term.type(b"p __import__('os').get_terminal_size()\n")
        term.read_until(b"os.terminal_size(columns=101, lines=33)")  # the attaching terminal's size
        spared = ctl(tmp_path, "chaos", "now", "console.1", check=False)  # chaos spares an attached instance
        assert spared.returncode != 0 and "not running and eligible" in spared.stderr
        term.type(b"\x1d")  # Ctrl-]
        term.read_until(b"detached")
        assert term.proc.wait(timeout=10) == 0
    finally:
        term.close()
    run.wait_for(r"console\.1 +\| 42$")  # what it answered reached the main stream too
    after = {p["name"]: (p["pid"], p["state"]) for p in json.loads(ctl(tmp_path, "ps", "--json").stdout)}
    assert after["console.1"] == (pid, "running")  # the instance goes on
    refused = ctl(tmp_path, "attach", "plain.1", check=False)
    assert refused.returncode == 2 and "plain.1 has no terminal to attach to" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    ctl(tmp_path, "quit")
    run.wait()


def test_attach_from_a_terminal_that_does_not_know_its_size(procrun, tmp_path):
    """Regression (#27): a 0x0 terminal (script -q -c, many CI ptys) was refused: "size must be
    [rows, columns], each from 1 to 10000". It attaches; the instance keeps its own size."""
    write_app(tmp_path, f"console: {PY} console.py\n", console__py=CONSOLE,
              procrun__yaml="types:\n  console: {tty: true}\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"console\.1 +\| > .*console\.py\(4\)<module>\(\)$")
    term = Terminal([PY, "-m", "procrun", "attach", "console.1", "-d", str(tmp_path)], tmp_path, size=(0, 0))
    try:
        term.read_until(b"detach with Ctrl-]")
        term.type(b"p 6 * 7\n")
        term.read_until(b"42")
        term.type(b"\x1d")
        term.read_until(b"detached")
        assert term.proc.wait(timeout=10) == 0
    finally:
        term.close()
    from procrun.control.protocol import parse_request

    assert parse_request(b'{"cmd": "attach", "targets": ["console.1"], "size": [0, 0]}\n').size is None


def test_an_attached_client_that_stops_reading_does_not_grow_procrun(procrun, tmp_path):
    """Regression (#27): a client that stopped reading grew procrun from 21 MB to 457 MB in 20 s
    (the tap wrote without a bound). Its output is dropped past 1 MiB, and said when it reads."""
    import socket

    write_app(tmp_path, "chatty: yes 'a chatty line of output to fill the terminal'\n",
              procrun__yaml="types:\n  chatty: {tty: true}\n")
    run = procrun("start", "--no-color", "-q", "chatty")
    wait = time.monotonic() + 10
    while not (tmp_path / ".procrun" / "control.sock").exists():
        assert time.monotonic() < wait
        time.sleep(0.05)
    time.sleep(0.5)

    def rss():
        with open(f"/proc/{run.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    client = socket.socket(socket.AF_UNIX)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(str(tmp_path / ".procrun" / "control.sock"))
    try:
        client.sendall(b'{"cmd": "attach", "targets": ["chatty.1"]}\n')
        assert b'"ok":true' in client.recv(200)
        before = rss()
        time.sleep(8)  # the client reads nothing; yes writes as fast as it can
        grown = rss() - before
        client.settimeout(5)
        seen = b""
        while b"bytes not shown here" not in seen:  # reading again: told what it missed
            seen = seen[-200:] + client.recv(65536)
    finally:
        client.close()
    assert grown < 30_000, f"procrun grew {grown} KiB while the client did not read"


def test_liveness_spares_an_instance_with_a_client_attached(procrun, tmp_path):
    """#28: a debugger at a breakpoint is not dead: health is not judged while a client is attached."""
    flag = tmp_path / "healthy"
    flag.touch()
    write_app(tmp_path, f"console: {PY} console.py\n", console__py=CONSOLE,
              procrun__yaml=f"types:\n  console: {{tty: true, health: {{exec: 'test -e {flag}', interval: 0.2, "
                            "failures: 2}}\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"console\.1 +\| > .*console\.py\(4\)<module>\(\)$")
    term = Terminal([PY, "-m", "procrun", "attach", "console.1", "-d", str(tmp_path)], tmp_path)
    try:
        term.read_until(b"detach with Ctrl-]")
        flag.unlink()  # every try would fail from now on
        import pytest

        with pytest.raises(AssertionError, match="no line matching"):
            run.wait_for("unhealthy", timeout=2.0)
        term.type(b"\x1d")
        term.read_until(b"detached")
        assert term.proc.wait(timeout=10) == 0
    finally:
        term.close()
    run.wait_for(r"console\.1 is unhealthy: exec 'test -e .*' failed 2 times in a row \(last: exit code 1\)")
    ctl(tmp_path, "quit")
    run.wait()
