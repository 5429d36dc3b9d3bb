"""The CLI side: send one request to the session of an app root, read one reply."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from procrun import statedir
from procrun.control.protocol import MAX_LINE, decode_reply, encode
from procrun.errors import SessionError


class Connection:
    def __init__(self, root: str, timeout: float = 10.0) -> None:
        path = os.path.join(statedir.locate(root), statedir.SOCKET)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            self.sock.close()
            raise SessionError(f"no procrun session is running in {root}; start one with 'procrun start'") from None
        self._buffer = b""

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
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


def request(root: str, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    conn = Connection(root, timeout)
    try:
        return conn.request(message)
    finally:
        conn.close()
