"""The CLI side: send one request to the session of an app root, read one reply."""

from __future__ import annotations

import os
import time

# The C module under socket.py: socket.py's enums and selectors would cost every client command
# ~5 ms of a ~50 ms start-up, and a client needs one AF_UNIX stream with a timeout, nothing more.
import _socket as socket
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    from typing import Any

from procrun import statedir
from procrun.control.protocol import MAX_LINE, decode_reply, encode
from procrun.errors import ProcrunError, SessionError


class Refused(ProcrunError):
    """The session refused the request (unknown name, bad count...): bad input."""


def default_timeout() -> float:
    """How long a client waits for the session: 10 s, or $PROCRUN_CLIENT_TIMEOUT."""
    try:
        value = float(os.environ.get("PROCRUN_CLIENT_TIMEOUT", "10"))
    except ValueError:
        return 10.0
    return value if 0 < value < 86400 else 10.0


class Connection:
    def __init__(self, root: str, timeout: float | None = None) -> None:
        timeout = default_timeout() if timeout is None else timeout
        self.directory = statedir.locate(root)
        self.timeout = timeout
        self.sock = self._connect(os.path.join(self.directory, statedir.SOCKET), root, timeout)
        self._buffer = b""

    def _connect(self, path: str, root: str, timeout: float) -> socket.socket:
        """A session holding its lock without a socket is starting (its processes come first)
        or ending: wait for the socket while it holds the lock, up to the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() >= deadline or statedir.holder(self.directory) is None:
                    raise SessionError(f"no procrun session is running in {root}; start one with 'procrun start'") from None
            except socket.timeout:
                sock.close()
                raise SessionError(f"the session does not answer ({self._holder()}, stopped?)") from None
            time.sleep(0.01)

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request with our deadline; the session drops it if it comes too late."""
        deadline = time.time() + self.timeout
        try:
            return self._exchange({**message, "deadline": deadline})
        except socket.timeout:
            raise SessionError(f"the session does not answer ({self._holder()}, stopped?)") from None

    def stream(self) -> bytes:
        """After an ok reply to a streaming request: the socket blocks from now on; returns the
        stream's bytes already read past the reply."""
        self.sock.settimeout(None)
        leftover, self._buffer = self._buffer, b""
        return leftover

    def _holder(self) -> str:
        record = statedir.holder(self.directory)
        return f"pid {record['pid']}" if record and "pid" in record else "pid unknown"

    def _exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        self.sock.sendall(encode(message))
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SessionError("the session closed the connection without replying")
            self._buffer += chunk
            if len(self._buffer) > 64 * MAX_LINE:
                raise SessionError("reply too large")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return decode_reply(line)

    def wait_closed(self, timeout: float) -> bool:
        """True once the session closed our connection (it has ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(4096):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def request(root: str, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    conn = Connection(root, timeout)
    try:
        return conn.request(message)
    finally:
        conn.close()
