"""The non-sticky router: one listening port in front of every ready ``web.N``.

HTTP mode balances per request (``balance``: never sticky, see there) through
keep-alive pools (``pool``), one per instance generation: when an instance stops,
pauses or is relocated its pool is dropped, so chaos and non-stickiness are
unchanged. Every client deadline is kept by one timer (``sweep``). TCP mode
balances per connection (a client host's connections take turns). The parsing and
framing rules live in ``procrun.router.http`` (pure); the protocols in
``procrun.router.proxy``.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.project.plan import fd_budget
from procrun.router import http
from procrun.router.balance import Balancer
from procrun.router.pool import Pools, Target
from procrun.router.sweep import Sweeper
from procrun.router.tally import Tally
from procrun.supervise.session import Service
from procrun.supervise.shared import HISTORY

if TYPE_CHECKING:
    from procrun.router.listen import Listener
    from procrun.diagnose.answers import Difference
    from procrun.diagnose.recorder import Recorder
    from procrun.router.http import Request, Response
    from procrun.router.proxy import Client, Exchange
    from procrun.supervise.session import Session
    from procrun.supervise.shared import Shared

CLIENT_CEILING = 10_000
COMPARED = 3  # router.compare: other instances a sampled request is also sent to


class Router(Service):
    def __init__(self, session: Session, shared: Shared, host: str, port: int, mode: str = "http",
                 timeout: float = 30.0, type_name: str = "web", balance: str = "spread", seed: int = 0) -> None:
        super().__init__(session)
        self.shared = shared
        # its own random stream, from the session's seed: chaos replays stay what they are
        self.balancer = Balancer(balance, random.Random(f"router-{seed}"))
        self.chooser = random.Random(f"compare-{seed}")  # the other instance a comparison asks
        self.host, self.port, self.mode, self.timeout = host, port, mode, timeout
        self.type_name = type_name
        self.recorder: Recorder | None = None  # set by the composition root when requests are recorded
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.clients: set[Client] = set()
        self.pools = Pools()
        self.sweeper: Sweeper = None  # type: ignore[assignment]  # made with the loop
        self._server: asyncio.base_events.Server | None = None
        self._listener: Listener | None = None
        self._ready: list[Target] = []
        self._ready_at = -1  # the session generation _ready was read at
        self.connections = 0  # client connections accepted and not yet closed
        self.refusing = 0  # of those, the ones being told 503 (over the cap)
        self.tasks: set[asyncio.Task[None]] = set()
        self.tally = Tally()  # per instance per second, for the journal
        self._tally_timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        session = self.session
        self.loop = asyncio.get_running_loop()
        self.sweeper = Sweeper(self.loop, lambda: self.clients)
        try:
            if self.mode == "http":
                from procrun.router.listen import Listener

                self._listener = Listener(self)
            else:
                self._server = await asyncio.start_server(self._tcp, self.host, self.port, reuse_address=True)
        except OSError as exc:
            from procrun.errors import SessionError
            raise SessionError(f"router cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                               "pick another base port with -p") from None
        http_mode = self.mode == "http"
        session.say(f"listening on {'http' if http_mode else 'tcp'}://{self.host}:{self.port} for "
                    f"{self.type_name}.N ({'per request' if http_mode else 'per connection'}, never sticky)", "router")

    async def close(self) -> None:
        self.sweeper.close()
        if self._tally_timer is not None:
            self._tally_timer.cancel()
        self._journal_tally(None)
        if self._listener is not None:
            self._listener.close()
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.close()
        self.pools.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- the pool of instances
    def ready(self) -> list[Target]:
        """Ready instances: running (port accepted a connection), not paused. Read from the
        Machine again only when the session has applied something since the last look."""
        if self._ready_at != self.session.generation:
            self._ready_at = self.session.generation
            self._ready = [Target(p.name, p.instance.port, p.pid)  # type: ignore[arg-type]
                           for p in self.session.machine.ready(self.type_name)]
            self.pools.keep_only(self._ready)
        return self._ready

    def order(self, request: Request | None = None, connection: object = None) -> list[Target]:
        """The ready instances for one request, first choice first,
        then the retries; never sticky (``balance``). The client is its credentials (held as a
        hash, in memory only), else its keep-alive connection."""
        ready = self.ready()
        if request is None or len(ready) <= 1:  # (nothing to choose: the client need not be read)
            return self.balancer.order(ready, "", "")
        client = hash(tuple(request.credentials)) if request.credentials else id(connection) if connection else ""
        return self.balancer.order(ready, client, request.target.split(b"?", 1)[0].decode("latin-1"))

    def replay(self, request: Request, name: str, on_answer: Callable[[int, bool], None]) -> None:
        """The same request once more on instance ``name`` (the memory diagnosis verifies a
        suspicion); nothing when that instance is not ready."""
        from procrun.router.replay import replay_head, send

        target = next((t for t in self.ready() if t.name == name), None)
        if target is None:
            return
        task = self.loop.create_task(send(target.port, replay_head(request), on_answer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def compare(self, request: Request, name: str,
                done: Callable[[list[Difference] | None, tuple[str, ...]], None]) -> bool:
        """router.compare: ``request`` twice more to ``name`` and once to each other ready instance
        of its release (three at most, drawn), ``done`` told what differs; False when there is none."""
        from procrun.router.replay import compare_on

        ready, release = self.ready(), self.shared.releases.get(name)
        mine = next((t for t in ready if t.name == name), None)
        others = [t for t in ready if t.name != name and self.shared.releases.get(t.name) == release]
        if mine is None or not others:
            return False
        still = lambda t: getattr(self.session.machine.get(t.name), "pid", None) == t.pid  # noqa: E731
        others = self.chooser.sample(others, min(len(others), COMPARED))
        task = self.loop.create_task(compare_on(request, mine, others, still, done))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    def serving(self, name: str, request: Request) -> None:
        """Which request an instance is serving: a file it writes meanwhile is attributed to it."""
        self.shared.in_flight[name] = f"{request.method} {request.target.split(b'?', 1)[0].decode('latin-1')}"

    def served(self, name: str) -> None:
        self.shared.in_flight.pop(name, None)

    def unavailable(self) -> str:
        states = [(p.name, str(p.state)) for p in self.session.machine.of_type(self.type_name)]
        return http.describe_pool(states, self.type_name)

    def client_cap(self) -> int:
        """Client connections served at once: two fifths of the file descriptors the processes
        and the control socket leave free (each client may hold a backend connection too)."""
        return max(4, min(CLIENT_CEILING, self._spare() * 2 // 5))

    def refusal_cap(self) -> int:
        """Clients over the cap told 503 at once: a fifth of the spare descriptors."""
        return max(4, min(CLIENT_CEILING, self._spare() // 5))

    def _spare(self) -> int:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return CLIENT_CEILING * 5
        return soft - fd_budget(len(self.session.machine.all())) - 16

    def answered(self, exchange: Exchange, status: int, response: Response | None) -> None:
        """Every answer, the router's own included (``response`` None): the memory diagnosis listens."""
        name = exchange.backend.target.name if exchange.backend is not None else "router"
        self.tally.add(second := int(time.time()), name, status, response is None, time.monotonic() - exchange.started)
        if self._tally_timer is None:
            self._tally_timer = self.loop.call_later(1.0, self._journal_tally, second + 1)
        if self.recorder is not None:
            backend = exchange.backend
            target = backend.target if backend is not None else (exchange.targets[0] if exchange.targets else None)
            self.recorder.record(exchange.request, exchange.started, status, target.name if target else "router",
                                 target.pid if target else 0, response)

    def _journal_tally(self, before: int | None) -> None:
        """Once a second while requests come (no timer when idle): the seconds before ``before`` (None: all)."""
        self._tally_timer = None
        for record in self.tally.drain(before):
            self.session.journal.event("req", record)
            self.shared.rates[str(record["n"])] = record
            self.shared.history.setdefault(str(record["n"]), deque(maxlen=HISTORY)).append(record)
        if self.tally and before is not None:
            self._tally_timer = self.loop.call_later(1.0, self._journal_tally, int(time.time()) + 1)

    # -- TCP mode: per connection
    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        peer = writer.get_extra_info("peername")
        client = ("tcp", peer[0]) if isinstance(peer, tuple) else ""  # its connections take turns
        try:
            for target in self.balancer.order(self.ready(), client, ""):
                try:
                    b_reader, b_writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", target.port), 2.0)
                except (OSError, asyncio.TimeoutError):
                    continue
                try:
                    await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer), return_exceptions=True)
                finally:
                    b_writer.close()
                return
        except asyncio.CancelledError:  # the session ends: asyncio's stream callback would print a
            return  # traceback for a cancelled handler (its task.exception() raises); end quietly
        finally:
            writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """One direction of a tunnel: copy until EOF, then pass the EOF on."""
    try:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
    finally:
        if dst.can_write_eof() and not dst.is_closing():
            try:
                dst.write_eof()
            except OSError:
                pass
