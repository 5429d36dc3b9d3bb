"""The one path every finding takes, whichever detector made it: the router's requests
(memory, secret key, local disk, TMPDIR), a fresh directory's stop-time diff (files), an
instance's sockets (ports). Here, and only here, a finding is checked against procrun.yaml's
``allow``, joined with the files instances wrote (memory becomes disk), put in the report
(which journals it), and said once on the terminal. The session makes and owns it
(``Session.findings``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from procrun.diagnose import ports
from procrun.diagnose.memory import as_report, join_disk
from procrun.diagnose.report import Finding as Files
from procrun.diagnose.report import Kind, Report, StateFinding, Status, allowed
from procrun.fresh.slug import Diff, describe
from procrun.project.plan import type_of

Live = Callable[[], Mapping[str, Iterable[str]] | None]  # running instances -> the paths they wrote so far


class Findings:
    """The sink: requests, files and ports come in; the report and the terminal hear of each once."""

    def __init__(self, report: Report, live: Live, allow: tuple[str, ...], say: Callable[[str, str], None]) -> None:
        self.report, self.live, self.allow, self.say = report, live, allow, say

    def written(self) -> dict[str, set[str]]:
        """What stopped instances left (the report) and what running ones wrote so far."""
        return written_by(self.report, self.live())

    def request(self, finding: Any) -> None:
        """A finding of the router's requests, new, newly confirmed or explained."""
        join_disk([finding], self.written())
        if allowed(self.allow, finding.kind, finding.request, finding.path):
            return
        entry = StateFinding(**as_report(finding, epoch=time.time() - time.monotonic()))  # type: ignore[arg-type]
        key = f"{entry.kind} {entry.type} {entry.request}"
        if finding.status == Status.EXPLAINED:  # the replay showed the same answer on the issuer: not a finding
            self.report.state.pop(key, None)
            return
        self._state(key, entry)

    def answers(self, found: Any) -> None:
        """Two instances that answer the same safe request differently (router.compare)."""
        if allowed(self.allow, Kind.ANSWERS, found.request, found.request.split(" ", 1)[1]):
            return
        entry = StateFinding(**found.as_report())
        self._state(f"{entry.kind} {entry.type} {entry.request}", entry)

    def ports(self, name: str, port: int, listening: set[int]) -> None:
        """An instance that listens elsewhere than $PORT."""
        if allowed(self.allow, Kind.PORTS, name):
            return
        entry = StateFinding(**ports.elsewhere(name, port, listening))  # type: ignore[arg-type]
        self._state(f"{entry.kind} {name}", entry, name)

    def files(self, instance: str, lifetime: float, found: Diff) -> None:
        """What a stopped instance left in its fresh directory, compared with the slug."""
        kept = Diff(*(tuple(p for p in paths if not allowed(self.allow, Kind.FILES, p)) for paths in found))
        if not kept:
            return
        self.say(describe(instance, lifetime, kept), "warning")
        self.report.add_files(Files(instance, type_of(instance), round(lifetime, 3), time.time(), *kept))

    def _state(self, key: str, entry: StateFinding, instance: str | None = None) -> None:
        self.report.add_state(key, entry, instance)
        self.say(f"{entry.line} [{entry.status}]", "finding")


def written_by(report: Report, live: Mapping[str, Iterable[str]] | None) -> dict[str, set[str]]:
    """What stopped instances left (the report) and what running ones wrote so far (``live``)."""
    written: dict[str, set[str]] = {}
    for files in report.findings:
        written.setdefault(files.instance, set()).update(files.created + files.changed)
    for instance, paths in (live or {}).items():
        written.setdefault(instance, set()).update(paths)
    return written
