"""The hidden-local-state report: chaos events and findings. Pure data."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a finding is about: the state and where it was kept."""

    MEMORY = "memory"
    FORGOTTEN = "forgotten"
    SECRET_KEY = "secret-key"
    DISK = "disk"
    TMPDIR = "tmpdir"
    FILES = "files"
    LOGS = "logs"
    PORTS = "ports"
    ANSWERS = "answers"  # two instances answer the same safe request differently (router.compare)


class Status(StrEnum):
    SUSPECTED = "suspected"  # seen once
    CONFIRMED = "confirmed"  # verified (replay, a flap, another instance)
    EXPLAINED = "explained"  # the replay showed the same answer everywhere: not a finding


@dataclass(frozen=True)
class Finding:
    """Files an instance left behind in its fresh directory."""

    instance: str
    type: str
    lifetime: float
    at: float  # wall clock
    created: tuple[str, ...]
    changed: tuple[str, ...]
    deleted: tuple[str, ...]


@dataclass
class StateFinding:
    """Hidden state seen in requests (memory, secret key, local disk): the evidence never holds a value."""

    kind: str
    type: str
    status: str  # suspected | confirmed
    request: str  # "GET /me"
    line: str
    rule: str
    fix: str
    evidence: list[list[Any]] = field(default_factory=list)  # [time, instance, status]
    replays: int = 0  # requests procrun replayed to verify it (router.replay)


SCHEMA = 1  # `procrun report --json`: bump when a field changes meaning
# What an app generates in a name: uuids, temporary names (tmpkj3vdefl), hex digests, long numbers,
# random tokens (letters with digits mixed in, 8 or more), and whatever follows a dot-cache folder.
_GENERATED = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|(?<![A-Za-z])tmp[A-Za-z0-9_]{4,}"
                        r"|(?<![A-Za-z0-9])(?=[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])"
                        r"[A-Za-z0-9_-]{8,}(?![A-Za-z0-9])|[0-9a-f]{6,}|\d{3,}", re.IGNORECASE)
_CACHE_DIR = re.compile(r"(^|/)(\.[A-Za-z0-9_-]*cache|\.cache|CACHE)/.+$")
# Compiled at run time: asset pipelines' output and caches under the folders apps serve
_ASSETS = re.compile(r"(^|/)(static|public|assets)/|\.webassets-cache|\.sass-cache|(^|/)CACHE/")


def pattern(path: str) -> str:
    """Paths an app generates, grouped: uploads/3f2a9c1e.txt and uploads/77ab01c2.txt are
    uploads/<id>.txt; flask_session/tmpkj3vdefl.__wz_cache is flask_session/<id>.__wz_cache;
    anything in a dot-cache folder is that folder's <...>."""
    return _GENERATED.sub("<id>", _CACHE_DIR.sub(r"\1\2/<...>", path))


def compiled_at_run_time(path: str) -> bool:
    """An asset built while serving (a pipeline's output, a Sass or webassets cache)."""
    return bool(_ASSETS.search(path))


def allowed(patterns: Iterable[str], *subjects: str) -> bool:
    """procrun.yaml ``allow``: a finding whose kind, request or path matches a pattern is accepted."""
    return any(fnmatch.fnmatchcase(subject, p) for p in patterns for subject in subjects if subject)


@dataclass(frozen=True)
class Event:
    """One disruption chaos carried out."""

    at: float
    victim: str
    action: str
    seconds: float = 0.0  # how long a pause lasts


@dataclass
class Report:
    """What a session found: chaos events, files left behind, state findings, timings."""

    seed: int | None = None
    scheduled: bool = False  # the seeded schedule ran (not only manual `chaos now`)
    inspected: int = 0  # instance stops whose fresh directory was compared with the slug
    events: list[Event] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    scratch: dict[str, int] = field(default_factory=dict)  # type -> files left in TMPDIR
    ready: dict[str, list[float]] = field(default_factory=dict)  # type -> seconds from spawn to ready
    stopped: dict[str, list[float]] = field(default_factory=dict)  # type -> seconds from stop request to exit
    state: dict[str, StateFinding] = field(default_factory=dict)  # "kind type request" -> finding
    requests_seen: bool = False  # the router recorded requests (memory could be diagnosed)
    backing_map: list[dict[str, Any]] = field(default_factory=list)  # proxied URLs and the ones left alone
    backing: list[dict[str, Any]] = field(default_factory=list)  # verdicts per (type, service, fault)
    backing_counts: dict[str, int] = field(default_factory=dict)  # the schedule's faults: scheduled, fired, skipped
    listener: Callable[[str, dict[str, Any]], None] | None = field(default=None, repr=False, compare=False)

    def add_event(self, event: Event) -> None:
        self.events.append(event)
        self._tell("chaos", {"n": event.victim, "action": event.action, "seconds": event.seconds})

    def add_files(self, finding: Finding) -> None:
        self.findings.append(finding)
        self._tell("finding", {"n": finding.instance, "kind": "files", "status": "confirmed", **asdict(finding)})

    def add_state(self, key: str, finding: StateFinding, instance: str | None = None) -> None:
        """A hidden-state finding, new or stronger than before (same key)."""
        self.state[key] = finding
        latest = finding.evidence[-1] if finding.evidence else None
        instance = instance or (str(latest[1]) if latest and len(latest) > 1 else None)
        where = {"n": instance} if instance else {}
        self._tell("finding", {**where, **{k: v for k, v in asdict(finding).items() if k != "evidence"}})

    def _tell(self, kind: str, fields: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener(kind, fields)

    def record(self, kind: str, type_name: str, seconds: float) -> None:
        """Disposability (twelve-factor IX): how fast instances start and stop."""
        getattr(self, kind).setdefault(type_name, []).append(round(seconds, 4))

    def disposability(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for kind in ("ready", "stopped"):
            for type_name, values in getattr(self, kind).items():
                ordered = sorted(values)
                out.setdefault(type_name, {})[f"{kind}_median"] = ordered[len(ordered) // 2]
                out[type_name][f"{kind}_max"] = ordered[-1]
        return out

    def by_type(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for f in self.findings:
            entry = out.setdefault(f.type, {"instances": 0, "files": {}, "first_seen": f.at, "examples": []})
            entry["instances"] += 1
            for verb, paths in (("created", f.created), ("changed", f.changed), ("deleted", f.deleted)):
                for path in paths:
                    key = f"{verb} {pattern(path)}"
                    entry["files"][key] = entry["files"].get(key, 0) + 1
            if len(entry["examples"]) < 3:
                entry["examples"].append(f.instance)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "seed": self.seed, "scheduled": self.scheduled, "inspected": self.inspected,
                "events": [asdict(e) for e in self.events], "findings": [asdict(f) for f in self.findings],
                "by_type": self.by_type(), "state": [asdict(f) for f in self.state.values()],
                "requests_seen": self.requests_seen, "kinds": self.kinds(), "scratch": self.scratch,
                "ready": self.ready, "stopped": self.stopped, "disposability": self.disposability(),
                "backing_map": self.backing_map, "backing": self.backing, "backing_counts": self.backing_counts}

    def kinds(self) -> dict[str, str]:
        """Every kind found, with its strongest status: files written are seen, hence confirmed."""
        out: dict[str, str] = {"files": "confirmed"} if self.findings else {}
        for finding in self.state.values():
            if out.get(finding.kind) != "confirmed":
                out[finding.kind] = finding.status
        return out

    def failing(self, level: str) -> bool:
        """For `procrun report --fail-on`: any finding at least this sure."""
        return any(level == "suspected" or status == "confirmed" for status in self.kinds().values())

    def summary(self, limit: int = 5) -> list[str]:
        """A one-screen summary for the end of a session."""
        lines = self._chaos_lines() + self._disposability_lines()
        kinds = self.kinds()
        if not kinds:
            lines += self._clean_lines()
            return lines
        lines.append("hidden local state: " + ", ".join(f"{kind} ({status})" for kind, status in kinds.items()))
        for finding in self.state.values():
            lines.append(f"  {finding.type}: {finding.line} [{finding.status}]; fix: {finding.fix}")
        lines += self._file_lines(limit)
        return lines

    def _chaos_lines(self) -> list[str]:
        if not self.events:
            return []
        counts: dict[str, int] = {}
        for e in self.events:
            counts[e.action] = counts.get(e.action, 0) + 1
        return [f"chaos: {len(self.events)} disruptions (" + ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
                + ")" + (f"; replay with --chaos-seed {self.seed}" if self.scheduled and self.seed is not None else "")]

    def _disposability_lines(self) -> list[str]:
        lines = []
        for type_name, d in self.disposability().items():
            parts = []
            if "ready_median" in d:
                parts.append(f"ready in {d['ready_median']:.2f}s (max {d['ready_max']:.2f}s)")
            if "stopped_median" in d:
                parts.append(f"stops in {d['stopped_median']:.2f}s (max {d['stopped_max']:.2f}s)")
            lines.append(f"disposability: {type_name} {', '.join(parts)}")
        lines += [f"disposability: {v['line']}" for v in self.backing]
        meanings = {v["verdict"]: v.get("means", "") for v in self.backing}
        lines += [f"  {verdict}: {means}" for verdict, means in sorted(meanings.items()) if means]
        counts = self.backing_counts
        if counts.get("scheduled"):
            lines.append(f"backing faults: {counts['scheduled']} scheduled, {counts['fired']} fired, "
                         f"{counts['skipped']} skipped (due while another ran on the same service)")
        return lines

    def _clean_lines(self) -> list[str]:
        checked = []
        if self.inspected:
            checked.append(f"{self.inspected} fresh director" + ("y" if self.inspected == 1 else "ies"))
        if self.requests_seen:
            checked.append("the requests through the router")
        if checked:
            return [f"hidden local state: none found in {' and '.join(checked)}"]
        if self.events:
            return ["hidden local state: not checked: no instance stopped after running in a fresh "
                    "directory (use --fresh, or chaos with relocate)"]
        return []

    def _file_lines(self, limit: int) -> list[str]:
        lines = []
        groups = self.by_type()
        if groups:
            lines.append(f"  files: {len(self.findings)} instance stop(s) left files behind")
        for type_name, entry in groups.items():
            files = sorted(entry["files"].items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{k} (x{n})" for k, n in files[:limit])
            more = f" and {len(files) - limit} more" if len(files) > limit else ""
            lines.append(f"  {type_name}: {entry['instances']} time(s): {shown}{more}")
        for type_name, n in self.scratch.items():
            lines.append(f"  {type_name}: {n} file(s) in TMPDIR (allowed scratch space)")
        return lines


def from_json(data: dict[str, Any]) -> Report:
    report = Report(seed=data.get("seed"), scheduled=bool(data.get("scheduled")), inspected=int(data.get("inspected", 0)))
    report.events = [Event(**e) for e in data.get("events", [])]
    report.findings = [Finding(**{k: tuple(v) if isinstance(v, list) else v for k, v in f.items()})
                       for f in data.get("findings", [])]
    report.scratch = dict(data.get("scratch", {}))
    report.ready = {k: list(v) for k, v in data.get("ready", {}).items()}
    report.stopped = {k: list(v) for k, v in data.get("stopped", {}).items()}
    report.state = {f"{f['kind']} {f['type']} {f['request']}": StateFinding(**f) for f in data.get("state", [])}
    report.requests_seen = bool(data.get("requests_seen"))
    report.backing_map = list(data.get("backing_map", []))
    report.backing = list(data.get("backing", []))
    report.backing_counts = dict(data.get("backing_counts", {}))
    return report
