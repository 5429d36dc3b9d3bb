"""The router's listening socket, accepted one by one: over the connection cap a client
gets its 503 at once, so a crowd of connections never takes the descriptors the
processes and the control socket need; when every refusal slot is busy, or out of
descriptors, accepting pauses briefly and the backlog waits: no client is closed unanswered."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.router.proxy import Client, Refusal

if TYPE_CHECKING:
    from procrun.router.service import Router



class Listener:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.sock: socket.socket | None = None
        self._resume_accepting: asyncio.TimerHandle | None = None
        self._listen()

    def _listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.router.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.router.host, self.router.port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        self.router.loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        """Accept one by one: over the cap a client gets its 503 and is closed at once, so
        a crowd of connections never takes the descriptors the processes and the control
        socket need; out of descriptors, accepting pauses briefly and the backlog waits."""
        router = self.router
        for _ in range(32):
            over = router.connections >= router.client_cap()
            if over and router.refusing >= router.refusal_cap():
                self._pause(0.02)  # every refusal slot busy: the backlog waits (never closed unanswered)
                return
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause(0.05)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # asyncio skips sockets of proto 0
            if over:
                protocol: Callable[[], asyncio.Protocol] = lambda: Refusal(self.router)  # noqa: E731
            else:
                protocol = lambda: Client(self.router)  # noqa: E731
            self.router.connections += 1
            task = self.router.loop.create_task(self.router.loop.connect_accepted_socket(protocol, conn))
            self.router.tasks.add(task)
            task.add_done_callback(self.router.tasks.discard)

    def _pause(self, seconds: float) -> None:
        self.router.loop.remove_reader(self.sock.fileno())
        self._resume_accepting = self.router.loop.call_later(seconds, self._listen_again)

    def _listen_again(self) -> None:
        self._resume_accepting = None
        if self.sock is not None:
            self.router.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        if self.sock is not None:
            self.router.loop.remove_reader(self.sock.fileno())
            if self._resume_accepting is not None:
                self._resume_accepting.cancel()
            self.sock.close()
            self.sock = None
