"""The HTTP proxy: asyncio protocols for client and backend connections.

Bytes are parsed by llhttp (httptools) on both sides; heads are re-rendered by
``procrun.router.http``; bodies are streamed with backpressure both ways and
never held whole. One ``Exchange`` carries one request from a ``Client``
connection to a ``Backend`` connection, taken from the instance's keep-alive
pool or opened fresh, and its response back.

This is the hot path of every routed request: no timer per request (deadlines
are attributes that the router's one sweep checks), writes gathered and sent
once per callback, every head read once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from enum import Enum
from typing import TYPE_CHECKING

import httptools

from procrun.router import http
from procrun.router.http import BadMessage, Request, Response
from procrun.router.sweep import NEVER

if TYPE_CHECKING:
    from procrun.router.pool import Target
    from procrun.router.service import Router

CONNECT_TIMEOUT = 2.0
HEADER_TIMEOUT = 10.0  # a client has this long to send a request head
IDLE_TIMEOUT = 60.0  # a keep-alive client connection with no request in flight
RECENT = 1.0  # a pooled connection used this recently may carry a request that cannot be retried
PENDING_LIMIT = 256 * 1024  # request bytes held while the backend connection opens


class HeadTooLarge(BadMessage):
    pass


def _counted(size: int, more: int, what: str) -> int:
    """A head's size so far; past MAX_HEAD it is refused (431 for a request, 502 for a response)."""
    size += more
    if size > http.MAX_HEAD:
        raise HeadTooLarge(f"{what} head larger than {http.MAX_HEAD // 1024} KiB")
    return size


def _cause(error: Exception) -> Exception:
    """llhttp's own error, or ours raised from a callback (httptools wraps it)."""
    if isinstance(error, httptools.HttpParserCallbackError):
        cause = error.__cause__ or error.__context__
        if isinstance(cause, BadMessage):
            return cause
        if cause is not None:
            raise cause
    return error


class Gathered(asyncio.Protocol):
    """A connection whose writes are gathered during a callback and sent in one write."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def flush(self) -> None:
        out = self.out
        if out:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def write_eof(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing() and self.transport.can_write_eof():
            self.transport.write_eof()


class Client(Gathered):
    """One client connection: requests parsed in order, one exchange in flight at a time."""

    def __init__(self, router: Router) -> None:
        super().__init__()
        self.router = router
        self.client_ip = b"unknown"
        self.parser = httptools.HttpRequestParser(self)
        self.exchange: Exchange | None = None  # in flight
        self.building: Exchange | None = None  # head parsed, body still arriving
        self.waiting: deque[Exchange] = deque()  # pipelined behind the one in flight
        self.paused: set[str] = set()
        self.writable = True
        self.tunnel: Backend | None = None
        self.deadline = NEVER  # checked by the router's sweep
        self.expiry = (0, "")  # what to answer at the deadline: (status, text); 0 closes quietly
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self.ended = False  # the client half-closed: what it asked is answered, then the connection closes
        self.last = False  # a request that ends the connection is complete: what follows is ignored

    # -- connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0].encode() if peer else b"unknown"
        self.router.clients.add(self)
        self._expect_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self.router.clients.discard(self)
        self.router.connections -= 1
        for exchange in (self.exchange, *self.waiting):
            if exchange is not None:
                exchange.abort()
        self.waiting.clear()
        if self.tunnel is not None:
            self.tunnel.close()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            self.tunnel.flush()
            return
        if self.last:  # after a request that closes the connection, servers ignore what follows
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data[upgrade.args[0]:])
        except httptools.HttpParserError as exc:
            if not self.last:  # (llhttp refuses bytes after a Connection: close request: ignored)
                problem = _cause(exc)
                self.refuse(431 if isinstance(problem, HeadTooLarge) else 400, f"procrun router: {problem}")
        exchange = self.exchange
        if exchange is not None and exchange.backend is not None:
            exchange.backend.flush()

    def eof_received(self) -> bool:
        """A half-close (``nc -N``): what was asked is answered, then it closes (a tunnel passes it on)."""
        self.ended = True
        if self.tunnel is not None:
            self.tunnel.write_eof()
        elif self.exchange is None and self.building is None:
            self.close()
        return True

    def pause_writing(self) -> None:
        self.writable = False
        if self.exchange is not None and self.exchange.backend is not None:
            self.exchange.backend.pause()

    def resume_writing(self) -> None:
        self.writable = True
        if self.exchange is not None and self.exchange.backend is not None:
            self.exchange.backend.resume()

    # -- parser callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._head_size = b"", [], 0
        if self.exchange is None:
            self._expect_head()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size = _counted(self._head_size, len(url), "request")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size = _counted(self._head_size, len(name) + len(value) + 4, "request")

    def on_headers_complete(self) -> None:
        parser = self.parser
        request = Request(parser.get_method().decode("latin-1"), self._url, parser.get_http_version(),
                          self._headers, parser.should_keep_alive())
        http.check(request)
        exchange = Exchange(self, request)
        self.building = exchange
        if self.exchange is None:
            self.deadline = NEVER
            self.exchange = exchange
            exchange.start()
        else:
            self.waiting.append(exchange)
            self.pause("pipelined")

    def on_body(self, body: bytes) -> None:
        if self.building is not None:
            self.building.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self.building = self.building, None
        self.last = exchange is not None and not exchange.request.keep_alive
        if exchange is not None:
            exchange.request_done()

    def _upgraded(self, rest: bytes) -> None:
        """llhttp stops at an Upgrade request: tunnel it, or (h2c) carry on as HTTP/1.1."""
        exchange = self.exchange if self.exchange is not None and self.exchange.request.upgrade else None
        if exchange is None:  # h2c and friends: the Upgrade header was dropped; keep parsing
            self.parser = httptools.HttpRequestParser(self)
            if rest:
                self.data_received(rest)
            return
        exchange.tunnel_pending.append(rest)
        self.pause("upgrade")  # until the instance answers 101 (or does not)

    # -- towards the client
    def refuse(self, status: int, text: str) -> None:
        """An answer of the router's own, then close (the connection may be mid-message)."""
        if self.exchange is None or not self.exchange.head_sent:
            self.write(http.error_response(status, text))
        self.close()

    def close(self) -> None:
        self.deadline = NEVER
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def tunnel_to(self, backend: Backend, rest: bytes, pending: list[bytes]) -> None:
        """After a 101: bytes both ways as they come; ``rest`` came with the head, ``pending``
        from the client while it waited."""
        self.tunnel, backend.tunnel = backend, self
        self.write(rest)
        self.flush()
        backend.out.extend(piece for piece in pending if piece)
        backend.flush()
        self.resume("upgrade")

    def pause(self, reason: str) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused.add(reason)

    def resume(self, reason: str) -> None:
        self.paused.discard(reason)
        if not self.paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def finished(self, exchange: Exchange, keep: bool) -> None:
        """The response is complete: next pipelined request, or wait for one, or close."""
        if exchange is not self.exchange:
            return
        self.exchange = None
        if not keep or (self.ended and not self.waiting):
            self.close()
            return
        if self.waiting:
            self.exchange = self.waiting.popleft()
            if not self.waiting:
                self.resume("pipelined")
            self.exchange.start()
        else:
            self.expire_in(IDLE_TIMEOUT, 0, "")

    # -- deadlines (checked by the router's sweeper)
    def _expect_head(self) -> None:
        self.expire_in(HEADER_TIMEOUT, 408, f"procrun router: no complete request head within {HEADER_TIMEOUT:g}s")

    def expire_in(self, seconds: float, status: int, text: str) -> None:
        """At ``seconds`` from now, answer ``status`` with ``text`` and close (0: close quietly)."""
        self.deadline = time.monotonic() + seconds
        self.expiry = (status, text)
        self.router.sweeper.expect(self.deadline)

    def check(self, now: float) -> float:
        """Act on a passed deadline; the next deadline of this connection."""
        if now >= self.deadline:
            status, text = self.expiry
            self.deadline = NEVER
            if status:
                self.refuse(status, text)
            else:
                self.close()
        exchange = self.exchange
        if exchange is not None and now >= exchange.deadline:
            exchange.timed_out()
        return min(self.deadline, exchange.deadline if exchange is not None else NEVER)


class Refusal(asyncio.Protocol):
    """A client over the connection cap: told 503, its request read and dropped, closed soon."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.router.refusing += 1
        self.transport.write(http.error_response(503, "procrun router: too many client connections; "
                                                      "try again shortly"))
        self.timer = self.router.loop.call_later(1.0, self.transport.close)

    def data_received(self, data: bytes) -> None:
        """Read, so that closing sends FIN, not RST, and the client sees the 503; once its
        request head is in, the slot is free at once."""
        if b"\r\n\r\n" in data and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.router.refusing -= 1
        self.router.connections -= 1
        if self.timer is not None:
            self.timer.cancel()


class Phase(Enum):
    """Where an exchange is: waiting for a connection or the response head, relaying a
    response, tunnelling after a 101, or ended (answered, finished, failed or aborted)."""

    WAITING = "waiting"
    RESPONDING = "responding"
    TUNNEL = "tunnel"
    ENDED = "ended"


class Exchange:
    """One request and its response, across one (or, on a retry, another) backend connection."""

    __slots__ = ("client", "router", "request", "head", "backend", "targets", "pending", "pending_size",
                 "tunnel_pending", "complete", "phase", "framing", "chunked_out", "keep", "attempts",
                 "fresh_only", "force_new", "deadline", "connecting", "started")

    def __init__(self, client: Client, request: Request) -> None:
        self.client = client
        self.router = client.router
        self.request = request
        self.head = http.request_head(request, client.client_ip, time.time())
        self.backend: Backend | None = None
        self.targets: list[Target] = []
        self.pending: list[bytes] = []  # request bytes waiting for a backend connection
        self.pending_size = 0
        self.tunnel_pending: list[bytes] = []
        self.complete = False  # the whole request was received
        self.phase = Phase.WAITING
        self.framing = "none"
        self.chunked_out = False
        self.keep = False
        self.attempts = 0
        self.fresh_only = not request.retryable
        self.force_new = request.upgrade is not None  # tunnels get a connection of their own
        self.deadline = NEVER  # for the response to start
        self.started = time.monotonic()
        self.connecting: asyncio.Task[None] | None = None

    @property
    def head_sent(self) -> bool:
        """The client has (part of) the instance's answer: an error can no longer be said."""
        return self.phase is Phase.RESPONDING or self.phase is Phase.TUNNEL

    # -- request side
    def start(self) -> None:
        self.targets = self.router.order(self.request, self.client)
        self.attach()

    def attach(self) -> None:
        """The first target with a usable pooled connection, else a new connection to it."""
        if not self.targets:
            self._answer(503, self.router.unavailable())
            return
        target = self.targets[0]
        backend = None if self.force_new else self.router.pools.take(target, RECENT if self.fresh_only else None)
        if backend is not None:
            self.use(backend)
        else:
            self.connecting = self.router.loop.create_task(connect(self, target))

    def use(self, backend: Backend, fresh: bool = False) -> None:
        self.backend = backend
        backend.exchange = self
        backend.fresh = fresh
        backend.write(self.head)
        if self.pending:
            backend.out.extend(self.pending)
            self.pending.clear()
            self.pending_size = 0
            self.client.resume("connecting")
        if not self.client.writable:
            backend.pause()
        self.deadline = time.monotonic() + self.router.timeout
        self.router.sweeper.expect(self.deadline)
        if self.router.recorder is not None:
            self.router.serving(backend.target.name, self.request)
        backend.flush()

    def request_body(self, data: bytes) -> None:
        piece = http.chunk(data) if self.request.chunked else data
        if self.backend is not None:
            self.backend.write(piece)
            return
        self.pending.append(piece)
        self.pending_size += len(piece)
        if self.pending_size > PENDING_LIMIT:
            self.client.pause("connecting")

    def request_done(self) -> None:
        self.complete = True
        if self.request.chunked:
            if self.backend is not None:
                self.backend.write(http.LAST_CHUNK)
            else:
                self.pending.append(http.LAST_CHUNK)

    # -- response side
    def response_head(self, response: Response, instance: bytes) -> None:
        status = response.status
        if 100 <= status < 200 and status != 101:
            if self.request.version != "1.0":  # HTTP/1.0 has no 1xx: its client would take it as the answer
                self.client.write(http.informational(response))  # 100 Continue and friends
            return
        self.deadline = NEVER
        self.phase = Phase.RESPONDING
        if status == 101 and self.request.upgrade is not None:
            self.client.write(http.response_head(response, instance, False, False, upgrade=True))
            return
        self.framing, self.chunked_out, self.keep = http.relay_framing(response, self.request)
        self.client.write(http.response_head(response, instance, self.keep, self.chunked_out))
        self.router.answered(self, status, response)

    def response_body(self, data: bytes) -> None:
        self.client.write(http.chunk(data) if self.chunked_out else data)

    def response_done(self, backend_keep: bool) -> None:
        if self.phase is Phase.ENDED:
            return
        self._end()
        if self.chunked_out:
            self.client.write(http.LAST_CHUNK)
        self._release(keep=backend_keep and self.complete)
        if not self.complete:
            self.keep = False  # the client is still sending a body the instance did not wait for
        self.client.finished(self, self.keep)

    def tunnel(self, backend: Backend, rest: bytes) -> None:
        """101 Switching Protocols: from now on, bytes both ways as they come."""
        self.phase, self.deadline = Phase.TUNNEL, NEVER
        self.client.tunnel_to(backend, rest, self.tunnel_pending)

    # -- failures
    def backend_lost(self, backend: Backend, got_response: bool) -> None:
        """The backend connection closed with this exchange on it."""
        if self.phase is Phase.ENDED or self.phase is Phase.TUNNEL or backend is not self.backend:
            return
        self._release(keep=False)
        if self.head_sent:
            if self.framing == "eof":
                self.response_done(False)  # the end of an EOF-framed body
            else:
                self._truncate()
            self.client.flush()
            return
        self.deadline = NEVER
        if not got_response and self.request.retryable and self.attempts < 3:
            self.attempts += 1
            if backend.fresh:
                self.targets.pop(0)  # a fresh connection died: that instance is going away
            self.force_new = True  # a pooled one the instance closed while idle: a new connection
            self.attach()
            self.client.flush()
            return
        self._answer(502, f"procrun router: {backend.target.name} failed before answering")

    def backend_malformed(self, backend: Backend, problem: Exception) -> None:
        """The instance sent bytes that are not HTTP: 502, or a cut if its answer had begun."""
        if backend is not self.backend or self.phase is Phase.ENDED:
            return
        self._release(keep=False)
        if self.head_sent:
            self._truncate()
        else:
            self._answer(502, f"procrun router: {backend.target.name} sent a malformed response ({problem})")

    def timed_out(self) -> None:
        self.deadline = NEVER
        if self.head_sent or self.phase is Phase.ENDED:
            return
        name = self.backend.target.name if self.backend else "the instance"
        self._release(keep=False)
        self._answer(504, f"procrun router: {name} did not start a response within {self.router.timeout:g}s")

    def abort(self) -> None:
        """The client went away: drop the backend connection (it may be mid-message)."""
        self._end()
        if self.connecting is not None:
            self.connecting.cancel()
        self._release(keep=False)

    # -- the one end and the one release
    def _end(self) -> None:
        self.phase, self.deadline = Phase.ENDED, NEVER

    def _release(self, keep: bool) -> None:
        """Let go of the backend connection: back to its pool when ``keep``, else closed."""
        backend, self.backend = self.backend, None
        if backend is None:
            return
        backend.exchange = None
        if self.router.recorder is not None:
            self.router.served(backend.target.name)
        if keep:
            self.router.pools.give_back(backend, backend.target in self.router.ready())
        else:
            backend.close()

    def _answer(self, status: int, text: str) -> None:
        """The router's own answer (503, 502, 504), then the connection closes."""
        self._end()
        self.router.answered(self, status, None)
        self.client.refuse(status, text)

    def _truncate(self) -> None:
        """The instance's answer had begun and cannot be finished: never glue an error into it."""
        self._end()
        self.client.close()


async def connect(exchange: Exchange, target: Target) -> None:
    """A new connection to ``target`` for ``exchange``; the next instance if it fails."""
    router = exchange.router
    try:
        _, backend = await asyncio.wait_for(
            router.loop.create_connection(lambda: Backend(router, target), "127.0.0.1", target.port), CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        exchange.connecting = None
        if exchange.phase is not Phase.ENDED:
            exchange.targets.pop(0)  # that instance is gone: the next one
            exchange.attach()
            exchange.client.flush()
        return
    exchange.connecting = None
    if exchange.phase is Phase.ENDED:
        backend.close()
        return
    exchange.use(backend, fresh=True)


class Backend(Gathered):
    """One connection to an instance; pooled between exchanges while both sides keep it alive."""

    def __init__(self, router: Router, target: Target) -> None:
        super().__init__()
        self.router = router
        self.target = target
        self.instance = target.name.encode()
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.tunnel: Client | None = None
        self.fresh = True
        self.last_used = time.monotonic()
        self.got_response = False
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._final = False  # the final (non-1xx) head of the current response has come
        self._switching = False  # 101 to an upgrade: a tunnel follows the head
        self._new_parser = False
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.router.pools.forget(self)
        if self.tunnel is not None:
            self.tunnel.close()
        elif self.exchange is not None:
            self.exchange.backend_lost(self, self.got_response)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            self.tunnel.flush()
            return
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: not a connection to reuse
            self.close()
            return
        self.got_response = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self.exchange is not None and self._switching:
                self.exchange.tunnel(self, data[upgrade.args[0]:])
            return
        except httptools.HttpParserError as error:
            self._malformed(_cause(error))
            exchange.client.flush()
            return
        if self._switching and self.exchange is not None:  # a 101 llhttp did not take for an upgrade
            self.exchange.tunnel(self, b"")
        elif self._new_parser:
            self._new_parser = False
            self.parser = httptools.HttpResponseParser(self)
        exchange.client.flush()
        if self.out:
            self.flush()

    def _malformed(self, problem: Exception) -> None:
        if self.exchange is not None:
            self.exchange.backend_malformed(self, problem)
        self.close()

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.pause("backend")

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.resume("backend")

    # -- parser callbacks
    def on_message_begin(self) -> None:
        self._reason, self._headers, self._head_size, self._final = b"", [], 0, False

    def on_status(self, reason: bytes) -> None:
        self._reason += reason
        self._head_size = _counted(self._head_size, len(reason), "response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size = _counted(self._head_size, len(name) + len(value) + 4, "response")

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = self.parser.get_status_code()
        self._final = not 100 <= status < 200 or status == 101
        self._switching = status == 101 and exchange.request.upgrade is not None
        exchange.response_head(Response(status, self._reason, self._headers), self.instance)
        if self._final and exchange.request.method == "HEAD" and status != 101:
            # llhttp cannot know the request was HEAD (httptools#47): no body follows
            self._new_parser = True
            self._complete()

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        if self._final and self.exchange is not None and not self._switching:
            self._complete()

    def _complete(self) -> None:
        exchange = self.exchange
        self.got_response = False
        self.last_used = time.monotonic()
        if exchange is not None:
            exchange.response_done(self.parser.should_keep_alive() and exchange.framing != "eof")

    # -- effects
    def pause(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self._closed and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        self.exchange = None
        self.out.clear()
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return not self._closed and self.transport is not None and not self.transport.is_closing()
