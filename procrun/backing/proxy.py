"""A loopback TCP proxy in front of one backing service, with faults: latency, reset, outage,
blackhole. Event-driven (asyncio protocols, backpressure both ways); outside a fault it forwards
every byte unchanged, in order."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from procrun.backing.urls import Backing

HISTORY = 2000  # connections remembered for the verdicts


class Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, client: asyncio.Transport) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.opened = time.monotonic()
        self.closed: float | None = None
        self.peer_port = (client.get_extra_info("peername") or ("", 0))[1]
        self.owner: str | None = None  # the instance that opened it, once known
        self._delayed: tuple[deque[tuple[float, bytes]], ...] = (deque(), deque())  # per direction, in order
        self._early: list[bytes] = []  # client bytes that came before the upstream connection
        self._ended = [False, False]  # per direction: its sender half-closed (EOF passed on)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: Upstream(self), self.proxy.backing.host, self.proxy.backing.port)
        except OSError:
            reset(self.client)  # the service is down: the client sees its connection fail
            self.close()

    def up(self, transport: asyncio.Transport) -> None:
        self.upstream = transport
        for data in self._early:
            self.forward(0, data)
        self._early.clear()
        if not self.client.is_closing():
            self.client.resume_reading()

    def forward(self, direction: int, data: bytes) -> None:
        """direction 0: client to service, 1: service to client."""
        target = self.upstream if direction == 0 else self.client
        if target is None:
            self._early.append(data)
            return
        proxy = self.proxy
        if proxy.fault == "blackhole":
            return  # lost, as on a dropped network: the reply a client waits for never comes
        delay = proxy.delay() if proxy.fault == "latency" else 0.0
        queue = self._delayed[direction]
        if not delay and not queue:
            target.write(data)
            return
        # delayed bytes leave in the order they came, one timer per direction (timers due at the same
        # moment need not run in the order they were set)
        now = time.monotonic()
        queue.append((max(now + delay, queue[-1][0] if queue else 0.0), data))
        if len(queue) == 1:
            asyncio.get_running_loop().call_later(queue[0][0] - now, self._release, direction, target)

    def _release(self, direction: int, target: asyncio.Transport) -> None:
        queue, now = self._delayed[direction], time.monotonic()
        while queue and queue[0][0] <= now:
            data = queue.popleft()[1]
            if not target.is_closing():
                target.write(data)
        if queue:
            asyncio.get_running_loop().call_later(queue[0][0] - now, self._release, direction, target)
        else:
            self._close_when_done()  # the last delayed bytes may come after both directions ended

    def ended(self, direction: int) -> None:
        self._ended[direction] = True
        self._close_when_done()

    def _close_when_done(self) -> None:
        """Both directions ended and nothing delayed is left to send: the link is done."""
        if all(self._ended) and not any(self._delayed):
            self.close()

    def reset(self) -> None:
        for transport in (self.client, self.upstream):
            if transport is not None:
                reset(transport)
        self.close()

    def close(self) -> None:
        if self.closed is None:
            self.closed = time.monotonic()
            self.proxy.links.discard(self)
        for transport in (self.client, self.upstream):
            if transport is not None and not transport.is_closing():
                transport.close()


class Side(asyncio.Protocol):
    direction = 0

    def __init__(self, link: Link) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.link.forward(self.direction, data)

    def eof_received(self) -> bool:
        """A half-close, passed on: the other direction may still talk. Once both directions
        have ended, the link is done and both connections close (their descriptors with them)."""
        link = self.link
        other = link.upstream if self.direction == 0 else link.client
        if other is not None and other.can_write_eof() and not other.is_closing():
            other.write_eof()
        link.ended(self.direction)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.close()

    def pause_writing(self) -> None:  # this side reads slowly: stop reading what we would write to it
        self._other().pause_reading()

    def resume_writing(self) -> None:
        other = self._other()
        if not other.is_closing():
            other.resume_reading()

    def _other(self) -> asyncio.Transport:
        """The transport whose bytes this side's transport is written (Upstream: the client's)."""
        other = self.link.client if self.direction == 1 else self.link.upstream
        assert other is not None  # writes to a side only happen once both exist
        return other


class Upstream(Side):
    direction = 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.up(transport)  # type: ignore[arg-type]


class Downstream(Side):
    direction = 0

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link = Link(self.proxy, transport)  # type: ignore[arg-type]
        transport.pause_reading()  # type: ignore[attr-defined]  # until the upstream connection is there
        self.proxy.opened(self.link)
        asyncio.get_running_loop().create_task(self.link.connect())


class Proxy:
    """Listens on 127.0.0.1:``port`` for ``backing``; ``fault`` is None, latency, outage or blackhole."""

    def __init__(self, backing: Backing, port: int, jitter: Callable[[], float],
                 on_open: Callable[[Link], None] = lambda link: None) -> None:
        self.backing, self.port = backing, port
        self.jitter = jitter  # a uniform draw in [0, 1) from the seeded stream
        self.on_open = on_open
        self.links: set[Link] = set()
        self.history: deque[Link] = deque(maxlen=HISTORY)
        self.fault: str | None = None
        self.latency = 0.0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Downstream(self), "127.0.0.1", self.port,
                                                reuse_address=True)

    def opened(self, link: Link) -> None:
        self.links.add(link)
        self.history.append(link)
        self.on_open(link)

    def delay(self) -> float:
        return self.latency * (0.5 + self.jitter())  # ±50 % around the fault's latency

    def reset(self) -> None:
        for link in list(self.links):
            link.reset()

    async def begin(self, fault: str, latency: float = 0.0) -> None:
        self.fault, self.latency = fault, latency
        if fault == "outage":  # refused, as a service that is down: no listener, open connections dropped
            if self._server is not None:
                self._server.close()
                self._server = None
            self.reset()

    async def end(self) -> None:
        """The fault is over; after an outage the proxy listens again (OSError, the fault still on,
        while another socket holds its port)."""
        if self.fault == "outage":
            await self.start()
        self.fault = None

    async def end_when_free(self, busy: Callable[[OSError], None]) -> None:
        """``end``, retried every 0.5 s while another socket holds the port (``busy`` told once)."""
        told = False
        while True:
            try:
                await self.end()
                return
            except OSError as exc:
                if not told:
                    busy(exc)
                    told = True
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.reset()


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or restarted server does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]
