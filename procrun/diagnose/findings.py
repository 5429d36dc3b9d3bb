"""Where a request finding goes: joined with the files instances wrote (disk, not memory),
allowed or kept, said once and put in the report. The router's recorder calls it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from procrun.diagnose.memory import as_report, join_disk
from procrun.diagnose.report import Report, StateFinding, allowed

if TYPE_CHECKING:
    from procrun.supervise.session import Session

Written = Callable[[], Mapping[str, Iterable[str]]]  # instance -> the paths it wrote so far


class Findings:
    """The sink for memory findings, new or newly confirmed."""

    def __init__(self, report: Report, written: Written, allow: tuple[str, ...],
                 say: Callable[[str, str], None]) -> None:
        self.report, self.written, self.allow, self.say = report, written, allow, say

    @classmethod
    def of(cls, session: Session) -> Findings:
        """The sink for a session: what its instances wrote comes from its report and live writes."""
        def written() -> dict[str, set[str]]:
            writes = session.fresh.writes if session.fresh is not None else None
            return written_by(session.report, writes.written if writes is not None else None)
        return cls(session.report, written, session.checks.allow, session.say)

    def __call__(self, finding: Any) -> None:
        join_disk([finding], {name: set(paths) for name, paths in self.written().items()})
        if allowed(self.allow, finding.kind, f"{finding.method} {finding.path}", finding.path):
            return
        entry = StateFinding(**as_report(finding))  # type: ignore[arg-type]
        key = f"{entry.kind} {entry.type} {entry.request}"
        if finding.status == "explained":  # the replay showed the same answer on the issuer: not a finding
            self.report.state.pop(key, None)
            return
        self.report.add_state(key, entry)
        self.say(f"{entry.line} [{entry.status}]", "finding")


def written_by(report: Report, live: Mapping[str, Iterable[str]] | None) -> dict[str, set[str]]:
    """What stopped instances left (the report) and what running ones wrote so far (``live``)."""
    written: dict[str, set[str]] = {}
    for files in report.findings:
        written.setdefault(files.instance, set()).update(files.created + files.changed)
    for instance, paths in (live or {}).items():
        written.setdefault(instance, set()).update(paths)
    return written
