"""The effect layer: one asyncio loop carrying out the Machine's actions.

Signals, child exits, pipe data and timers arrive as loop callbacks; each is
turned into a Machine input, and the actions that come back are executed here
and nowhere else. Signal handlers only feed the machine; they never print or
block. Output goes through ``relay``, the guardian and fresh directories are
objects of their own; the session's life (launch, run, the loop's callbacks) is
``lifecycle``'s.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from procrun.journal.store import OFF, Journal
from procrun.project.plan import AUTO_PORT, Instance, with_port
from procrun.supervise import process
from procrun.supervise.guardian import MARKER_VAR, Guardian
from procrun.supervise.lifecycle import Early, LifecycleMixin
from procrun.supervise.machine import Action, Finish, Kill, Machine, Say, Spawn, Sweep
from procrun.supervise.output import SYSTEM, Prefixer, colour_for, render
from procrun.supervise.probe import Checks
from procrun.supervise.relay import Relay, Writer

if TYPE_CHECKING:
    import asyncio

    from procrun.fresh.inspect import FreshDirs
    from procrun.diagnose.report import Report
    from procrun.chaos.service import ChaosService
    from procrun.fresh.workdir import Workdirs
    from procrun.supervise.probe import Probes
    from procrun.supervise.reaper import Stragglers
    from procrun.supervise.relay import Relays

class Service:
    """Something that runs beside the processes for a session's life (control socket, ...)."""

    kind = ""  # how others find it without importing its module ("backing")

    async def start(self, session: Session) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def restarted(self, names: Iterable[str]) -> None:
        """Instances restarted on request (procrun restart); most services ignore it."""


class Session(LifecycleMixin):
    """Runs a Machine against real processes until it finishes; returns the exit code."""

    def __init__(self, machine: Machine, prefixer: Prefixer, writer: Writer, cwd: str,
                 quiet: frozenset[str] = frozenset(), clock: Callable[[], float] = time.monotonic,
                 checks: Checks = Checks(), workdirs: Workdirs | None = None, fresh_all: bool = False,
                 report: Report | None = None, effects: process.Effects | None = None) -> None:
        self.machine, self.prefixer, self.writer, self.cwd = machine, prefixer, writer, cwd
        self.quiet, self.clock, self.checks = quiet, clock, checks
        self.workdirs, self.fresh_all = workdirs, fresh_all
        self.effects = effects or process.real_effects()
        self._report = report
        self.services: list[Service] = []
        self.chaos: ChaosService | None = None  # set by the composition root
        self.marker = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.children: dict[int, process.Child] = {}
        self.colours: dict[str, str] = {}
        self.code: int | None = None
        self.output_error: OSError | None = None
        self.generation = 0  # counts apply() calls: readers cache what they derive from the Machine
        self.in_flight: dict[str, str] = {}  # instance -> the request it is serving ("POST /upload"), from the router
        self.guardian: Guardian | None = None
        self.journal: Journal = OFF  # set by the composition root
        self.ttys: frozenset[str] = frozenset()  # types run on a pseudo-terminal
        self.taps: dict[str, Callable[[bytes], None]] = {}  # attached clients by instance (chaos spares them)
        self.rates: dict[str, dict[str, object]] = {}  # the router's last second per instance (procrun top)
        self.fresh: FreshDirs | None = None  # made with the first fresh directory
        self.launched = False
        self.early: Early | None = None  # what waits for the loop, when launched before it
        self.relays: Relays = None  # type: ignore[assignment]  # this and the four below: made with the loop
        self._timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[int] = None  # type: ignore[assignment]
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.probes: Probes = None  # type: ignore[assignment]  # made with the loop
        self.stragglers: Stragglers = None  # type: ignore[assignment]

    @property
    def report(self) -> Report:
        """What the session found (chaos events, findings, timings); made on first use, after
        the launch in a plain session (start-up time)."""
        if self._report is None:
            from procrun.diagnose.report import Report

            self._report = Report()
        return self._report

    # -- actions
    def apply(self, actions: list[Action]) -> None:
        """Carry out what the Machine decided. Every event source (signals, control socket,
        chaos, watch) calls the Machine and hands its actions here."""
        for action in actions:
            if self.early is not None and isinstance(action, (Sweep, Finish)):
                self.early.actions.append(action)  # the loop carries these out
            elif isinstance(action, Spawn):
                self._spawn(action.instance, action.fresh)
            elif isinstance(action, Kill):
                self.effects.signal_group(action.pid, action.sig)
            elif isinstance(action, Sweep):
                self.stragglers.signal(action.sig)
            elif isinstance(action, Say):
                self.say(action.text, action.source)
            elif isinstance(action, Finish):
                self.code = action.code
                self.stragglers.finish(self._finished)
        self._arm_timer()
        self.generation += 1

    def say(self, text: str, source: str = SYSTEM) -> None:
        if source != SYSTEM:
            self.prefixer.style.widen([source])
        self.emit(source, None, [text.encode()])

    def emit(self, name: str, colour: str | None, lines: list[bytes]) -> None:
        self.writer.write(render(self.prefixer.prefix(name, colour), lines), len(lines))
        self.journal.output(name, lines)

    def _spawn(self, inst: Instance, fresh: bool = False) -> None:
        inst = _placed(self.machine, inst)
        env = {**inst.env, MARKER_VAR: self.marker}
        self.prefixer.style.widen([inst.name])
        now, workdir = self.clock(), None
        try:
            if (fresh or self.fresh_all) and self.workdirs is not None:
                workdir = self._fresh_dirs().make(inst.name)
                env["TMPDIR"] = workdir.tmp
            child = self.effects.spawn(inst.command, env, workdir.path if workdir else self.cwd, inst.type in self.ttys)
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            if workdir is not None:
                self._fresh_dirs().discard(workdir)
            self.apply(self.machine.spawn_failed(inst.name, getattr(exc, "strerror", None) or str(exc), now))
            return
        if workdir is not None:
            self._fresh_dirs().started(child.pid, inst.name, workdir)
        self.children[child.pid] = child
        colour = self.colours.setdefault(inst.name, colour_for(len(self.colours)))
        relay = Relay(inst.name, child.fd, colour, inst.type in self.quiet, tty=child.tty, taps=self.taps)
        probing = inst.type in self.checks.probe_types and inst.port is not None
        self.journal.event("start", {"n": inst.name, "pid": child.pid, "fresh": workdir is not None})
        self.apply(self.machine.spawned(inst.name, child.pid, now, probing=probing))
        probe = (inst.name, child.pid, inst.port) if probing else None
        if self.early is not None:
            self.early.relays.append(relay)
            self.early.probes.extend([probe] if probe else [])
            return
        self.relays.add(relay)
        if probe:
            self.probes.start(*probe)  # type: ignore[arg-type]

    def _fresh_dirs(self) -> FreshDirs:
        if self.fresh is None:
            from procrun.fresh.inspect import FreshDirs

            assert self.workdirs is not None
            self.fresh = FreshDirs.watched(self.workdirs, self.report, self.say, self.clock, self.guardian,
                                           self.checks.allow, self.in_flight)
            if self._loop is not None:
                self.fresh.attach(self._loop)
        return self.fresh

    def _ready(self, name: str, pid: int) -> None:
        self.apply(self.machine.became_ready(name, pid, self.clock()))
        proc = self.machine.get(name)
        if proc is not None and proc.pid == pid and proc.ready_after is not None:
            self.report.record("ready", proc.type, proc.ready_after)
            self.journal.event("ready", {"n": name, "after": round(proc.ready_after, 4)})

    # -- callbacks
    def children_exited(self) -> None:
        """SIGCHLD: reap every exited child, relay its last output, tell the Machine."""
        for pid, returncode in self.effects.reap():
            child = self.children.pop(pid, None)
            if child is None:
                continue  # a reparented orphan
            child.exited(returncode)
            self.relays.pump_fd(child.fd)  # print what it wrote before saying it stopped
            if self.fresh is not None:
                self.fresh.stopped(pid)  # report before a successor starts
            name = self.machine.name_of(pid)
            proc = self.machine.get(name) if name is not None else None
            stopping = proc is not None and proc.stop_requested is not None
            self.journal.event("exit", {"n": name, "pid": pid, "code": returncode, "asked": stopping})
            self.apply(self.machine.exited(pid, returncode, self.clock()))
            proc = self.machine.get(name) if name is not None else None
            if stopping and proc is not None and proc.stop_after is not None:
                self.report.record("stopped", proc.instance.type, proc.stop_after)



def _placed(machine: Machine, inst: Instance) -> Instance:
    """An instance whose port the session picks gets a free one, kept across its restarts
    (port allocation is I/O: the Machine only records the result)."""
    if inst.port != AUTO_PORT:
        return inst
    inst = with_port(inst, process.free_port())
    machine.redefine(inst.name, inst)
    return inst
