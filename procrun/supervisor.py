"""The effect layer: one asyncio loop carrying out the Machine's actions.

Signals, child exits, pipe data and timers arrive as loop callbacks; each is
turned into a Machine input, and the actions that come back are executed here
and nowhere else. Signal handlers only feed the machine; they never print or
block.
"""

from __future__ import annotations

import asyncio
import errno
import os
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from procrun import guardian, process
from procrun.formation import Instance
from procrun.guardian import MARKER_VAR
from procrun.machine import Action, Finish, Kill, Machine, Say, Spawn, Sweep
from procrun.output import SYSTEM, LineSplitter, Prefixer, colour_for, render
from procrun.report import Finding, Report
from procrun.slug import describe

if TYPE_CHECKING:
    from procrun.workdir import Workdir, Workdirs

READ_SIZE = 256 * 1024
SIGNAL_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Writer:
    """procrun's own output. A thread does the blocking writes, so output that stalls
    (Ctrl-S, a paused pager) never blocks the loop, signals, the control socket or the router.

    Up to ``limit`` bytes wait in memory. A session holds its relays back while the output
    is congested but moving (backpressure: no line lost); once it has not moved for
    ``stall_after`` seconds, lines past the limit are dropped and counted, and a line
    saying how many is written when it reads again. The first failed write (EPIPE,
    ENOSPC, EIO, EBADF...) is kept in ``error`` and reported through ``on_error`` from
    the writer thread; everything after it is discarded.
    """

    def __init__(self, fd: int, limit: int = 8 * 1024 * 1024, stall_after: float = 1.0,
                 on_error: Callable[[OSError], None] | None = None) -> None:
        self.fd = fd
        self.limit = limit
        self.stall_after = stall_after
        self.on_error = on_error
        self.error: OSError | None = None
        self.dropped = 0  # lines not shown since the last notice
        self._queued = 0  # bytes handed to the thread: changed by the caller's thread only
        self._written = 0  # bytes written or discarded: changed by the writer thread only
        self._moved = time.monotonic()  # when the output last took bytes (or became busy)
        self._drained: Callable[[], None] | None = None
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def congested(self) -> bool:
        return self._queued - self._written > self.limit

    def notify_when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the writer thread) once half the limit is left waiting."""
        self._drained = callback

    def write(self, data: bytes, lines: int = 1) -> None:
        if self.error is not None:
            return
        pending = self._queued - self._written
        now = time.monotonic()
        if pending == 0:
            self._moved = now
        elif pending > self.limit and now - self._moved > self.stall_after:
            self.dropped += lines
            return
        if self.dropped:
            self._put(self._notice())
        self._put(data)

    def _notice(self) -> bytes:
        count, self.dropped = self.dropped, 0
        return f"procrun: {count:,} lines not shown: the output did not read them\n".encode()

    def _put(self, data: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="procrun-output", daemon=True)
            self._thread.start()
        self._queued += len(data)
        self._queue.put(data)

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            parts = [data]
            while len(parts) < 256:  # coalesce what is waiting into one write
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                parts.append(more)
            self._write_all(b"".join(parts) if len(parts) > 1 else data)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.error is None:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:  # an fd someone else made non-blocking
                select.select([], [self.fd], [], 1.0)
                continue
            except OSError as exc:
                self.error = exc
                if self.on_error is not None:
                    self.on_error(exc)
                break
            view = view[n:]
            self._written += n
            self._moved = time.monotonic()
            drained = self._drained
            if drained is not None and self._queued - self._written <= self.limit // 2:
                self._drained = None
                drained()
        self._written += len(view)  # discarded after a failure

    def close(self, patience: float = 1.0) -> None:
        """Write what is waiting; give up once the output has not moved for ``patience`` s."""
        if self.dropped and self.error is None:
            self._put(self._notice())
        if self._thread is None:
            return
        self._queue.put(None)
        while self._thread.is_alive():
            before = self._written
            self._thread.join(patience)
            if self._written == before:
                return  # stalled: the daemon thread goes with the process


@dataclass
class Relay:
    """One process's output pipe: chunks in, whole prefixed lines out."""

    name: str
    fd: int
    colour: str | None
    quiet: bool
    splitter: LineSplitter = field(default_factory=LineSplitter)

    def pump(self, emit: Callable[[str, str | None, list[bytes]], None]) -> bool:
        """Read what is available; False at EOF (after flushing the last line)."""
        while True:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return True
            except OSError:
                chunk = b""
            if not chunk:
                lines = self.splitter.flush()
                if lines and not self.quiet:
                    emit(self.name, self.colour, lines)
                return False
            lines = self.splitter.feed(chunk)
            if lines and not self.quiet:
                emit(self.name, self.colour, lines)
            if len(chunk) < READ_SIZE:
                return True


class Service:
    """Something that runs beside the processes for a session's life (control socket, ...)."""

    async def start(self, session: Session) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def restarted(self, names: Iterable[str]) -> None:
        """Instances restarted on request (procrun restart); most services ignore it."""


class Session:
    """Runs a Machine against real processes until it finishes; returns the exit code."""

    def __init__(self, machine: Machine, prefixer: Prefixer, writer: Writer, cwd: str,
                 quiet: frozenset[str] = frozenset(), clock: Callable[[], float] = time.monotonic,
                 probe_types: frozenset[str] = frozenset({"web"}), workdirs: Workdirs | None = None,
                 fresh_all: bool = False, report: Report | None = None) -> None:
        self.machine = machine
        self.workdirs = workdirs
        self.fresh_all = fresh_all
        self.report = report if report is not None else Report()
        self.fresh: dict[int, tuple[Workdir, float]] = {}  # pid -> its fresh dir and start time
        self.probe_types = probe_types
        self.services: list[Service] = []
        self.prefixer = prefixer
        self.writer = writer
        self.cwd = cwd
        self.quiet = quiet
        self.clock = clock
        self.marker = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.children: dict[int, process.Child] = {}
        self.relays: dict[int, Relay] = {}
        self.colours: dict[str, str] = {}
        self.code: int | None = None
        self.output_error: OSError | None = None
        self._held: asyncio.TimerHandle | None = None  # relays held back for a congested output
        self.guardian_process: subprocess.Popen[bytes] | None = None
        self._guardian_pipe: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._finishing = False
        self._done: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.chaos: object | None = None  # the ChaosService, when attached
        self._probes: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self.generation = 0

    # -- lifecycle
    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        self._start_guardian()
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
        for sig in handled:
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        _quiet_wakeup_fd()
        loop = self._loop
        self.writer.on_error = lambda exc: _call_soon(loop, self._on_output_failed, exc)
        if self.writer.error is not None:
            self._on_output_failed(self.writer.error)
        started: list[Service] = []
        try:
            for service in self.services:
                await service.start(self)
                started.append(service)
            self.apply(self.machine.start(self.clock()))
            return await self._done
        finally:
            for service in reversed(started):
                await service.close()
            for task in list(self._probes):
                task.cancel()
            for sig in handled:
                self._loop.remove_signal_handler(sig)
            if self._timer:
                self._timer.cancel()
            if self._held is not None:
                self._held.cancel()
            self._close_relays()
            if self.workdirs is not None:
                self.workdirs.close()
            self._stop_guardian()

    # -- actions
    def apply(self, actions: list[Action]) -> None:
        """Carry out what the Machine decided. Every event source (signals, control socket,
        chaos, watch) calls the Machine and hands its actions here."""
        for action in actions:
            if isinstance(action, Spawn):
                self._spawn(action.instance, action.fresh)
            elif isinstance(action, Kill):
                process.signal_group(action.pid, action.sig)
            elif isinstance(action, Sweep):
                self._sweep(action.sig)
            elif isinstance(action, Say):
                self.say(action.text, action.source)
            elif isinstance(action, Finish):
                self.code = action.code
                self._begin_finish()
        self._arm_timer()
        self.generation += 1  # lets readers (the router's pool) cache what they derive from the Machine
        self._changed.set()  # wakes Session.until() waiters (rolling restarts)

    async def until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait, without polling, until the process table satisfies ``predicate``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return predicate()
        return True

    def say(self, text: str, source: str = SYSTEM) -> None:
        if source != SYSTEM:
            self.prefixer.style.widen([source])
        self.emit(source, None, [text.encode()])

    def emit(self, name: str, colour: str | None, lines: list[bytes]) -> None:
        self.writer.write(render(self.prefixer.prefix(name, colour), lines), len(lines))

    def _spawn(self, inst: Instance, fresh: bool = False) -> None:
        env = dict(inst.env)
        env[MARKER_VAR] = self.marker
        self.prefixer.style.widen([inst.name])
        colour = self.colours.setdefault(inst.name, colour_for(len(self.colours)))
        now = self.clock()
        workdir = None
        try:
            if (fresh or self.fresh_all) and self.workdirs is not None:
                first = self.workdirs.root is None
                workdir = self.workdirs.create(inst.name)
                env["TMPDIR"] = workdir.tmp
                if first and self._guardian_pipe is not None:  # removed by the guardian if we die
                    os.write(self._guardian_pipe, self.workdirs.root.encode() + b"\n")  # type: ignore[union-attr]
            child = process.spawn(inst.command, env, workdir.path if workdir else self.cwd)
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            if workdir is not None:
                self.workdirs.discard(workdir)  # type: ignore[union-attr]
            self.apply(self.machine.spawn_failed(inst.name, getattr(exc, "strerror", None) or str(exc), now))
            return
        if workdir is not None:
            self.fresh[child.pid] = (workdir, now)
        self.children[child.pid] = child
        relay = Relay(inst.name, child.fd, colour, inst.type in self.quiet)
        self.relays[child.fd] = relay
        if self._held is None:
            self._loop.add_reader(child.fd, self._on_readable, relay)  # type: ignore[union-attr]
        probing = inst.type in self.probe_types and inst.port is not None
        self.apply(self.machine.spawned(inst.name, child.pid, now, probing=probing))
        if probing:
            task = self._loop.create_task(self._probe(inst.name, child.pid, inst.port))  # type: ignore[union-attr, arg-type]
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)

    async def _probe(self, name: str, pid: int, port: int) -> None:
        """Ready when the port accepts a TCP connection; backs off to 0.5 s between tries."""
        delay = 0.01
        while pid in self.children:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(0.5, delay * 2)
                continue
            writer.close()
            await writer.wait_closed()
            self.apply(self.machine.ready(name, pid, self.clock()))
            proc = self.machine.procs.get(name)
            if proc is not None and proc.pid == pid and proc.ready_after is not None:
                self.report.record("ready", proc.instance.type, proc.ready_after)
            return

    def _sweep(self, sig: int) -> None:
        for pid in self._stragglers():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _stragglers(self) -> list[int]:
        groups = {c.pid for c in self.children.values()}
        keeper = self.guardian_process.pid if self.guardian_process else -1
        return [pid for pid, pgrp in process.descendants(os.getpid())
                if pgrp not in groups and pid != keeper]

    # -- callbacks
    def _on_signal(self, sig: int) -> None:
        if sig == signal.SIGCHLD:
            self._on_child_exit()
            return
        now = self.clock()
        if self.machine.ending is None:
            name = signal.Signals(sig).name
            self.apply(self.machine.shutdown(SIGNAL_CODES[sig], now, f"{name} received"))
        else:
            self.apply(self.machine.hurry(now))

    def _on_output_failed(self, exc: OSError) -> None:
        """procrun's output is gone (EPIPE, ENOSPC, EIO, EBADF): stop as SIGTERM would.

        A closed pipe is the reader saying it has seen enough, as in a shell pipeline
        (exit 141, quietly); anything else is said in one line on stderr (exit 1).
        """
        if self.output_error is not None:
            return
        self.output_error = exc
        if self.machine.ending is None:
            code = 128 + signal.SIGPIPE if exc.errno == errno.EPIPE else 1
            self.apply(self.machine.shutdown(code, self.clock(), f"output failed: {exc.strerror}"))

    def _on_child_exit(self) -> None:
        for pid, returncode in process.reap():
            child = self.children.pop(pid, None)
            if child is None:
                continue  # a reparented orphan
            child.popen.returncode = returncode
            relay = self.relays.get(child.fd)
            if relay is not None:  # print what it wrote before saying it stopped
                self._pump(relay)
            name = self.machine.by_pid.get(pid)
            if pid in self.fresh and name is not None:  # report before a successor starts
                self._inspect(name, *self.fresh.pop(pid))
            stopping = name is not None and self.machine.procs[name].stop_requested is not None
            self.apply(self.machine.exited(pid, returncode, self.clock()))
            proc = self.machine.procs.get(name) if name is not None else None
            if stopping and proc is not None and proc.stop_after is not None:
                self.report.record("stopped", proc.instance.type, proc.stop_after)

    def _inspect(self, name: str, workdir: Workdir, started: float) -> None:
        """Compare a stopped instance's fresh directory with the slug; report what it left."""
        assert self.workdirs is not None
        found, scratch = self.workdirs.inspect(workdir)
        self.report.inspected += 1
        type_name = name.rsplit(".", 1)[0]
        lifetime = self.clock() - started
        if found:
            self.say(describe(name, lifetime, found), "warning")
            self.report.findings.append(Finding(name, type_name, round(lifetime, 3), time.time(),
                                                found.created, found.changed, found.deleted))
        if scratch:
            self.report.scratch[type_name] = self.report.scratch.get(type_name, 0) + scratch
        self.workdirs.discard(workdir)

    def _on_readable(self, relay: Relay) -> None:
        self._pump(relay)

    def _pump(self, relay: Relay) -> None:
        if not relay.pump(self.emit):
            self._close_relay(relay)
        if self.writer.congested():
            self._hold_relays()

    def _hold_relays(self) -> None:
        """Backpressure: stop reading children while the output catches up. After
        ``stall_after`` without the output draining, read again (the Writer then drops)."""
        if self._held is not None:
            return
        loop = self._loop
        assert loop is not None
        for fd in self.relays:
            loop.remove_reader(fd)
        self._held = loop.call_later(self.writer.stall_after, self._release_relays)
        self.writer.notify_when_drained(lambda: _call_soon(loop, self._release_relays))

    def _release_relays(self) -> None:
        if self._held is None:
            return
        self._held.cancel()
        self._held = None
        for relay in self.relays.values():
            self._loop.add_reader(relay.fd, self._on_readable, relay)  # type: ignore[union-attr]

    def _close_relay(self, relay: Relay) -> None:
        if self.relays.pop(relay.fd, None) is not None:
            self._loop.remove_reader(relay.fd)  # type: ignore[union-attr]
            os.close(relay.fd)

    def _close_relays(self) -> None:
        for relay in list(self.relays.values()):
            relay.pump(self.emit)
            self._close_relay(relay)

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

    # -- finishing: wait for daemonised stragglers, bounded by the deadline
    def _begin_finish(self) -> None:
        if self._finishing:
            return
        self._finishing = True
        self._loop.call_soon(self._finish_step)  # type: ignore[union-attr]

    def _finish_step(self) -> None:
        stragglers = self._stragglers()
        if not stragglers:
            if self._done is not None and not self._done.done():
                self._done.set_result(self.code if self.code is not None else 0)
            return
        deadline = self.machine.deadline
        sig = signal.SIGKILL if self.machine.killed or (deadline is not None and self.clock() >= deadline) \
            else signal.SIGTERM
        for pid in stragglers:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        self._loop.call_later(0.02, self._finish_step)  # type: ignore[union-attr]

    # -- guardian
    def _start_guardian(self) -> None:
        read_fd, write_fd = os.pipe()
        env = {k: v for k, v in os.environ.items() if k != MARKER_VAR}
        keep = self.workdirs is not None and self.workdirs.keep
        try:
            self.guardian_process = subprocess.Popen(
                guardian.command(self.marker, keep), stdin=read_fd, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True)
        finally:
            os.close(read_fd)
        self._guardian_pipe = write_fd

    def _stop_guardian(self) -> None:
        """Everything is stopped: tell the guardian so, and let it go."""
        if self._guardian_pipe is not None:
            try:
                os.write(self._guardian_pipe, b"clean\n")
            except OSError:
                pass
            os.close(self._guardian_pipe)
            self._guardian_pipe = None
        if self.guardian_process is not None:
            try:
                self.guardian_process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.guardian_process.kill()
                self.guardian_process.wait()


def _quiet_wakeup_fd() -> None:
    """asyncio's signal wakeup socket fills up when hundreds of children exit at once;
    a full buffer loses nothing (a SIGCHLD reaps every exited child), so say nothing."""
    fd = signal.set_wakeup_fd(-1)
    if fd != -1:
        signal.set_wakeup_fd(fd, warn_on_full_buffer=False)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> None:
    """From the writer thread: run ``callback`` in the loop, unless the session has ended."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nothing left to tell
        pass
