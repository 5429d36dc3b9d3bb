"""Run a real procrun session in a subprocess and watch its output with deadlines."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

TOKEN_VAR = "PROCRUN_TEST_TOKEN"


def marked(token: str) -> list[int]:
    """Live processes whose environment carries this test's token."""
    needle = f"\0{TOKEN_VAR}={token}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in b"\0" + f.read():
                    with open(f"/proc/{entry}/stat", "rb") as s:
                        if s.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                            found.append(int(entry))
        except OSError:
            continue
    return found


def ctl(root, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a procrun client command (ps, scale, chaos...) against the session in ``root``."""
    result = subprocess.run([sys.executable, "-m", "procrun", *args, "-d", str(root)],
                            capture_output=True, text=True, timeout=30)
    if check:
        assert result.returncode == 0, result
    return result


def free_base() -> int:
    """A base port whose first ports per type (base + 100 * type + instance) are free now.

    The OS hands out odd ports to bind(0) and even ones to connect(), so base + 1 is in the
    range outgoing connections use; one of those in TIME_WAIT (after earlier tests' requests)
    refuses a server's bind. So each candidate's ports are tried, without SO_REUSEADDR."""
    import socket

    def bindable(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    for _ in range(100):  # one the OS just gave out, low enough to leave room above it
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port <= 60000 and all(bindable(port + 100 * t + i) for t in range(3) for i in range(4)):
            return port
    raise AssertionError("no base port with free ports above it")


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def write_app(root: Path, procfile: str, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Procfile").write_text(procfile)
    for name, text in files.items():
        (root / name.replace("__", ".")).write_text(text)
    return root


class Run:
    """A procrun process in its own session; output lines collected by a thread."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 preexec=None, python: list[str] | None = None) -> None:
        self.token = uuid.uuid4().hex
        self.cwd = cwd
        full_env = dict(os.environ, **(env or {}))
        full_env[TOKEN_VAR] = self.token
        full_env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [*(python or [sys.executable]), "-m", "procrun", *args], cwd=cwd, env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=preexec)
        self.lines: list[bytes] = []
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = b""
        self._errors: list[bytes] = []  # stderr, drained as it comes (a full pipe would stall procrun)
        self._error_reader = threading.Thread(target=lambda: self._errors.extend(self.proc.stderr), daemon=True)
        self._error_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def _drain(self, block_for: float) -> bool:
        try:
            item = self._queue.get(timeout=block_for)
        except queue.Empty:
            return True
        if item is None:
            self._queue.put(None)
            return False
        self.lines.append(item)
        return True

    def text(self) -> str:
        return b"".join(self.lines).decode("utf-8", "replace")

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Wait for a line matching the regex; fail at the deadline or at EOF."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for line in self.lines[checked:]:
                match = regex.search(line.decode("utf-8", "replace"))
                if match:
                    return match
            checked = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{self.text()}")
            if not self._drain(min(left, 0.5)) and checked == len(self.lines):
                raise AssertionError(f"output ended without {pattern!r}:\n{self.text()}")

    def wait_count(self, pattern: str, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` lines match the regex."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            while self._drain(0) and not self._queue.empty():
                pass
            found = sum(1 for line in self.lines if regex.search(line.decode("utf-8", "replace")))
            if found >= count:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{found} of {count} lines matching {pattern!r} within {timeout}s:\n{self.text()}")
            if not self._drain(min(left, 0.2)) and self._queue.empty() and self.proc.poll() is not None:
                raise AssertionError(f"output ended with {found} of {count} lines matching {pattern!r}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        while self._drain(0):
            pass
        self._error_reader.join(timeout=timeout)
        self.stderr = b"".join(self._errors)
        return code

    def cleanup(self) -> None:
        """Kill whatever is left: procrun's group and every process with our token."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        deadline = time.monotonic() + 5  # procrun's guardian ends its processes and removes its files
        while marked(self.token) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in marked(self.token):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        self._reader.join(timeout=5)
