"""Backing-service chaos for a session: the proxies, the seeded faults, the verdicts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from procrun.backing import faults, verdicts
from procrun.backing.faults import Fault
from procrun.backing.proxy import Proxy
from procrun.backing.urls import Backing, Skipped, judge, rewrite, shown
from procrun.project.plan import type_of
from procrun.supervise.session import Service

if TYPE_CHECKING:
    from procrun.supervise.shared import Shared
    from procrun.supervise.session import Session

GRACE = 3.0  # seconds after a fault ends (or begins, for crashes) before it is judged


def proxies_for(proxied: list[Backing]) -> dict[str, Proxy]:
    """A proxy per service, its shared port bound now (before the instances are made: each gets
    a port of its own through ``instance_env``)."""
    return {b.label: Proxy(b) for b in proxied}


def instance_env(proxies: Mapping[str, Proxy], instance: str, own: Iterable[str] = ()) -> dict[str, str]:
    """The proxied URLs ``instance`` is given: each through its own port (the owner of every
    connection is known when it is accepted). The app keeps the URL's credentials. Its type's
    own variables (``own``: procrun.yaml env, env_file) win over .env's, proxied or not."""
    scope, own = type_of(instance), set(own)
    return {p.backing.var: rewrite(p.backing.url, p.listen(instance)) for p in proxies.values()
            if p.backing.scope == scope or (not p.backing.scope and p.backing.var not in own)}


class BackingService(Service):
    kind = "backing"

    def __init__(self, session: Session, shared: Shared, proxies: dict[str, Proxy], skipped: list[Skipped],
                 seed: int, interval: float, scheduled: bool, routed_type: str | None,
                 own_ports: frozenset[int] = frozenset(),
                 kinds: Mapping[str, Mapping[str, str]] | None = None) -> None:
        super().__init__(session)
        self.shared = shared
        # streams of its own: the same seed replays the same process chaos with or without it, and
        # the same backing faults whatever traffic draws jitter and slices meanwhile
        self.rng = random.Random(f"backing-{seed}")
        data = random.Random(f"backing-data-{seed}")
        self.interval, self.scheduled, self.routed_type = interval, scheduled, routed_type
        # what the schedule draws from, each with what it fixes (procrun.yaml chaos.backing_faults)
        self.kinds = kinds if kinds is not None else faults.chosen(())
        self.proxies = proxies
        for proxy in proxies.values():
            proxy.rng = data
        self.skipped = skipped
        self.verdicts: list[verdicts.Verdict] = []
        self.scheduled_count = self.skipped_count = 0  # faults the schedule drew, and those skipped
        self.own_ports = own_ports  # this session's own ports: never proxied
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        session = self.session
        for proxy in self.proxies.values():
            try:
                await proxy.start()
            except OSError as exc:
                from procrun.errors import SessionError
                raise SessionError(f"cannot proxy {proxy.backing.label}: port {proxy.port}: {exc.strerror}") from None
            session.say(f"{proxy.backing.label} {shown(proxy.backing.url)} through 127.0.0.1:{proxy.port} "
                        "(each instance through a port of its own)", "backing")
        for s in self.skipped:
            session.say(f"{s.var} not proxied: {s.reason}", "backing")
        session.report.backing_map = self.mapping()
        if self.scheduled and self.proxies and self.kinds:
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

    def retarget(self, dotenv: Mapping[str, str]) -> None:
        """.env changed (--watch): a proxied URL that changed is followed. The proxy, on the same
        ports, forwards new connections to the new service; one that is no longer proxiable is
        left to the app as written (the instances restarted after get .env's value)."""
        for var, proxy in list(self.proxies.items()):
            if proxy.backing.scope:  # a type's own: restart procrun to follow it
                continue
            new = dotenv.get(var)
            if new is None or new == proxy.backing.url:
                continue
            backing, reason = judge(var, new, set(self.own_ports))
            if backing is None:
                self.session.say(f"{var} changed to {shown(new)}: not proxied any more ({reason})", "backing")
                del self.proxies[var]
                self._spawn(proxy.close())
                continue
            proxy.backing = backing
            self.session.say(f"{var} now {shown(new)} through 127.0.0.1:{proxy.port}", "backing")
        self.session.report.backing_map = self.mapping()

    def mapping(self) -> list[dict[str, object]]:
        return ([{"var": p.backing.label, "url": shown(p.backing.url), "proxy": f"127.0.0.1:{p.port}",
                  "instances": {o: port for o, port in p.ports.items() if o is not None}}
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
            chaos = self.session.chaos
            if self.session.machine.ending is not None or not self.proxies or (chaos is not None and not chaos.enabled):
                return  # (`procrun chaos off` pauses backing faults too)
            name, fault = faults.draw(self.rng, sorted(self.proxies), self.kinds)
            self.scheduled_count += 1
            self.session.report.backing_counts = self.counts()
            current = self.proxies[name].fault
            if current is not None:
                self.skipped_count += 1
                self.session.say(f"{fault.kind} {name} skipped: it is under a {current.kind} fault", "chaos")
                self.session.journal.event("skip", {"n": name, "action": fault.kind, "during": current.kind})
                return
            self.now(name, fault)
        finally:
            self._arm()  # after the draw, as before: a seed replays the same faults

    def counts(self) -> dict[str, int]:
        return {"scheduled": self.scheduled_count, "fired": self.scheduled_count - self.skipped_count,
                "skipped": self.skipped_count}

    def now(self, name: str, fault: Fault) -> None:
        """Begin a fault at once (the schedule, or `procrun chaos now --backing NAME --action A`)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ValueError(f"no proxied backing service {name!r}; proxied: {', '.join(self.proxies) or 'none'}")
        if proxy.fault is not None:
            raise ValueError(f"{name} is already under a {proxy.fault.kind} fault")
        self.session.say(fault.describe(name), "chaos")
        self.session.journal.event("fault", {"n": name, **fault.record()})
        self._spawn(self._run(proxy, fault))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, proxy: Proxy, fault: Fault) -> None:
        start, wall = time.monotonic(), time.time()
        users = self._users(proxy)
        await proxy.begin(fault)
        if fault.seconds:
            await asyncio.sleep(fault.seconds)
        await self._end(proxy)
        if fault.seconds:
            self.session.say(f"{proxy.backing.label} back to normal after {fault.kind}", "chaos")
        end, ended_wall = time.monotonic(), time.time()
        judged = verdicts.Fault(proxy.backing.label, fault.kind, start, end, users, wall)
        try:
            await asyncio.sleep(GRACE)
        except asyncio.CancelledError:  # the session stops within the grace: a crash already seen is judged
            seen = self._seen(proxy, judged, ended_wall)
            self._judged([v for v in verdicts.judge(judged, seen) if v.verdict == "crashed"])
            raise
        self._judged(verdicts.judge(judged, self._seen(proxy, judged, ended_wall)))

    async def _end(self, proxy: Proxy) -> None:
        """End a fault; a port taken meanwhile by another socket is retried, said once."""
        await proxy.end_when_free(lambda exc: self.session.say(
            f"{proxy.backing.label}: cannot listen on 127.0.0.1 again ({exc.strerror}); "
            "retrying until its ports are free", "backing"))

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
                routed=routed,
                churned=sum(1 for link in links if fault.start < link.opened <= fault.end),
                during=self._during(instance, fault))
        return seen

    def _during(self, instance: str, fault: verdicts.Fault) -> bool | None:
        """Behind the router: did its requests fail or slow down while the fault lasted (None: none seen)."""
        return verdicts.worse(self.shared.history.get(instance, ()), fault.wall, fault.wall + fault.end - fault.start)

    def _judged(self, found: list[verdicts.Verdict]) -> None:
        self.verdicts += found
        for v in found:
            self.session.say(f"{v.instance} {v.verdict} after {v.action} of {v.var}", "backing")
            self.session.journal.event("verdict", {"n": v.instance, "var": v.var, "action": v.action,
                                                   "verdict": v.verdict})
        self.session.report.backing = verdicts.summary(self.verdicts)
