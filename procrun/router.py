"""The non-sticky router: one listening port in front of every ready ``web.N``.

HTTP mode balances per request (round-robin over ready instances, retried on
another instance when one is gone before the request was sent); TCP mode
balances per connection. Instances join when their port accepts connections
and leave when they stop, are paused or die: the pool is read from the
Machine on every request.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING

from procrun import routing
from procrun.machine import State
from procrun.supervisor import Service

if TYPE_CHECKING:
    from procrun.supervisor import Session

CONNECT_TIMEOUT = 2.0
CHUNK = 64 * 1024
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Router(Service):
    def __init__(self, host: str, port: int, mode: str = "http", timeout: float = 30.0,
                 type_name: str = "web") -> None:
        self.host, self.port, self.mode, self.timeout = host, port, mode, timeout
        self.type_name = type_name
        self.balancer = routing.RoundRobin()
        self.session: Session | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, session: Session) -> None:
        self.session = session
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port,
                                                      limit=routing.MAX_HEAD, reuse_address=True)
        except OSError as exc:
            from procrun.errors import SessionError
            raise SessionError(f"router cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                               "pick another base port with -p") from None
        session.say(f"listening on {'http' if self.mode == 'http' else 'tcp'}://{self.host}:{self.port} for "
                    f"{self.type_name}.N ({'per request' if self.mode == 'http' else 'per connection'}, never sticky)",
                    "router")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def pool(self) -> list[tuple[str, int]]:
        """Ready instances: running (port accepted a connection), not paused."""
        assert self.session is not None
        return [(p.name, p.instance.port) for p in self.session.machine.procs.values()
                if p.instance.type == self.type_name and p.state is State.RUNNING and not p.paused
                and p.pid is not None and p.instance.port is not None]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.mode == "tcp":
                await self._tcp(reader, writer)
            else:
                peer = writer.get_extra_info("peername")
                client_ip = peer[0] if peer else "unknown"
                while await self._one_request(reader, writer, client_ip):
                    pass
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    async def _connect(self, pool: list[tuple[str, int]]):
        """Connect to the first instance of the rotated pool that answers."""
        for name, port in self.balancer.order(pool):
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, limit=routing.MAX_HEAD),
                                                        CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                continue
            return name, reader, writer
        return None

    def _unavailable(self) -> bytes:
        assert self.session is not None
        states = [f"{p.name} {('paused' if p.paused else p.state)}" for p in self.session.machine.procs.values()
                  if p.instance.type == self.type_name]
        why = ", ".join(states) if states else f"the formation has no {self.type_name} instances"
        return routing.error_response(503, "Service Unavailable",
                                      f"procrun router: no {self.type_name} instance is ready to take this request ({why}).")

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_ip: str) -> bool:
        """Serve one request; True to keep the client connection for another."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            writer.write(routing.error_response(431, "Request Header Fields Too Large", "request head too large"))
            return False
        try:
            head = routing.parse_request(raw.lstrip(b"\r\n")[:-4])
            body_kind, body_len = routing.framing(head, request=True)
        except routing.BadMessage as exc:
            writer.write(routing.error_response(400, "Bad Request", f"procrun router: {exc}"))
            await writer.drain()
            return False
        method, version = head.start[0], head.start[2]
        upgrade = routing.is_upgrade(head)
        keep = routing.keeps_alive(head, version) and not upgrade
        outgoing = routing.forward_request(head, client_ip, time.time(), upgrade)
        retry = body_kind == "none" and method in IDEMPOTENT
        for attempt in range(3):
            connected = await self._connect(self.pool())
            if connected is None:
                writer.write(self._unavailable())
                await writer.drain()
                return False
            name, b_reader, b_writer = connected
            try:
                b_writer.write(outgoing)
                upload = asyncio.ensure_future(self._copy_body(reader, b_writer, body_kind, body_len))
                try:
                    response = await self._read_response(b_reader, upload)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    upload.cancel()
                    if retry and attempt < 2:
                        continue  # the instance went away before answering; the request had no body
                    raise exc
                if response is None:
                    upload.cancel()
                    writer.write(routing.error_response(504, "Gateway Timeout",
                                                        f"procrun router: {name} did not start a response within {self.timeout:g}s"))
                    await writer.drain()
                    return False
                return await self._relay_response(response, name, method, keep, upgrade,
                                                  reader, writer, b_reader, b_writer, upload)
            except (ConnectionError, asyncio.IncompleteReadError, routing.BadMessage):
                writer.write(routing.error_response(502, "Bad Gateway", f"procrun router: {name} failed mid-request"))
                await writer.drain()
                return False
            finally:
                b_writer.close()
        return False

    async def _read_response(self, b_reader: asyncio.StreamReader, upload: asyncio.Future[None]) -> routing.Head | None:
        try:
            raw = await asyncio.wait_for(b_reader.readuntil(b"\r\n\r\n"), self.timeout)
        except asyncio.TimeoutError:
            return None
        return routing.parse_response(raw[:-4])

    async def _relay_response(self, response: routing.Head, name: str, method: str, keep: bool, upgrade: bool,
                              reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              b_reader: asyncio.StreamReader, b_writer: asyncio.StreamWriter,
                              upload: asyncio.Future[None]) -> bool:
        while response.start[1].startswith("1") and response.start[1] != "101":
            writer.write(routing.render(response.start, response.headers))  # 100 Continue and friends
            raw = await asyncio.wait_for(b_reader.readuntil(b"\r\n\r\n"), self.timeout)
            response = routing.parse_response(raw[:-4])
        if upgrade and response.start[1] == "101":
            writer.write(routing.forward_response(response, name, False, upgrade=True))
            await writer.drain()
            upload.cancel()
            await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer), return_exceptions=True)
            return False
        kind, length = routing.framing(response, request=False, method=method)
        keep = keep and kind != "eof"
        writer.write(routing.forward_response(response, name, keep))
        await self._copy_body(b_reader, writer, kind, length)
        await writer.drain()
        if not upload.done():
            upload.cancel()
            keep = False  # the client is still sending a body the instance did not wait for
        else:
            upload.result()
        return keep

    async def _copy_body(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, kind: str, length: int) -> None:
        if kind == "length":
            await _copy_exact(src, dst, length)
        elif kind == "chunked":
            while True:
                line = await src.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise routing.BadMessage("bad chunk size") from None
                dst.write(line)
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = await src.readuntil(b"\r\n")
                        dst.write(trailer)
                        if trailer == b"\r\n":
                            break
                    break
                await _copy_exact(src, dst, size + 2)
        elif kind == "eof":
            await _copy_to_eof(src, dst)
        await dst.drain()

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected = await self._connect(self.pool())
        if connected is None:
            return
        _, b_reader, b_writer = connected
        try:
            await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer), return_exceptions=True)
        finally:
            b_writer.close()


async def _copy_exact(src: asyncio.StreamReader, dst: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        chunk = await src.read(min(n, CHUNK))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", n)
        dst.write(chunk)
        n -= len(chunk)
        await dst.drain()


async def _copy_to_eof(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while chunk := await src.read(CHUNK):
        dst.write(chunk)
        await dst.drain()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """One direction of a tunnel: copy until EOF, then pass the EOF on."""
    try:
        await _copy_to_eof(src, dst)
    finally:
        if dst.can_write_eof() and not dst.is_closing():
            try:
                dst.write_eof()
            except OSError:
                pass
