"""Backing-service chaos for a session: the proxies, the seeded faults, the verdicts."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from procrun.backing import verdicts
from procrun.backing.proxy import Link, Proxy
from procrun.backing.urls import Backing, Skipped, judge, rewrite, shown
from procrun.project.plan import type_of
from procrun.platform import connection_owners
from procrun.supervise.session import Service

if TYPE_CHECKING:
    from procrun.supervise.shared import Shared
    from procrun.supervise.session import Session

FAULTS = ("latency", "reset", "outage", "blackhole")
DESCRIPTIONS = {"latency": "every byte delayed", "reset": "every open connection reset",
                "outage": "new connections refused, open ones dropped",
                "blackhole": "connections held, nothing forwarded"}
GRACE = 3.0  # seconds after a fault ends (or begins, for crashes) before it is judged
SCAN_EVERY = 0.25  # seconds between two scans for connection owners (each reads every connection of the system)


def draw(rng: random.Random, names: list[str]) -> tuple[str, str, float, float]:
    """One fault from the backing stream: (service, action, seconds, latency). Pure given ``rng``."""
    name = rng.choice(names)
    action = rng.choice(FAULTS)
    seconds = 0.0 if action == "reset" else round(rng.uniform(1.0, 5.0), 2)
    return name, action, seconds, round(rng.uniform(0.05, 0.5), 3)


class BackingService(Service):
    kind = "backing"

    def __init__(self, session: Session, shared: Shared, proxied: list[tuple[Backing, int]], skipped: list[Skipped],
                 seed: int, interval: float, scheduled: bool, routed_type: str | None,
                 own_ports: frozenset[int] = frozenset()) -> None:
        super().__init__(session)
        self.shared = shared
        # its own random stream: the same seed replays the same process chaos with or without it
        self.rng = random.Random(f"backing-{seed}")
        self.interval, self.scheduled, self.routed_type = interval, scheduled, routed_type
        self.proxies = {b.var: Proxy(b, port, self.rng.random, self._opened) for b, port in proxied}
        self.skipped = skipped
        self.verdicts: list[verdicts.Verdict] = []
        self.scheduled_count = self.skipped_count = 0  # faults the schedule drew, and those skipped
        self.own_ports = own_ports  # this session's own ports: never proxied
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._unowned: list[Link] = []  # connections whose owner is not looked up yet
        self._scanning = False

    async def start(self) -> None:
        session = self.session
        for proxy in self.proxies.values():
            try:
                await proxy.start()
            except OSError as exc:
                from procrun.errors import SessionError
                raise SessionError(f"cannot proxy {proxy.backing.var}: port {proxy.port}: {exc.strerror}") from None
            session.say(f"{proxy.backing.var} {shown(proxy.backing.url)} through 127.0.0.1:{proxy.port}", "backing")
        for s in self.skipped:
            session.say(f"{s.var} not proxied: {s.reason}", "backing")
        session.report.backing_map = self.mapping()
        if self.scheduled and self.proxies:
            self._arm()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # each judges what it had seen
        for proxy in self.proxies.values():
            await proxy.close()

    def retarget(self, dotenv: Mapping[str, str]) -> dict[str, str]:
        """.env changed (--watch): a proxied URL that changed is followed. The proxy, on the same port,
        forwards new connections to the new service; one that is no longer proxiable is left to
        the app as written. The overrides that stand are returned."""
        overrides = {}
        for var, proxy in self.proxies.items():
            new = dotenv.get(var)
            if new is None or new == proxy.backing.url:
                overrides[var] = rewrite(proxy.backing.url, proxy.port)
                continue
            backing, reason = judge(var, new, self.own_ports)
            if backing is None:
                self.session.say(f"{var} changed to {shown(new)}: not proxied any more ({reason})", "backing")
                continue
            proxy.backing = backing
            overrides[var] = rewrite(new, proxy.port)
            self.session.say(f"{var} now {shown(new)} through 127.0.0.1:{proxy.port}", "backing")
        self.session.report.backing_map = self.mapping()
        return overrides

    def mapping(self) -> list[dict[str, object]]:
        return ([{"var": p.backing.var, "url": shown(p.backing.url), "proxy": f"127.0.0.1:{p.port}"}
                 for p in self.proxies.values()]
                + [{"var": s.var, "url": shown(s.url), "reason": s.reason} for s in self.skipped])

    # -- faults
    def _arm(self) -> None:
        delay = self.rng.expovariate(1.0 / self.interval)
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        """A scheduled fault; one that falls due while its service is under another is skipped
        and said (faults never overlap on one service), and the schedule goes on either way."""
        try:
            if self.session.machine.ending is not None:
                return
            name, action, seconds, latency = draw(self.rng, sorted(self.proxies))
            self.scheduled_count += 1
            if self.proxies[name].fault is not None:
                self.skipped_count += 1
                self.session.say(f"{action} {name} skipped: it is under a {self.proxies[name].fault} fault", "chaos")
                return
            self.now(name, action, seconds, latency)
        finally:
            self._arm()  # after the draw, as before: a seed replays the same faults

    def now(self, name: str, action: str, seconds: float | None = None, latency: float = 0.2) -> None:
        """Begin a fault at once (the schedule, or `procrun chaos now --backing NAME --action A`)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ValueError(f"no proxied backing service {name!r}; proxied: {', '.join(self.proxies) or 'none'}")
        if action not in FAULTS:
            raise ValueError(f"unknown backing fault {action!r}; choose from {', '.join(FAULTS)}")
        if proxy.fault is not None:
            raise ValueError(f"{name} is already under a {proxy.fault} fault")
        seconds = (0.0 if action == "reset" else 3.0) if seconds is None else seconds
        extra = f" for {seconds:g}s" if seconds else ""
        extra += f", {latency * 1000:.0f} ms ±50%" if action == "latency" else ""
        self.session.say(f"{action} {name}{extra} ({DESCRIPTIONS[action]})", "chaos")
        self.session.journal.event("fault", {"n": name, "action": action, "seconds": seconds})
        task = asyncio.get_running_loop().create_task(self._run(proxy, action, seconds, latency))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, proxy: Proxy, action: str, seconds: float, latency: float) -> None:
        start = time.monotonic()
        users = self._users(proxy)
        if action == "reset":
            proxy.reset()
        else:
            await proxy.begin(action, latency)
            await asyncio.sleep(seconds)
            await self._end(proxy)
            self.session.say(f"{proxy.backing.var} back to normal after {action}", "chaos")
        end, wall = time.monotonic(), time.time()
        fault = verdicts.Fault(proxy.backing.var, action, start, end, users)
        try:
            await asyncio.sleep(GRACE)
        except asyncio.CancelledError:  # the session stops within the grace: a crash already seen is judged
            self._judged([v for v in verdicts.judge(fault, self._seen(proxy, fault, wall)) if v.verdict == "crashed"])
            raise
        self._judged(verdicts.judge(fault, self._seen(proxy, fault, wall)))

    async def _end(self, proxy: Proxy) -> None:
        """End a fault; a port taken meanwhile by another socket is retried, said once."""
        await proxy.end_when_free(lambda exc: self.session.say(
            f"{proxy.backing.var}: cannot listen on 127.0.0.1:{proxy.port} again ({exc.strerror}); "
            "retrying until it is free", "backing"))

    def _users(self, proxy: Proxy) -> tuple[tuple[str, int], ...]:
        out = []
        for link in proxy.links:
            proc = self.session.machine.get(link.owner) if link.owner else None
            if proc is not None and proc.pid is not None and (link.owner, proc.pid) not in out:
                out.append((link.owner, proc.pid))
        return tuple(sorted(out))

    def _seen(self, proxy: Proxy, fault: verdicts.Fault, ended_wall: float) -> dict[str, verdicts.Seen]:
        seen = {}
        for instance, _ in fault.users:
            proc = self.session.machine.get(instance)
            links = [link for link in proxy.history if link.owner == instance]
            routed = type_of(instance) == self.routed_type
            rate = self.shared.rates.get(instance) or {}
            seen[instance] = verdicts.Seen(
                pid=proc.pid if proc is not None else None,
                crashed_at=proc.crashed_at if proc is not None else None,
                reconnected=any(link.opened > fault.end for link in links),
                holding=any(link.opened < fault.start and link.closed is None for link in links),
                stuck=routed and instance in self.shared.in_flight,
                served=routed and int(rate.get("sec", 0)) >= int(ended_wall) and int(rate.get("2xx", 0)) > 0,
                routed=routed)
        return seen

    def _judged(self, found: list[verdicts.Verdict]) -> None:
        self.verdicts += found
        for v in found:
            self.session.say(f"{v.instance} {v.verdict} after {v.action} of {v.var}", "backing")
            self.session.journal.event("verdict", {"n": v.instance, "var": v.var, "action": v.action,
                                                   "verdict": v.verdict})
        self.session.report.backing = verdicts.summary(self.verdicts)

    # -- who opened a connection: one scan at a time, at most SCAN_EVERY, for all that came since
    def _opened(self, link: Link) -> None:
        self._unowned.append(link)
        if not self._scanning:
            self._scan()

    def _scan(self) -> None:
        links, self._unowned = [link for link in self._unowned if link.closed is None], []
        if not links:
            self._scanning = False
            return
        self._scanning = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, connection_owners, {(link.peer_port, link.proxy.port) for link in links})
        future.add_done_callback(lambda f: self._owned(links, f))

    def _owned(self, links: list[Link], future: asyncio.Future[dict[tuple[int, int], int]]) -> None:
        owners = {} if future.cancelled() or future.exception() is not None else future.result()
        for link in links:
            pid = owners.get((link.peer_port, link.proxy.port))
            try:
                link.owner = self.session.machine.name_of(os.getpgid(pid)) if pid is not None else None
            except OSError:
                pass
        asyncio.get_running_loop().call_later(SCAN_EVERY, self._scan)  # what came meanwhile waits a little
