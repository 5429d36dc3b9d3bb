"""A loopback TCP proxy in front of one backing service, with faults (``faults.KINDS``).
Event-driven (asyncio protocols, backpressure both ways); outside a fault it forwards every
byte unchanged, in order.

Each instance reaches the service through a port of its own (its environment names it), so the
proxy knows who opened a connection when it accepts it, with no scan of the system's sockets; a
shared port serves anyone else (a shell, a test).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from procrun.backing.faults import TIMED, Fault, timed
from procrun.backing.urls import Backing

HISTORY = 2000  # connections remembered for the verdicts
QUEUED_MAX = 1 << 20  # bytes a direction may hold back under a fault before its sender is paused
EOF = None  # in a direction's queue: the sender's half-close, passed on in its turn


class Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, client: asyncio.Transport, owner: str | None) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.owner = owner  # the instance whose port it came through (None: the shared port)
        self.opened = time.monotonic()
        self.closed: float | None = None
        self._queues: tuple[deque[tuple[float, bytes | None]], ...] = (deque(), deque())  # per direction
        self._free = [0.0, 0.0]  # per direction: when the next piece may leave (order, bandwidth)
        self._queued = [0, 0]  # per direction: bytes held back
        self._paused: tuple[set[str], set[str]] = (set(), set())  # per source: why it is not read
        self._early: list[bytes] = []  # client bytes that came before the upstream connection
        self._ended = [False, False]  # per direction: its sender half-closed and that was passed on
        self._touched: tuple[int, bool] = (-1, False)  # (fault serial, does that fault touch this link)
        self._counted: tuple[int, list[int]] = (-1, [0, 0])  # (fault serial, bytes per direction): limit_data

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
        self._resume(0, "upstream")

    def touched(self) -> Fault | None:
        """The proxy's fault, if it touches this connection (each draws once per fault: toxicity)."""
        proxy = self.proxy
        if proxy.fault is None:
            return None
        if self._touched[0] != proxy.serial:
            self._touched = (proxy.serial, proxy.fault.toxicity >= 1 or proxy.rng.random() < proxy.fault.toxicity)
        return proxy.fault if self._touched[1] else None

    def forward(self, direction: int, data: bytes) -> None:
        """direction 0: client to service (upstream), 1: service to client (downstream)."""
        target = self.upstream if direction == 0 else self.client
        if target is None:
            self._early.append(data)
            return
        fault = self.touched()
        fault = fault if fault is not None and fault.hits(direction) else None
        if fault is not None and fault.kind in ("blackhole", "timeout"):
            return  # lost, as on a dropped network: the reply a client waits for never comes
        cut = fault is not None and fault.kind == "limit_data" and self._limit(direction, fault, len(data))
        if cut is not False:
            data = data[:cut]
        if not self._queues[direction] and (fault is None or fault.kind not in TIMED):
            target.write(data)
        else:
            self._queue(direction, fault, data)
        if cut is not False:
            self.close()  # the limit reached: closed, as toxiproxy's limit_data does

    def _limit(self, direction: int, fault: Fault, size: int) -> int | bool:
        """limit_data: how many of ``size`` bytes still go through, or False when all do."""
        serial, counts = self._counted
        if serial != self.proxy.serial:
            self._counted = (self.proxy.serial, counts := [0, 0])
        room = int(fault.get("bytes")) - counts[direction]
        counts[direction] += size
        return False if size < room else max(0, room)

    def _queue(self, direction: int, fault: Fault | None, data: bytes | None) -> None:
        """Held back, to leave in order at its time (one timer per direction: timers due at the
        same moment need not run in the order they were set)."""
        queue, now = self._queues[direction], time.monotonic()
        if data is EOF:
            pieces = [(max(now + (fault.get("delay") / 1000 if fault else 0.0), self._free[direction]), EOF)]
        else:
            pieces, self._free[direction] = timed(fault, data, now, self._free[direction], self.proxy.rng)
            self._queued[direction] += len(data)
            if self._queued[direction] > QUEUED_MAX:
                self._pause(direction, "queue")
        start = not queue
        queue.extend(pieces)
        if start:
            self._arm(direction)

    def _arm(self, direction: int) -> None:
        delay = self._queues[direction][0][0] - time.monotonic()
        asyncio.get_running_loop().call_later(max(0.0, delay), self._release, direction)

    def _release(self, direction: int) -> None:
        queue, now = self._queues[direction], time.monotonic()
        target = self.upstream if direction == 0 else self.client
        while queue and queue[0][0] <= now:
            data = queue.popleft()[1]
            if target is None or target.is_closing():
                continue
            if data is EOF:
                self._pass_eof(direction)
            else:
                self._queued[direction] -= len(data)
                target.write(data)
        if self._queued[direction] <= QUEUED_MAX // 2:
            self._resume(direction, "queue")
        if queue:
            self._arm(direction)
        else:
            self._close_when_done()  # the last delayed bytes may come after both directions ended

    def eof(self, direction: int) -> None:
        """The sender of ``direction`` half-closed: passed on after what it sent (slow_close: late)."""
        fault = self.touched()
        fault = fault if fault is not None and fault.hits(direction) else None
        if fault is not None and fault.kind in ("blackhole", "timeout"):
            return  # lost with the data
        slow = fault if fault is not None and fault.kind == "slow_close" else None
        if slow is None and not self._queues[direction]:
            self._pass_eof(direction)
        else:
            self._queue(direction, slow, EOF)

    def _pass_eof(self, direction: int) -> None:
        other = self.upstream if direction == 0 else self.client
        if other is not None and other.can_write_eof() and not other.is_closing():
            try:
                other.write_eof()
            except OSError:  # the other end is gone already (reset): nothing left to pass on
                self.close()
                return
        self._ended[direction] = True
        self._close_when_done()

    def _close_when_done(self) -> None:
        """Both directions ended and nothing delayed is left to send: the link is done."""
        if all(self._ended) and not any(self._queues):
            self.close()

    def lost(self, direction: int) -> None:
        """The sender of ``direction`` is gone: the link closes (slow_close: late)."""
        fault = self.touched()
        if fault is not None and fault.kind == "slow_close" and fault.hits(direction):
            asyncio.get_running_loop().call_later(fault.get("delay") / 1000, self.close)
        else:
            self.close()

    def _pause(self, direction: int, why: str) -> None:
        """Stop reading the sender of ``direction`` (its bytes cannot leave fast enough)."""
        source = self.client if direction == 0 else self.upstream
        if source is not None and not self._paused[direction] and not source.is_closing():
            source.pause_reading()
        self._paused[direction].add(why)

    def _resume(self, direction: int, why: str) -> None:
        source = self.client if direction == 0 else self.upstream
        paused = self._paused[direction]
        if why in paused:
            paused.discard(why)
            if not paused and source is not None and not source.is_closing():
                source.resume_reading()

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
    direction = 0  # of the bytes this side receives

    def __init__(self, link: Link) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.link.forward(self.direction, data)

    def eof_received(self) -> bool:
        """A half-close, passed on: the other direction may still talk. Once both directions
        have ended, the link is done and both connections close (their descriptors with them)."""
        self.link.eof(self.direction)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self.direction)

    def pause_writing(self) -> None:  # this side reads slowly: stop reading what we would write to it
        self.link._pause(1 - self.direction, "buffer")

    def resume_writing(self) -> None:
        self.link._resume(1 - self.direction, "buffer")


class Upstream(Side):
    direction = 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link.up(transport)  # type: ignore[arg-type]


class Downstream(Side):
    direction = 0

    def __init__(self, proxy: Proxy, owner: str | None) -> None:
        self.proxy, self.owner = proxy, owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link = Link(self.proxy, transport, self.owner)  # type: ignore[arg-type]
        self.link._pause(0, "upstream")  # until the upstream connection is there
        self.proxy.opened(self.link)
        asyncio.get_running_loop().create_task(self.link.connect())


class Proxy:
    """Listens on 127.0.0.1 for ``backing``: a port per instance (``listen``) and a shared one;
    ``fault`` is the fault under way, if any."""

    def __init__(self, backing: Backing, port: int = 0, rng: random.Random | None = None) -> None:
        self.backing = backing
        self.rng = rng or random.Random()  # jitter, slices, toxicity: the seeded stream in a session
        self.links: set[Link] = set()
        self.history: deque[Link] = deque(maxlen=HISTORY)
        self.fault: Fault | None = None
        self.serial = 0  # counts the faults begun: a link draws its toxicity once per fault
        self.ports: dict[str | None, int] = {}  # owner -> its port, kept for the session
        self._unserved: dict[str | None, socket.socket] = {}  # bound, not served yet
        self._servers: dict[str | None, asyncio.base_events.Server | None] = {}  # None: being made
        self._started = False
        self._timeouts: list[asyncio.TimerHandle] = []
        self.port = self.listen(None, port)  # the shared port

    def listen(self, owner: str | None, port: int = 0) -> int:
        """The port ``owner``'s connections come through, bound now (before the loop runs, the
        kernel queues early connections; during an outage it is bound, not listening: refused)."""
        if owner in self.ports:
            return self.ports[owner]
        sock = _bound(port)
        self.ports[owner] = sock.getsockname()[1]
        self._unserved[owner] = sock
        if not self._out():
            sock.listen(128)
            if self._started:
                asyncio.get_running_loop().create_task(self._serve())
        return self.ports[owner]

    def _out(self) -> bool:
        return self.fault is not None and self.fault.kind == "outage"

    async def start(self) -> None:
        self._started = True
        await self._serve()

    async def _serve(self) -> None:
        """Serve every port not served: OSError (after trying them all) when one is taken."""
        loop, failed = asyncio.get_running_loop(), None
        for owner, port in list(self.ports.items()):
            if owner in self._servers:
                continue
            self._servers[owner] = None
            try:
                sock = self._unserved.pop(owner, None) or _bound(port)
                self._servers[owner] = await loop.create_server(lambda o=owner: Downstream(self, o), sock=sock)
            except OSError as exc:
                del self._servers[owner]
                failed = exc
        if failed is not None:
            raise failed

    def _unserve(self) -> None:
        for server in self._servers.values():
            if server is not None:
                server.close()
        self._servers.clear()
        for sock in self._unserved.values():
            sock.close()
        self._unserved.clear()

    def opened(self, link: Link) -> None:
        self.links.add(link)
        self.history.append(link)
        self._time_out(link)

    def reset(self) -> None:
        for link in list(self.links):
            if self.fault is None or link.touched() is not None:
                link.reset()

    async def begin(self, fault: Fault) -> None:
        self.fault, self.serial = fault, self.serial + 1
        if fault.kind == "outage":  # refused, as a service that is down: no listener, open connections dropped
            self._unserve()
            self.reset()
        elif fault.kind == "reset":
            self.reset()
        for link in list(self.links):
            self._time_out(link)

    def _time_out(self, link: Link) -> None:
        """timeout: a connection it touches is closed after its timeout (0: held, never closed)."""
        fault = self.fault
        if fault is not None and fault.kind == "timeout" and fault.get("timeout") and link.touched() is not None:
            self._timeouts.append(asyncio.get_running_loop().call_later(fault.get("timeout") / 1000, link.close))

    async def end(self) -> None:
        """The fault is over; after an outage the proxy listens again (OSError, the fault still on,
        while another socket holds a port)."""
        for handle in self._timeouts:
            handle.cancel()
        self._timeouts.clear()
        if self._out():
            await self._serve()
        self.fault = None

    async def end_when_free(self, busy: Callable[[OSError], None]) -> None:
        """``end``, retried every 0.5 s while another socket holds a port (``busy`` told once)."""
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
        self._started = False
        self._unserve()
        for handle in self._timeouts:
            handle.cancel()
        for link in list(self.links):
            link.reset()


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or restarted server does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()  # type: ignore[attr-defined]
