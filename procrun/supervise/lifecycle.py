"""Where a session is in its life, as an object the session hands what only that stage can do.

The first formation may be launched before the loop exists, even before asyncio is imported
(the composition root does so: processes start sooner). ``Early`` keeps what comes in
between, the signals, relays, probes and end-of-session actions; ``OnLoop`` is the session
on its asyncio loop (relays, probes, stragglers, the one timer, the signal handlers and the
end), and takes over what ``Early`` kept. Both answer the same calls (relay, probe, sweep,
finish, arm, attach_fresh), so the session carries out an action the same way at any stage.
"""

from __future__ import annotations

import errno
import signal
from typing import TYPE_CHECKING

from procrun.platform import stopping_signals
from procrun.supervise.machine import Action, Finish, Sweep
from procrun.supervise.relay import Relay, call_soon

if TYPE_CHECKING:
    import asyncio

    from procrun.fresh.inspect import FreshDirs
    from procrun.supervise.session import Session


STOPPING = stopping_signals()  # each stops the session as SIGTERM does, exit 128 + N
HANDLED = (*STOPPING, signal.SIGCHLD)


class Early:
    """A session's first moments, before its loop exists: the signals that came, the relays and
    probes waiting for the loop, and the end-of-session actions only the loop can carry out."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.relays: list[Relay] = []
        self.probes: list[tuple[str, int, int, str | None]] = []
        self.actions: list[Action] = []
        for sig in STOPPING:  # the loop's handlers replace these; until then a signal is kept
            signal.signal(sig, lambda sig, frame: self.signals.append(sig))

    def relay(self, relay: Relay) -> None:
        self.relays.append(relay)

    def probe(self, name: str, pid: int, port: int, taken: str | None) -> None:
        self.probes.append((name, pid, port, taken))

    def sweep(self, sig: int) -> None:
        self.actions.append(Sweep(sig))

    def finish(self, code: int) -> None:
        self.actions.append(Finish(code))

    def arm(self, when: float | None) -> None:
        """No timer before the loop: the loop arms one when it takes over."""

    def attach_fresh(self, fresh: FreshDirs) -> None:
        """Fresh directories are watched once the loop takes over."""

    def hand_over(self, session: Session, stage: OnLoop) -> None:
        """The loop exists: attach what waited, reap what ended meanwhile, act on what came."""
        for relay in self.relays:
            stage.relay(relay)
        for probe in self.probes:
            stage.probe(*probe)
        if session.fresh is not None:
            stage.attach_fresh(session.fresh)
        session.children_exited()
        session.apply(self.actions)
        for sig in self.signals:
            stage.on_signal(sig)


class OnLoop:
    """The session on its loop: output relays, readiness probes, stragglers, the Machine's one
    timer, the signal handlers, and the future that the session's end resolves."""

    def __init__(self, session: Session) -> None:
        import asyncio

        from procrun.supervise.probe import Probes
        from procrun.supervise.reaper import Stragglers
        from procrun.supervise.relay import Relays

        self.session = session
        self.loop = loop = asyncio.get_running_loop()
        self.done: asyncio.Future[int] = loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.relays = Relays(loop, session.writer, self._emit)
        self.probes = Probes(loop, session)
        self.stragglers = Stragglers(loop, session.machine, lambda: {c.pid for c in session.children.values()},
                                     lambda: session.guardian.pid if session.guardian else -1, session.clock,
                                     session.effects.descendants)
        for sig in HANDLED:
            loop.add_signal_handler(sig, self.on_signal, sig)
        _quiet_wakeup_fd()
        session.writer.on_error = lambda exc: call_soon(loop, self.on_output_failed, exc)
        if session.writer.error is not None:
            self.on_output_failed(session.writer.error)

    # -- what the session hands its stage
    def relay(self, relay: Relay) -> None:
        self.relays.add(relay)

    def probe(self, name: str, pid: int, port: int, taken: str | None) -> None:
        self.probes.start(name, pid, port, taken)

    def sweep(self, sig: int) -> None:
        self.stragglers.signal(sig)

    def finish(self, code: int) -> None:
        self.session.code = code
        self.stragglers.finish(self._finished)

    def arm(self, when: float | None) -> None:
        """One timer, for the Machine's next deadline."""
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if when is not None:
            self.timer = self.loop.call_later(max(0.0, when - self.session.clock()), self._on_timer)

    def attach_fresh(self, fresh: FreshDirs) -> None:
        fresh.attach(self.loop)

    def close(self) -> None:
        self.probes.close()
        for sig in HANDLED:
            self.loop.remove_signal_handler(sig)
        if self.timer:
            self.timer.cancel()
        self.relays.close()

    # -- the loop's callbacks
    def on_signal(self, sig: int) -> None:
        session, machine = self.session, self.session.machine
        if sig == signal.SIGCHLD:
            session.children_exited()
        elif machine.ending is None:
            session.apply(machine.shutdown(128 + sig, session.clock(), f"{_name(sig)} received"))
        else:
            session.apply(machine.hurry(session.clock()))

    def on_output_failed(self, exc: OSError) -> None:
        """procrun's output is gone: stop as SIGTERM would; a closed pipe quietly (exit 141, as in
        a shell pipeline), anything else (ENOSPC, EIO, EBADF) with one line on stderr (exit 1)."""
        session = self.session
        if session.output_error is not None:
            return
        session.output_error = exc
        if session.machine.ending is None:
            code = 128 + signal.SIGPIPE if exc.errno == errno.EPIPE else 1
            session.apply(session.machine.shutdown(code, session.clock(), f"output failed: {exc.strerror}"))

    def _emit(self, name: str, colour: str | None, lines: list[bytes]) -> None:
        """A relayed chunk: to the output and the journal, and to whoever watches (top's logs pane)."""
        self.session.emit(name, colour, lines)
        for watch in self.session.shared.watchers:
            watch(name, lines)

    def _on_timer(self) -> None:
        self.timer = None
        self.session.apply(self.session.machine.tick(self.session.clock()))

    def _finished(self) -> None:
        if not self.done.done():
            self.done.set_result(self.session.code if self.session.code is not None else 0)


def _name(sig: int) -> str:
    if hasattr(signal, "SIGRTMIN") and signal.SIGRTMIN < sig <= signal.SIGRTMAX:
        return f"SIGRTMIN+{sig - signal.SIGRTMIN}"
    return signal.Signals(sig).name


def _quiet_wakeup_fd() -> None:
    """asyncio's signal wakeup socket fills up when hundreds of children exit at once;
    a full buffer loses nothing (a SIGCHLD reaps every exited child), so say nothing."""
    fd = signal.set_wakeup_fd(-1)
    if fd != -1:
        signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
