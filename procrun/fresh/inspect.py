"""Fresh working directories of a running session: made at spawn, compared with the slug
when the instance stops (what it left behind is a warning line and a finding)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.diagnose.report import Report
from procrun.fresh.workdir import Workdir, Workdirs
from procrun.fresh.writes import Writes
from procrun.project.plan import type_of

if TYPE_CHECKING:
    import asyncio

    from procrun.diagnose.findings import Findings
    from procrun.supervise.guardian import Guardian
    from procrun.supervise.shared import Shared


class FreshDirs:
    def __init__(self, workdirs: Workdirs, report: Report, findings: Findings, clock: Callable[[], float],
                 new_root: Callable[[str], None]) -> None:
        self.workdirs = workdirs
        self.report = report  # counts inspections and TMPDIR leftovers
        self.findings = findings  # what an instance left goes there
        self.clock = clock
        self.new_root = new_root  # told the temporary root when it is made (the guardian removes it)
        self._root_told: str | None = None
        self.writes: Writes | None = None  # live notifications, when the platform has them
        self.running: dict[int, tuple[str, Workdir, float]] = {}  # pid -> name, fresh dir, start time

    @classmethod
    def watched(cls, workdirs: Workdirs, report: Report, findings: Findings, clock: Callable[[], float],
                guardian: Guardian | None, allow: tuple[str, ...], say: Callable[[str, str], None],
                shared: Shared) -> FreshDirs:
        """Fresh directories whose writes are named as they happen, once attach() gives them the
        loop (the guardian removes their root)."""
        fresh = cls(workdirs, report, findings, clock, guardian.remove_on_death if guardian else lambda root: None)
        fresh.writes = Writes(say, shared, (*workdirs.ignore, *allow))
        return fresh

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.writes is not None:
            self.writes.attach(loop)

    def make(self, name: str) -> Workdir:
        workdir = self.workdirs.create(name)
        self._told_root()
        return workdir

    def scratch(self, name: str) -> str:
        """An instance's own TMPDIR without a fresh directory, watched as scratch space."""
        path = self.workdirs.scratch(name)
        self._told_root()
        if self.writes is not None:
            self.writes.watch_scratch(name, path)
        return path

    def _told_root(self) -> None:
        """The temporary root, once it exists, is told (the guardian removes it), once."""
        if self.workdirs.root is not None and self.workdirs.root != self._root_told:
            self._root_told = self.workdirs.root
            self.new_root(self._root_told)

    def started(self, pid: int, name: str, workdir: Workdir) -> None:
        self.running[pid] = (name, workdir, self.clock())
        if self.writes is not None:
            self.writes.watch(name, workdir.path)
            self.writes.watch_scratch(name, workdir.tmp)

    def discard(self, workdir: Workdir) -> None:
        self.workdirs.discard(workdir)

    def stopped(self, pid: int) -> None:
        """Compare a stopped instance's fresh directory with the slug; report what it left."""
        if pid not in self.running:
            return
        name, workdir, started = self.running.pop(pid)
        if self.writes is not None:
            self.writes.forget(name)
        try:
            found, scratch = self.workdirs.inspect(workdir)
        except OSError as exc:  # out of descriptors, say: a half-read directory is no evidence
            self.findings.say(f"could not compare {name}'s directory with the slug ({exc.strerror}); "
                              "nothing is reported for it", "warning")
            self.workdirs.discard(workdir)
            return
        self.report.inspected += 1
        type_name = type_of(name)
        self.findings.files(name, self.clock() - started, found)
        if scratch:
            self.report.scratch[type_name] = self.report.scratch.get(type_name, 0) + scratch
        self.workdirs.discard(workdir)

    def close(self) -> None:
        if self.writes is not None:
            self.writes.close()
        self.workdirs.close()
