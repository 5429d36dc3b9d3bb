"""``procrun attach NAME``: this terminal to an instance's pseudo-terminal, until Ctrl-]."""

from __future__ import annotations

import os
import select
import sys

from procrun.control.client import Connection, Refused

DETACH = b"\x1d"  # Ctrl-], as telnet and docker attach


def run(root: str, name: str) -> int:
    conn = Connection(root)
    try:
        message: dict[str, object] = {"cmd": "attach", "targets": [name]}
        if os.isatty(0):
            size = os.get_terminal_size(0)
            if size.lines and size.columns:  # 0x0: the terminal does not know (script -c, CI ptys)
                message["size"] = [size.lines, size.columns]
        reply = conn.request(message)
        if not reply.get("ok"):
            raise Refused(str(reply.get("error", "the session refused to attach")))
        print(f"procrun: attached to {name} (pid {reply['pid']}); detach with Ctrl-]", file=sys.stderr)
        with _raw(0):
            why = _pump(conn, conn.stream())
    finally:
        conn.close()
    print(f"\r\nprocrun: {why}", file=sys.stderr)
    return 0


def _pump(conn: Connection, leftover: bytes) -> str:
    """Keystrokes to the session, the instance's output here, until Ctrl-] or an end."""
    if leftover:
        os.write(1, leftover)
    sock = conn.sock
    while True:
        ready, _, _ = select.select([0, sock], [], [])
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                return "the session closed the connection (it ended, or the instance is gone)"
            os.write(1, data)
        if 0 in ready:
            data = os.read(0, 4096)
            if not data or DETACH in data:
                before = data.split(DETACH, 1)[0]
                if before:
                    sock.sendall(before)
                return "detached; the instance goes on"
            sock.sendall(data)


class _raw:
    """The terminal in raw mode while attached (keys go through as typed: Ctrl-C to the instance)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.saved = fd, None

    def __enter__(self) -> None:
        if os.isatty(self.fd):
            import termios
            import tty

            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)  # not the default TCSAFLUSH: it drops keys typed already

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
