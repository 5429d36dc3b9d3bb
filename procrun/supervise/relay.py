"""Output relay: children's pipes in, whole prefixed lines out, through one Writer.

``Writer`` owns procrun's own output (a thread does the blocking writes); ``Relays``
owns the children's pipes on the loop, holding them back while the output is congested.
"""

from __future__ import annotations

import errno
import os
import queue
import select
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from procrun.supervise.output import LineSplitter

if TYPE_CHECKING:
    import asyncio  # annotations only: a session launches its processes before it imports asyncio

READ_SIZE = 256 * 1024
Emit = Callable[[str, "str | None", list[bytes]], None]


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
        self._held: list[tuple[bytes, int]] | None = None

    def congested(self) -> bool:
        return self._queued - self._written > self.limit

    def notify_when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the writer thread) once half the limit is left waiting."""
        self._drained = callback

    def hold(self) -> Writer:
        """Keep what is written until ``release`` (or the end of ``with writer.hold():``): a
        launch's 50 'started' lines then cost the writer thread one wake-up (and the launch one
        GIL hand-over) instead of 50."""
        self._held = []
        return self

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        held, self._held = self._held, None
        if held:
            self.write(b"".join(data for data, _ in held), sum(lines for _, lines in held))

    def write(self, data: bytes, lines: int = 1) -> None:
        if self._held is not None:
            self._held.append((data, lines))
            return
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


class Relay:
    """One process's output pipe: chunks in, whole prefixed lines out. ``taps`` are the attached
    clients by name (raw bytes); a pseudo-terminal (``tty``) ends its lines with \r\n."""

    def __init__(self, name: str, fd: int, colour: str | None, quiet: bool, tty: bool = False,
                 taps: Mapping[str, Callable[[bytes], None]] | None = None) -> None:
        self.name, self.fd, self.colour, self.quiet, self.tty = name, fd, colour, quiet, tty
        self.splitter = LineSplitter()
        self.taps = {} if taps is None else taps

    def pump(self, emit: Emit) -> bool:
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
            tap = self.taps.get(self.name)
            if tap is not None:
                tap(chunk)
            lines = self.splitter.feed(chunk)
            if self.tty:
                lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
            if lines and not self.quiet:
                emit(self.name, self.colour, lines)
            if len(chunk) < READ_SIZE:
                return True


class Relays:
    """Every child's output pipe on the loop; backpressure when the Writer is congested."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: Writer, emit: Emit) -> None:
        self.loop = loop
        self.writer = writer
        self.emit = emit
        self.relays: dict[int, Relay] = {}
        self._held: asyncio.TimerHandle | None = None  # relays held back for a congested output

    def add(self, relay: Relay) -> None:
        self.relays[relay.fd] = relay
        if self._held is None:
            self.loop.add_reader(relay.fd, self.pump, relay)

    def pump(self, relay: Relay) -> None:
        if not relay.pump(self.emit):
            self._close(relay)
        if self.writer.congested():
            self._hold()

    def pump_fd(self, fd: int) -> None:
        """Print what a child wrote before it exited (called before saying it stopped)."""
        relay = self.relays.get(fd)
        if relay is not None:
            self.pump(relay)

    def _hold(self) -> None:
        """Stop reading children while the output catches up; after ``stall_after`` without
        the output draining, read again (the Writer then drops and counts)."""
        if self._held is not None:
            return
        for fd in self.relays:
            self.loop.remove_reader(fd)
        self._held = self.loop.call_later(self.writer.stall_after, self._release)
        loop = self.loop
        self.writer.notify_when_drained(lambda: call_soon(loop, self._release))

    def _release(self) -> None:
        if self._held is None:
            return
        self._held.cancel()
        self._held = None
        for relay in self.relays.values():
            self.loop.add_reader(relay.fd, self.pump, relay)

    def _close(self, relay: Relay) -> None:
        if self.relays.pop(relay.fd, None) is not None:
            self.loop.remove_reader(relay.fd)
            os.close(relay.fd)

    def close(self) -> None:
        if self._held is not None:
            self._held.cancel()
            self._held = None
        for relay in list(self.relays.values()):
            relay.pump(self.emit)
            self._close(relay)


def call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> None:
    """From the writer thread: run ``callback`` in the loop, unless the session has ended."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nothing left to tell
        pass


def say_output_error(exc: OSError | None) -> None:
    """One stderr line when the output failed; none for a closed pipe (`procrun start | head`)."""
    if exc is None or exc.errno == errno.EPIPE:
        return
    try:
        os.write(2, f"procrun: cannot write the output ({exc.strerror}); stopped the session\n".encode())
    except OSError:
        pass
