"""Readiness and liveness probes: what each type checks (``Checks``) and the tasks that check
it (``Probes``); one try of each kind is ``procrun.supervise.tries``'s."""

from __future__ import annotations

import os
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from procrun.project.plan import ROUTED_TYPE, type_of
from procrun.project.probes import PORT, SPAWN, Probe
from procrun.supervise.guardian import MARKER_VAR
from procrun.supervise.order import BOOT_TIMEOUT
from procrun.supervise.states import State

if TYPE_CHECKING:
    import asyncio

    from procrun.project.settings import Settings
    from procrun.supervise.session import Session


class Checks(NamedTuple):
    """What a session checks its instances for: readiness (a probe per type: web's port unless
    procrun.yaml says otherwise; a type without one is ready once spawned), liveness (``health``,
    only where configured), a boot timeout per type (default 60 s), and the findings procrun.yaml
    accepts (``allow``)."""

    readiness: Mapping[str, Probe] = MappingProxyType({ROUTED_TYPE: PORT})
    health: Mapping[str, Probe] = MappingProxyType({})
    boot_timeouts: Mapping[str, float] = MappingProxyType({})
    allow: tuple[str, ...] = ()

    def boot_timeout(self, name: str) -> float:
        return self.boot_timeouts.get(type_of(name), BOOT_TIMEOUT)

    def on_port(self, type_name: str, port: int | None) -> bool:
        """Its readiness is judged on its port (port or http probe)."""
        probe = self.ready_probe(type_name, port)
        return probe is not None and probe.kind in ("port", "http")

    def ready_probe(self, type_name: str, port: int | None) -> Probe | None:
        """The probe an instance's readiness waits for (None: ready once spawned); port and http
        need its port."""
        probe = self.readiness.get(type_name)
        return None if probe is None or (probe.kind in ("port", "http") and port is None) else probe

    @classmethod
    def of(cls, settings: Settings, types: tuple[str, ...]) -> Checks:
        per_type = settings.type_settings
        ready = {t: per_type[t].ready if t in per_type and per_type[t].ready else PORT if t == ROUTED_TYPE else SPAWN
                 for t in types}
        return cls({t: p for t, p in ready.items() if p.kind != "spawn"},
                   {t: c.health for t, c in per_type.items() if c.health},
                   {t: c.boot_timeout for t, c in per_type.items() if c.boot_timeout}, settings.allow)


LOOK_AFTER = 1.0  # seconds without an answer on $PORT before looking at what the instance listens on
LOOK_EVERY = 2.0


class Probes:
    """Readiness: one task per starting instance that has a probe, trying it with a backoff up to
    the probe's interval until it passes (or the process ends). Liveness: one task per ready
    instance of a type with ``health``, trying it every interval; ``failures`` in a row restart
    it. Nothing runs for a type without probes (an idle session makes no wakeups).

    A port probe on an instance that listens elsewhere names it (port binding); an instance not
    ready within its boot timeout gets a warning instead of staying 'starting' silently. Health
    spares an instance that is paused (chaos), stopped or held by a debugger, or attached."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: Session) -> None:
        from procrun.supervise.tries import Commands, LogLines

        self.loop, self.session, self.checks = loop, session, session.checks
        self.tasks: set[asyncio.Task[None]] = set()
        self.commands = Commands(loop)  # exec probes' processes, reaped by the session
        self.logs = LogLines(session.shared.watchers)
        self._held: list[tuple[str, int, int | None, Probe, bool]] | None = []  # until release(): services are up

    def alive(self, pid: int) -> bool:
        return pid in self.session.children

    def release(self) -> None:
        """Probe from now on: the session's services are up, so the router listens before any
        web instance is said to be ready."""
        held, self._held = self._held or [], None
        for name, pid, port, probe, taken in held:
            self._launch(self._ready(name, pid, port, probe, taken))

    def start(self, name: str, pid: int, port: int | None, taken: str | None = None) -> None:
        """Probe a spawned instance's readiness (one ready at spawn: its health from now on);
        ``taken``: who already listened on its port."""
        if taken is not None:  # said at once: the instance will most likely fail to bind it
            self.session.say(f"{name}: port {port} is in use by {taken}; pick another base port with -p", "warning")
        probe = self.checks.ready_probe(type_of(name), port)
        if probe is None:
            self.became_ready(name, pid)
            return
        if probe.kind == "log":  # its lines are matched from the first one on
            self.logs.follow(name, probe.target)
        if self._held is not None:
            self._held.append((name, pid, port, probe, taken is not None))
        else:
            self._launch(self._ready(name, pid, port, probe, taken is not None))

    def ready(self, name: str, pid: int, how: str = "") -> None:
        """Its readiness probe passed (``how``: which, unless the port answered): the Machine is told,
        the time recorded, and its liveness starts."""
        s = self.session
        s.apply(s.machine.became_ready(name, pid, s.clock(), how))
        proc = s.machine.get(name)
        if proc is not None and proc.pid == pid and proc.ready_after is not None:
            s.report.record("ready", proc.type, proc.ready_after)
            s.journal.event("ready", {"n": name, "after": round(proc.ready_after, 4)})
            self.became_ready(name, pid)

    def became_ready(self, name: str, pid: int) -> None:
        """Liveness starts once an instance is ready (where its type has a health probe)."""
        probe = self.checks.health.get(type_of(name))
        if probe is not None:
            self._launch(self._health(name, pid, probe))

    def _launch(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _ready(self, name: str, pid: int, port: int | None, probe: Probe, taken: bool) -> None:
        """Until its probe passes; a port another process held at spawn counts only once the
        instance itself listens on it (its answer was the other process's)."""
        import asyncio  # here, not at the top: a session launches its processes before it imports asyncio

        delay, started, looked, told, warned = 0.01, self.loop.time(), 0.0, False, False
        timeout = self.checks.boot_timeout(name)
        try:
            while self.alive(pid):
                passed = port in self.session.effects.listening(pid) if taken else \
                    await self.attempt(probe, name, pid) is None
                if passed:
                    self.ready(name, pid, "" if probe.kind == "port" else f"({probe.describe()} passed)")
                    return
                waited = self.loop.time() - started
                look = not looked or waited - looked >= LOOK_EVERY
                if probe.kind == "port" and not told and waited >= LOOK_AFTER and look:
                    looked, told = waited, self._elsewhere(name, pid, port)  # type: ignore[arg-type]
                if not warned and not told and waited >= timeout:
                    self.silent(name, probe, timeout)
                    warned = True
                await asyncio.sleep(delay)
                delay = min(probe.interval, delay * 2)
        finally:
            if probe.kind == "log":
                self.logs.forget(name)

    async def _health(self, name: str, pid: int, probe: Probe) -> None:
        """Every interval while it lives; ``failures`` in a row tell the Machine it is unhealthy."""
        import asyncio

        failures, why = 0, ""
        if probe.kind == "log":
            self.logs.follow(name, probe.target)
        try:
            while self.alive(pid):
                seen = self.logs.seen.get(name, 0)
                await asyncio.sleep(probe.interval)
                if not self.alive(pid) or self.spared(name, pid):
                    failures = 0
                    continue
                why = await self.attempt(probe, name, pid, seen) or ""
                failures = failures + 1 if why else 0
                if failures >= probe.failures:
                    s = self.session
                    s.apply(s.machine.unhealthy(name, pid, s.clock(), f"{probe.describe()} failed {failures} "
                                                f"time{'s' * (failures != 1)} in a row (last: {why})"))
                    return
        finally:
            if probe.kind == "log":
                self.logs.forget(name)

    def spared(self, name: str, pid: int) -> bool:
        """Not judged now: paused by chaos, stopped or held by a debugger, or a client attached."""
        proc = self.session.machine.get(name)
        return proc is None or proc.state is not State.RUNNING or name in self.session.shared.taps \
            or self.session.effects.halted(pid)

    async def attempt(self, probe: Probe, name: str, pid: int, seen: int = 0) -> str | None:
        """One try: None when it passed, else what failed."""
        from procrun.supervise import tries

        proc = self.session.machine.get(name)
        if proc is None or proc.pid != pid:
            return "the instance is gone"
        inst = proc.instance
        if probe.kind == "port":
            return await tries.port(inst.port, probe.timeout)  # type: ignore[arg-type]
        if probe.kind == "http":
            return await tries.http(inst.port, probe)  # type: ignore[arg-type]
        if probe.kind == "exec":
            env = {**inst.env, MARKER_VAR: self.session.marker}  # the guardian's to kill if procrun dies
            return await self.commands.run(probe, env, os.path.join(self.session.cwd, inst.cwd))
        return None if self.logs.seen.get(name, 0) > seen else f"no line matched within {probe.interval:g}s"

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def _elsewhere(self, name: str, pid: int, port: int) -> bool:
        """It listens, but not on $PORT: a finding (port binding)."""
        ports = self.session.effects.listening(pid)
        if ports and port not in ports:
            self.session.findings.ports(name, port, ports)
            return True
        return False

    def silent(self, name: str, probe: Probe, timeout: float) -> None:
        what = "has bound no port" if probe.kind == "port" else f"has not passed its ready probe ({probe.describe()})"
        until = "listens on $PORT" if probe.kind == "port" else "it passes"
        self.session.say(f"{name} {what} {timeout:g}s after it started; it stays 'starting' until {until} "
                         "(boot_timeout in procrun.yaml types.TYPE)", "warning")
