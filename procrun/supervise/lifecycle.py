"""A session's life: launched, run on the loop with its services, closed; the loop's callbacks.

The first formation may be launched before the loop exists, even before asyncio is imported
(the composition root does so: processes start sooner). ``Early`` keeps what comes in
between, the signals, exits, relays, probes and end-of-session actions, until ``run`` hands
it to the loop. Mixed into ``Session``, which owns the processes and carries out actions.
"""

from __future__ import annotations

import errno
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.supervise.guardian import Guardian
from procrun.supervise.machine import Action, Machine
from procrun.supervise.relay import Relay, Writer, call_soon

if TYPE_CHECKING:
    import asyncio

    from procrun.fresh.inspect import FreshDirs
    from procrun.fresh.workdir import Workdirs
    from procrun.supervise.probe import Checks, Probes
    from procrun.supervise.process import Child, Effects
    from procrun.supervise.reaper import Stragglers
    from procrun.supervise.relay import Relays
    from procrun.supervise.session import Service, Session

SIGNAL_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)


class LifecycleMixin:
    machine: Machine
    writer: Writer
    effects: Effects
    checks: Checks
    clock: Callable[[], float]
    services: list[Service]
    children: dict[int, Child]
    workdirs: Workdirs | None
    fresh: FreshDirs | None
    guardian: Guardian | None
    marker: str
    code: int | None
    output_error: OSError | None
    launched: bool
    early: Early | None
    relays: Relays
    probes: Probes
    stragglers: Stragglers
    _timer: asyncio.TimerHandle | None
    _done: asyncio.Future[int]
    _loop: asyncio.AbstractEventLoop

    apply: Callable[[list[Action]], None]
    say: Callable[..., None]
    emit: Callable[..., None]
    children_exited: Callable[[], None]
    _ready: Callable[[str, int], None]

    # -- lifecycle
    def launch(self) -> None:
        """The guardian and the first formation. Called before run() (and before asyncio is
        imported), processes start as soon as the plan is known; their output waits in its
        pipes, and exits and signals are kept, until run() hands them to the loop."""
        if self.early is None and self._loop is None:
            self.early = Early()
        if self.effects.guardian:
            self.guardian = Guardian(self.marker, self.workdirs is not None and self.workdirs.keep)
        self.launched = True
        self.writer.hold()
        try:
            self.apply(self.machine.start(self.clock()))
        finally:
            self.writer.release()

    async def run(self) -> int:
        self._open()
        started: list[Service] = []
        try:
            try:
                for service in self.services:
                    await service.start(self)
                    started.append(service)
            except Exception:
                if self.launched:  # what was launched stops as a shutdown would, then the error is said
                    self.apply(self.machine.shutdown(1, self.clock(), "the session cannot start; stopping"))
                    await self._done
                raise
            self.probes.release()
            if not self.launched:
                self.launch()
            return await self._done
        finally:
            for service in reversed(started):
                await service.close()
            self._close()

    def _open(self) -> None:
        import asyncio

        from procrun.supervise.probe import Probes
        from procrun.supervise.reaper import Stragglers
        from procrun.supervise.relay import Relays

        self._loop = loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.relays = Relays(loop, self.writer, self.emit)
        self.probes = Probes(loop, lambda pid: pid in self.children, self._ready, self.say, self.report,
                             self.checks, self.effects.listening)
        self.stragglers = Stragglers(loop, self.machine, lambda: {c.pid for c in self.children.values()},
                                     lambda: self.guardian.pid if self.guardian else -1, self.clock,
                                     self.effects.descendants)
        for sig in HANDLED:
            loop.add_signal_handler(sig, self._on_signal, sig)
        _quiet_wakeup_fd()
        self.writer.on_error = lambda exc: call_soon(loop, self._on_output_failed, exc)
        if self.writer.error is not None:
            self._on_output_failed(self.writer.error)
        early, self.early = self.early, None
        if early is not None:
            early.hand_over(self, self._on_signal)  # type: ignore[arg-type]

    def _close(self) -> None:
        self.probes.close()
        for sig in HANDLED:
            self._loop.remove_signal_handler(sig)
        if self._timer:
            self._timer.cancel()
        self.relays.close()
        if self.fresh is not None:
            self.fresh.close()
        if self.guardian is not None:
            self.guardian.release()

    # -- callbacks
    def _on_signal(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            self.children_exited()
        elif self.machine.ending is None:
            self.apply(self.machine.shutdown(SIGNAL_CODES[sig], self.clock(), f"{signal.Signals(sig).name} received"))
        else:
            self.apply(self.machine.hurry(self.clock()))

    def _on_output_failed(self, exc: OSError) -> None:
        """procrun's output is gone: stop as SIGTERM would; a closed pipe quietly (exit 141, as in
        a shell pipeline), anything else (ENOSPC, EIO, EBADF) with one line on stderr (exit 1)."""
        if self.output_error is not None:
            return
        self.output_error = exc
        if self.machine.ending is None:
            code = 128 + signal.SIGPIPE if exc.errno == errno.EPIPE else 1
            self.apply(self.machine.shutdown(code, self.clock(), f"output failed: {exc.strerror}"))

    def _arm_timer(self) -> None:
        if self._timer:
            self._timer.cancel()
            self._timer = None
        when = self.machine.next_deadline()
        if when is not None and self._loop is not None:
            self._timer = self._loop.call_later(max(0.0, when - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.apply(self.machine.tick(self.clock()))

    def _finished(self) -> None:
        if not self._done.done():
            self._done.set_result(self.code if self.code is not None else 0)


def _quiet_wakeup_fd() -> None:
    """asyncio's signal wakeup socket fills up when hundreds of children exit at once;
    a full buffer loses nothing (a SIGCHLD reaps every exited child), so say nothing."""
    fd = signal.set_wakeup_fd(-1)
    if fd != -1:
        signal.set_wakeup_fd(fd, warn_on_full_buffer=False)


class Early:
    """A session's first moments, before its loop exists: the signals that came, the relays and
    probes waiting for the loop, and the end-of-session actions only the loop can carry out."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.relays: list[Relay] = []
        self.probes: list[tuple[str, int, int]] = []
        self.actions: list[Action] = []
        for sig in SIGNAL_CODES:  # the loop's handlers replace these; until then a signal is kept
            signal.signal(sig, lambda sig, frame: self.signals.append(sig))

    def hand_over(self, session: Session, on_signal: Callable[[int], None]) -> None:
        """The loop exists: attach what waited, reap what ended meanwhile, act on what came."""
        for relay in self.relays:
            session.relays.add(relay)
        for probe in self.probes:
            session.probes.start(*probe)
        if session.fresh is not None:
            session.fresh.attach(session.relays.loop)
        session.children_exited()
        session.apply(self.actions)
        for sig in self.signals:
            on_signal(sig)
