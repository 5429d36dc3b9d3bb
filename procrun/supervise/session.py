"""The effect layer: one asyncio loop carrying out the Machine's actions.

Signals, child exits, pipe data and timers arrive as loop callbacks; each is
turned into a Machine input, and the actions that come back are executed here
and nowhere else. Signal handlers only feed the machine; they never print or
block. Output goes through ``relay``, the guardian and fresh directories are
objects of their own; what only a stage of the session's life can do (before
its loop exists, or on it) is its stage's, ``lifecycle.Early`` or ``OnLoop``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from procrun.journal.store import OFF, Journal
from procrun.project.plan import AUTO_PORT, RELEASE_TYPE, Instance, with_port
from procrun.supervise import process
from procrun.supervise.guardian import MARKER_VAR, Guardian
from procrun.supervise.lifecycle import Early, OnLoop
from procrun.supervise.machine import Action, Finish, Kill, Machine, Say, Spawn, Sweep
from procrun.supervise.output import SYSTEM, Prefixer, colour_for, render
from procrun.supervise.probe import Checks
from procrun.supervise.relay import Relay, Writer
from procrun.supervise.shared import Shared
from procrun.supervise.states import State

if TYPE_CHECKING:
    from procrun.chaos.service import ChaosService
    from procrun.diagnose.findings import Findings
    from procrun.diagnose.report import Report
    from procrun.fresh.inspect import FreshDirs
    from procrun.fresh.workdir import Workdir, Workdirs


class Service:
    """Something that runs beside the processes for a session's life (control socket, ...).
    Made with the session it serves, and the shared channels it uses (``Shared``)."""

    kind = ""  # how others find it without importing its module ("backing")

    def __init__(self, session: Session) -> None:
        self.session = session

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def restarted(self, names: Iterable[str]) -> None:
        """Instances restarted on request (procrun restart); most services ignore it."""


class Session:
    """Runs a Machine against real processes until it finishes; returns the exit code."""

    def __init__(self, machine: Machine, prefixer: Prefixer, writer: Writer, cwd: str,
                 quiet: frozenset[str] = frozenset(), clock: Callable[[], float] = time.monotonic,
                 checks: Checks = Checks(), workdirs: Workdirs | None = None, fresh_all: bool = False,
                 report: Report | None = None, effects: process.Effects | None = None,
                 shared: Shared | None = None) -> None:
        self.machine, self.prefixer, self.writer, self.cwd = machine, prefixer, writer, cwd
        self.quiet, self.clock, self.checks, self.workdirs, self.fresh_all = quiet, clock, checks, workdirs, fresh_all
        self.effects = effects or process.real_effects()
        self.shared = shared or Shared()  # the channels the relays (taps) and fresh directories (in_flight) use
        self._report = report
        self._findings: Findings | None = None
        self.services: list[Service] = []
        self.chaos: ChaosService | None = None  # set by the composition root
        self.marker = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.children: dict[int, process.Child] = {}
        self.colours: dict[str, str] = {}
        self.code: int | None = None
        self.output_error: OSError | None = None
        self.generation = 0  # counts apply() calls: readers cache what they derive from the Machine
        self.guardian: Guardian | None = None
        self.journal: Journal = OFF  # set by the composition root
        self.ttys: frozenset[str] = frozenset()  # types run on a pseudo-terminal
        self.own_tmp = False  # each instance gets its own TMPDIR even without a fresh directory (the router)
        self.fresh: FreshDirs | None = None  # made with the first fresh directory
        self.launched = False
        self.stage: Early | OnLoop | None = None  # before the loop, or on it

    @property
    def report(self) -> Report:
        """What the session found; made on first use, after the launch in a plain session (start-up)."""
        if self._report is None:
            from procrun.diagnose.report import Report

            self._report = Report()
        return self._report

    @property
    def findings(self) -> Findings:
        """The one sink every detector's findings go through; made on first use."""
        if self._findings is None:
            from procrun.diagnose.findings import Findings

            live = lambda: self.fresh.writes.written if self.fresh and self.fresh.writes else None  # noqa: E731
            self._findings = Findings(self.report, live, self.checks.allow, self.say)
        return self._findings

    # -- life
    def launch(self) -> None:
        """The guardian and the first formation. Called before run() (and before asyncio is
        imported), processes start as soon as the plan is known; their output waits in its
        pipes, and exits and signals are kept, until run() hands them to the loop."""
        if self.stage is None:
            self.stage = Early()
        if self.effects.guardian:
            self.guardian = Guardian(self.marker, self.workdirs is not None and self.workdirs.keep)
        self.launched = True
        with self.writer.hold():
            self.apply(self.machine.start(self.clock()))

    async def run(self) -> int:
        early = self.stage
        self.stage = stage = OnLoop(self)
        if isinstance(early, Early):
            early.hand_over(self, stage)
        started: list[Service] = []
        try:
            try:
                for service in self.services:
                    await service.start()
                    started.append(service)
            except Exception:
                if self.launched:  # what was launched stops as a shutdown would, then the error is said
                    self.apply(self.machine.shutdown(1, self.clock(), "the session cannot start; stopping"))
                    await stage.done
                raise
            stage.probes.release()
            if not self.launched:
                self.launch()
            return await stage.done
        finally:
            for service in reversed(started):
                await service.close()
            stage.close()
            if self.fresh is not None:
                self.fresh.close()
            if self.guardian is not None:
                self.guardian.release()

    # -- actions
    def apply(self, actions: list[Action]) -> None:
        """Carry out what the Machine decided. Every event source (signals, control socket,
        chaos, watch) calls the Machine and hands its actions here."""
        stage = self.stage
        assert stage is not None, "launch() or run() first"
        for action in actions:
            if isinstance(action, Spawn):
                self._spawn(action.instance, action.fresh)
            elif isinstance(action, Kill):
                self.effects.signal_group(action.pid, action.sig)
            elif isinstance(action, Sweep):
                stage.sweep(action.sig)
            elif isinstance(action, Say):
                self.say(action.text, action.source)
            elif isinstance(action, Finish):
                stage.finish(action.code)
        stage.arm(self.machine.next_deadline())
        self.generation += 1

    def say(self, text: str, source: str = SYSTEM) -> None:
        if source != SYSTEM:
            self.prefixer.style.widen([source])
        self.emit(source, None, [text.encode("utf-8", "surrogateescape")])  # a path that is not UTF-8, as it is

    def emit(self, name: str, colour: str | None, lines: list[bytes]) -> None:
        self.writer.write(render(self.prefixer.prefix(name, colour), lines), len(lines))
        self.journal.output(name, lines)

    def _spawn(self, inst: Instance, fresh: bool = False) -> None:
        """Start an instance; one in a fresh directory starts once the directory is made (off the
        loop: a large app never stalls the session), unless it was stopped meanwhile."""
        inst = _placed(self.machine, inst)
        fresh_copy = fresh or self.fresh_all or inst.type == RELEASE_TYPE  # release: a directory thrown away after
        if self.workdirs is None or not (fresh_copy or self.own_tmp):
            self._spawn_in(inst, None)
        else:
            self._fresh_dirs().place(inst.name, fresh_copy, fresh, lambda at: self._spawn_in(inst, at))

    def _spawn_in(self, inst: Instance, where: Workdir | OSError | str | None) -> None:
        """Spawn in the app root, in a fresh directory, or in the app root with a TMPDIR (a str)."""
        now, proc = self.clock(), self.machine.get(inst.name)
        if isinstance(where, OSError):
            self.apply(self.machine.spawn_failed(inst.name, where.strerror or str(where), now))
            return
        workdir, tmp = (None, where) if isinstance(where, str) else (where, where.tmp if where else None)
        if workdir is not None and (proc is None or proc.state is not State.STARTING or proc.pid is not None):
            self._fresh_dirs().discard(workdir)  # stopped, removed or started while its directory was made
            return
        env = {**inst.env, MARKER_VAR: self.marker, **({"TMPDIR": tmp} if tmp else {})}
        self.prefixer.style.widen([inst.name])
        probing = self.checks.ready_probe(inst.type, inst.port) is not None
        taken = self.effects.port_taken(inst.port) if self.checks.on_port(inst.type, inst.port) \
            and inst.name not in self.shared.releases else None  # type: ignore[arg-type]
        # (first starts only: a previous process's socket may linger a moment after its exit)
        try:
            cwd, wrap = _where(self.cwd, workdir, inst.cwd)
            child = self.effects.spawn(inst.command, env, cwd, inst.type in self.ttys, wrap=wrap)
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            if workdir is not None:
                self._fresh_dirs().discard(workdir)
            self.apply(self.machine.spawn_failed(inst.name, getattr(exc, "strerror", None) or str(exc), now))
            return
        if workdir is not None:
            self._fresh_dirs().started(child.pid, inst.name, workdir)
        self.children[child.pid] = child
        self.shared.releases[inst.name] = self.shared.release
        colour = self.colours.setdefault(inst.name, colour_for(len(self.colours)))
        self.stage.relay(Relay(inst.name, child.fd, colour, inst.type in self.quiet, tty=child.tty,  # type: ignore[union-attr]
                               taps=self.shared.taps))
        self.journal.event("start", {"n": inst.name, "pid": child.pid, "fresh": workdir is not None})
        self.apply(self.machine.spawned(inst.name, child.pid, now, probing=probing))
        if probing or inst.type in self.checks.health:
            self.stage.probe(inst.name, child.pid, inst.port, taken)  # type: ignore[union-attr]

    def _fresh_dirs(self) -> FreshDirs:
        if self.fresh is None:
            from procrun.fresh.inspect import FreshDirs

            self.fresh = FreshDirs.of(self)
            self.stage.attach_fresh(self.fresh)  # type: ignore[union-attr]
        return self.fresh

    # -- callbacks
    def children_exited(self) -> None:
        """SIGCHLD: reap every exited child, relay its last output, tell the Machine."""
        for pid, returncode in self.effects.reap():
            child = self.children.pop(pid, None)
            if child is None:  # a probe's command, or a reparented orphan
                if isinstance(self.stage, OnLoop):
                    self.stage.probes.commands.exited(pid, returncode)
                continue
            child.exited(returncode)
            if isinstance(self.stage, OnLoop):
                self.stage.relays.pump_fd(child.fd)  # print what it wrote before saying it stopped
            if self.fresh is not None:
                self.fresh.stopped(pid)  # report before a successor starts
            name = self.machine.name_of(pid)
            proc = self.machine.get(name) if name is not None else None
            stopping = proc is not None and proc.stop_requested is not None
            self.journal.event("exit", {"n": name, "pid": pid, "code": returncode, "asked": stopping})
            self.apply(self.machine.exited(pid, returncode, self.clock()))
            for listener in self.shared.exited:
                listener(name)  # type: ignore[arg-type]
            proc = self.machine.get(name) if name is not None else None
            if stopping and proc is not None and proc.stop_after is not None:
                self.report.record("stopped", proc.instance.type, proc.stop_after)


def _where(root: str, workdir: Workdir | None, folder: str) -> tuple[str, tuple[str, ...]]:
    """The working directory and the argv prefix an instance is spawned with: its folder of the
    app root (types.T.cwd), or of its fresh copy (a copy-on-write view enters it once mounted)."""
    if workdir is None:
        return os.path.join(root, folder), ()
    if workdir.wrap:
        return workdir.path, (*workdir.wrap, f"--cd={folder}") if folder else workdir.wrap
    return os.path.join(workdir.path, folder), ()


def _placed(machine: Machine, inst: Instance) -> Instance:
    """An instance whose port the session picks gets a free one, kept across its restarts
    (port allocation is I/O: the Machine only records the result)."""
    if inst.port != AUTO_PORT:
        return inst
    inst = with_port(inst, process.free_port())
    machine.redefine(inst.name, inst)
    return inst
