"""Fresh working directories of a running session: made before a start, compared with the slug
when the instance stops (what it left behind is a warning line and a finding).

Every file-system step (the slug, a copy, a diff, a removal) runs on one worker thread, in
the order asked, and its result comes back to the event loop: the session keeps answering
signals, the control socket and the router while a large app is snapshotted or copied.
The temporary root is told to the guardian before anything is written in it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from procrun.diagnose.report import Report
from procrun.fresh.workdir import Workdir, Workdirs
from procrun.fresh.writes import Writes
from procrun.project.plan import type_of

if TYPE_CHECKING:
    import asyncio

    from procrun.diagnose.findings import Findings
    from procrun.supervise.session import Session

Made = Callable[["Workdir | OSError"], None]


class Worker:
    """One thread for the file system, jobs in order; each result is handed to its callback on the
    loop (kept until attach() when the loop does not exist yet)."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any], None]] | None] = queue.SimpleQueue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting: list[tuple[Callable[[Any], None], Any]] = []
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.closed = False

    def submit(self, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        if self.closed:
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="procrun-fresh", daemon=True)
            self.thread.start()
        self.jobs.put((job, done))

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._flush()

    def _run(self) -> None:
        while (item := self.jobs.get()) is not None:
            job, done = item
            try:
                result = job()
            except Exception as exc:  # handed to the callback: a failed start, a diff not made
                result = exc
            with self.lock:
                self.waiting.append((done, result))
                loop = self.loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: close() hands it over
                    loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        """On the loop: the results that came (each exactly once: close() takes what is left)."""
        with self.lock:
            waiting, self.waiting = self.waiting, []
        for done, result in waiting:
            done(result)

    def close(self) -> list[tuple[Callable[[Any], None], Any]]:
        """Finish the jobs queued (the caller has made the slow ones stop early) and return the
        results not yet delivered."""
        self.closed = True
        if self.thread is not None:
            self.jobs.put(None)
            self.thread.join()
        with self.lock:
            self.loop, waiting, self.waiting = None, self.waiting, []
        return waiting


class FreshDirs:
    def __init__(self, workdirs: Workdirs, report: Report, findings: Findings, clock: Callable[[], float],
                 told: Callable[[str], None], say: Callable[[str, str], None]) -> None:
        self.workdirs = workdirs
        self.report = report  # counts inspections and TMPDIR leftovers
        self.findings = findings  # what an instance left goes there
        self.clock, self.say = clock, say
        workdirs.open(told)  # the guardian knows the root before anything is in it
        self.worker = Worker()
        self.writes: Writes | None = None  # live notifications, when the platform has them
        self.running: dict[int, tuple[str, Workdir, float]] = {}  # pid -> name, fresh dir, start time
        self.tmps: dict[str, str] = {}  # instance -> its TMPDIR (a restart keeps it, a relocation not)
        self.closing = False
        self._said_method = False

    @classmethod
    def of(cls, session: Session) -> FreshDirs:
        """A session's fresh directories, their writes named as they happen once attach() gives
        them the loop (the guardian removes their root)."""
        from procrun.fresh import child
        from procrun.supervise.guardian import MARKER_VAR

        guardian, workdirs = session.guardian, session.workdirs
        assert workdirs is not None
        child.MARKED[MARKER_VAR] = session.marker
        fresh = cls(workdirs, session.report, session.findings, session.clock,
                    guardian.remove_on_death if guardian else lambda root: None, session.say)
        fresh.writes = Writes(session.say, session.shared, (*workdirs.ignore, *session.checks.allow))
        return fresh

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.writes is not None:
            self.writes.attach(loop)
        self.worker.attach(loop)

    def place(self, name: str, fresh: bool, relocate: bool, then: Callable[[Workdir | OSError | str], None]) -> None:
        """Where a start of ``name`` runs, handed to ``then``: a fresh directory (made off the loop),
        or, without one, the app root with the instance's own TMPDIR (its path)."""
        if fresh:
            self.make(name, relocate, then)
        else:
            then(self.scratch(name))

    def make(self, name: str, relocate: bool, made: Made) -> None:
        """A fresh directory for one start of ``name``, handed to ``made`` on the loop (or the
        OSError that prevented it). A relocation gets a new TMPDIR too; a restart keeps its own."""
        old = self.tmps.pop(name, None) if relocate else None
        tmp = None if old is not None else self.tmps.get(name)

        def job() -> tuple[Workdir, int]:
            if self.closing:
                raise OSError("the session is ending")
            left = self.workdirs.drop_tmp(old) if old is not None else 0
            workdir = self.workdirs.create(name)
            return workdir._replace(tmp=tmp or self.workdirs.tmpdir(name)), left

        self.worker.submit(job, lambda result: self._made(name, result, made))

    def _made(self, name: str, result: tuple[Workdir, int] | Exception, made: Made) -> None:
        if isinstance(result, Exception) and not isinstance(result, OSError):  # shutil.Error, say
            result = OSError(str(result))
        if isinstance(result, tuple):
            result, left = result
            self._scratch_left(name, left)
            self.tmps[name] = result.tmp
            self._say_method()
            if not self.closing:
                self._watch(name, result)  # before the process exists: its first write is not missed
        if not self.closing:  # (at the end the root goes with everything in it)
            made(result)

    def _say_method(self) -> None:
        """Once: what the slug left out, and why fresh directories are copies when they are."""
        if self._said_method:
            return
        self._said_method = True
        from procrun.fresh.snapshot import left_out_line

        line = left_out_line(self.workdirs.left_out)
        if line:
            self.say(line, "warning")
        if self.workdirs.why_copy:
            files, size = self.workdirs.size
            self.say(f"fresh directories are copies of the app root ({files:,} files, {size / 1e6:,.0f} MB), made "
                     f"off the event loop: copy-on-write views cannot be made here ({self.workdirs.why_copy}); "
                     "each start copies it all (fresh.ignore leaves folders out)", "system")

    def refresh(self) -> None:
        """The code changed: the next start takes a new slug (the old one goes with its last instance)."""
        self.worker.submit(self.workdirs.refresh, lambda result: None)

    def scratch(self, name: str) -> str:
        """An instance's own TMPDIR without a fresh directory (behind the router, as on a machine of
        its own), watched as scratch space: the same across its restarts."""
        path = self.tmps.get(name)
        if path is None:
            path = self.tmps[name] = self.workdirs.tmpdir(name)
        if self.writes is not None:
            self.writes.watch_scratch(name, path)
        return path

    def _watch(self, name: str, workdir: Workdir) -> None:
        if self.writes is not None:
            if workdir.upper is not None:  # copy-on-write: what the instance touches appears there
                self.writes.watch(name, workdir.upper, lower=workdir.slug.path, links=workdir.slug.links)
            else:  # (a file opened for writing and closed unchanged, as SQLite does, is no write)
                self.writes.watch(name, workdir.path, workdir.slug.folders, workdir.slug.path, workdir.slug.links)
            self.writes.watch_scratch(name, workdir.tmp)

    def started(self, pid: int, name: str, workdir: Workdir) -> None:
        self.running[pid] = (name, workdir, self.clock())

    def discard(self, workdir: Workdir) -> None:
        """A directory made for a start that did not happen."""
        if self.writes is not None:
            self.writes.forget(workdir.name, under=workdir.base)
        self.worker.submit(lambda: self.workdirs.discard(workdir), lambda result: None)

    def stopped(self, pid: int) -> None:
        """Compare a stopped instance's fresh directory with the slug (off the loop); report what it left."""
        if pid not in self.running:
            return
        name, workdir, started = self.running.pop(pid)
        if self.writes is not None:
            self.writes.forget(name)
        lifetime = self.clock() - started

        def job() -> Any:
            try:
                return self.workdirs.inspect(workdir)
            finally:
                self.workdirs.discard(workdir)

        self.worker.submit(job, lambda found: self._inspected(name, lifetime, found))

    def _inspected(self, name: str, lifetime: float, found: Any) -> None:
        if isinstance(found, Exception):  # out of descriptors, say: a half-read directory is no evidence
            why = getattr(found, "strerror", None) or f"{type(found).__name__}: {found}"
            self.findings.say(f"could not compare {name}'s directory with the slug ({why}); "
                              "nothing is reported for it", "warning")
            return
        self.report.inspected += 1
        self.findings.files(name, lifetime, found)

    def _scratch_left(self, name: str, count: int) -> None:
        if count:
            type_name = type_of(name)
            self.report.scratch[type_name] = self.report.scratch.get(type_name, 0) + count

    def close(self) -> None:
        """The session is over: stop what is being made, finish the diffs, count what each TMPDIR held."""
        self.closing = True
        self.workdirs.stop()
        for done, result in self.worker.close():
            done(result)
        if self.writes is not None:
            self.writes.close()
        for name, path in self.tmps.items():
            self._scratch_left(name, self.workdirs.drop_tmp(path))
        self.workdirs.close()
