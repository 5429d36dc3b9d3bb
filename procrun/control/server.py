"""The session side of the control socket: a Unix socket, same-uid peers only."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from procrun.control.protocol import MAX_LINE, STREAMS, ProtocolError, Request, encode, error, parse_request

Handler = Callable[[Request], dict[str, Any]]
Stream = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


class ControlServer:
    def __init__(self, path: str, handler: Handler, streams: dict[str, Stream] | None = None) -> None:
        self.path = path
        self.handler = handler
        self.streams = streams or {}  # attach, subscribe: the connection becomes a stream after "ok"
        self._server: asyncio.base_events.Server | None = None
        self._held: list[asyncio.StreamWriter] = []  # quit clients, told when the session is gone
        self._open: set[asyncio.StreamWriter] = set()  # every connection being served
        self.stale = False

    async def start(self) -> None:
        if os.path.lexists(self.path):  # we hold the session lock, so this is a dead session's
            os.unlink(self.path)
            self.stale = True
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_LINE + 1)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        for writer in (*self._held, *self._open):  # their handlers see the end and return
            writer.close()
        self._held.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            if _stranger(writer):
                return
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(encode(error(f"request larger than {MAX_LINE} bytes")))
                    return
                if not line:
                    return
                if not line.endswith(b"\n"):
                    writer.write(encode(error("truncated request: end it with a newline")))
                    return
                try:
                    request = parse_request(line)
                except ProtocolError as exc:
                    writer.write(encode(error(str(exc))))
                    continue
                reply = self.handler(request)
                writer.write(encode(reply))
                await writer.drain()
                if request.cmd in STREAMS:
                    if reply.get("ok") and request.cmd in self.streams:
                        await self.streams[request.cmd](request, reader, writer)
                    return
                if request.cmd == "quit":
                    self._held.append(writer)
                    return
        except (ConnectionError, OSError):
            return
        except asyncio.CancelledError:  # the session ends with a client connected (top, an idle socket):
            return  # asyncio's stream callback would print a traceback for a cancelled handler
        finally:
            self._open.discard(writer)
            if writer not in self._held:
                writer.close()


def _stranger(writer: asyncio.StreamWriter) -> bool:
    """A peer of another user is told so (the control socket serves its own user only)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and peer_uid(sock) == os.getuid():
        return False
    writer.write(encode(error("refused: the control socket only serves its own user")))
    return True
