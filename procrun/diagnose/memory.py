"""State kept in process memory, seen from the router. Pure: request records in, findings out.

A client is known by a key (an HMAC of the cookies the backends issued and of
Authorization; never the values). The same safe request (GET/HEAD, same key, same
path) that succeeds on one instance and fails on another (401/403/404/410 or a
redirect to a login page) is an *instance-dependent answer*; a success that fails
on the same instance after it restarted is *forgotten on restart*. Nothing may
explain it: an unsafe request from that key or by anyone to that path, a cookie set
for the key, an overlapping request of the key, a restart procrun made for a code or
config change, or an answer the router made itself. One transition is *suspected*;
a flap (success, failure, success again) or failures on two other instances than the
one that issued the session *confirm* it; once confirmed for a key, 5xx and
400/419/422 answers on other instances count as evidence too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from procrun.project.plan import type_of

SAFE = frozenset({"GET", "HEAD"})
LOGOUT_WORDS = ("logout", "log-out", "signout", "sign-out", "logoff")  # a GET that changes state
LOGIN_WORDS = ("login", "log-in", "signin", "sign-in", "auth")
FAILURE = frozenset({401, 403, 404, 410})
CSRF_OR_ERROR = frozenset({400, 419, 422})


@dataclass(frozen=True)
class Record:
    """One request as the router saw it: no cookie, header or query value is kept."""

    started: float
    ended: float
    key: str  # client key: an HMAC, "" for a client without cookies or Authorization
    method: str
    path: str  # without the query string
    status: int
    instance: str  # web.2
    pid: int
    set_cookie: bool = False  # the response set a cookie the backend issued
    login_redirect: bool = False  # a redirect whose Location names a login page
    signed_cookie: bool = False  # the request's session cookie looks signed (value.signature)
    router_made: bool = False  # a 502/503/504 of the router's own

    @property
    def type(self) -> str:
        return type_of(self.instance)

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300 or self.status == 304

    @property
    def failure(self) -> bool:
        return self.status in FAILURE or self.login_redirect

    @property
    def unsafe(self) -> bool:
        return self.method not in SAFE or any(word in self.path.lower() for word in LOGOUT_WORDS)


@dataclass
class Finding:
    """One hidden-state finding from requests; ``evidence`` holds (time, instance, status) triples."""

    kind: str  # "memory", "forgotten" or "secret-key"
    type: str
    method: str
    path: str
    status: str = "suspected"  # or "confirmed"
    success_on: str = ""
    success_status: int = 0
    failures: list[tuple[str, int]] = field(default_factory=list)  # (instance, status)
    evidence: list[tuple[float, str, int]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    def line(self) -> str:
        """The one line a developer sees: ``GET /me with the same session: 200 from web.1, 401 from web.3 (x4)``."""
        last_instance, last_status = self.failures[-1]
        count = f" (x{len(self.failures)})" if len(self.failures) > 1 else ""
        who = "the same session" if any(self.keys) else "the same client"
        where = f"{last_status} from {last_instance}" if self.kind != "forgotten" else \
            f"{last_status} from {last_instance} after it restarted"
        return (f"{self.method} {self.path} with {who}: {self.success_status} from {self.success_on}, "
                f"{where}{count} — {CAUSES[self.kind]}")


CAUSES = {
    "memory": "state kept in process memory (sessions?)",
    "forgotten": "state kept in process memory, lost when the instance restarted",
    "secret-key": "a per-instance secret key (secret_key = os.urandom(...)?): other instances reject its signed "
                  "cookies",
    "disk": "state kept on local disk: the instance that answered wrote it next to the code",
}
FIXES = {
    "memory": "keep sessions in a backing store (Redis, a database) or in signed cookies with a shared secret",
    "forgotten": "keep the state in a backing store (Redis, a database) that outlives the process",
    "secret-key": "read the secret key from the environment (.env) so every instance shares it",
    "disk": "put files in object storage or a database, not on local disk",
}
RULE = "twelve-factor VI, Processes: stateless and share-nothing; memory and disk are a single-transaction cache"


@dataclass
class _Seen:
    """What one client key has seen for one path since the last thing that could explain a change."""

    success: Record | None = None  # the last success
    failures: list[Record] = field(default_factory=list)  # failures since it
    flapped: bool = False


class Memory:
    """Feeds on request records; hands out findings that are new or newly confirmed.

    Memory is bounded whatever the traffic (a crawler, a load test with unique URLs): at most
    ``limit`` (client, path) histories and clients are kept, the oldest forgotten first."""

    def __init__(self, window: int = 64, limit: int = 10_000) -> None:
        self.window = window
        self.limit = limit
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._recent: dict[str, list[Record]] = {}  # per key, the last few records (overlaps)
        self._issuer: dict[str, str] = {}  # key -> the instance whose answer set its cookie
        self._confirmed_keys: set[str] = set()
        self.findings: dict[tuple[str, str, str], Finding] = {}

    def reset(self) -> None:
        """procrun restarted instances for a code or config change: nothing before counts."""
        self._seen.clear()

    def feed(self, record: Record) -> list[Finding]:
        """The findings this record created or confirmed (each once)."""
        if record.router_made:
            return []
        overlapping = self._note(record)
        if record.unsafe:
            self._forget(record)
            return []
        if record.set_cookie and record.key:
            self._issuer.setdefault(record.key, record.instance)
        seen = self._seen.get((record.key, record.path))
        if seen is None:
            seen = self._seen[(record.key, record.path)] = _Seen()
            _bound(self._seen, self.limit)
        if record.success:
            return self._on_success(seen, record)
        if overlapping:
            return []
        if record.failure or (record.key in self._confirmed_keys and self._confirmed_evidence(record)):
            return self._on_failure(seen, record)
        return []

    def _note(self, record: Record) -> bool:
        recent = self._recent.get(record.key)
        if recent is None:
            recent = self._recent[record.key] = []
            _bound(self._recent, self.limit)
        overlapping = any(r.started < record.ended and record.started < r.ended for r in recent[-8:])
        recent.append(record)
        del recent[:-self.window]
        return overlapping and bool(record.key)

    def _forget(self, record: Record) -> None:
        """An unsafe request explains any change: for its key, and for its path for everyone."""
        for (key, path) in list(self._seen):
            if key == record.key or path == record.path:
                del self._seen[(key, path)]

    def _confirmed_evidence(self, record: Record) -> bool:
        return record.status >= 500 or record.status in CSRF_OR_ERROR

    def _on_success(self, seen: _Seen, record: Record) -> list[Finding]:
        out: list[Finding] = []
        if seen.success is not None and seen.failures and seen.success.instance == record.instance:
            seen.flapped = True  # success on A, failure elsewhere, success on A again
            out = self._confirm(seen, record)
        if seen.success is None or not seen.failures or seen.success.instance != record.instance:
            seen.success, seen.failures, seen.flapped = record, [], False
        return out

    def _on_failure(self, seen: _Seen, record: Record) -> list[Finding]:
        success = seen.success
        if success is None:
            return []
        if success.instance == record.instance and success.pid == record.pid:
            return []  # the same process changed its mind: not instance-dependent
        kind = "forgotten" if success.instance == record.instance else self._kind(record)
        seen.failures.append(record)
        finding = self._finding(kind, success, record)
        new = not finding.failures
        finding.failures.append((record.instance, record.status))
        finding.evidence += [(success.ended, success.instance, success.status), (record.ended, record.instance,
                                                                                 record.status)]
        del finding.evidence[:-20]
        finding.keys.add(record.key)
        issuer = self._issuer.get(record.key, success.instance)
        if finding.status == "suspected" and sum(r.instance != issuer for r in seen.failures) >= 2:
            return self._confirm(seen, record)
        return [finding] if new else []

    def _kind(self, record: Record) -> str:
        return "secret-key" if record.signed_cookie else "memory"

    def _finding(self, kind: str, success: Record, record: Record) -> Finding:
        key = (kind, record.type, f"{record.method} {record.path}")
        if key not in self.findings:
            self.findings[key] = Finding(kind, record.type, record.method, record.path, success_on=success.instance,
                                         success_status=success.status)
        finding = self.findings[key]
        finding.success_on, finding.success_status = success.instance, success.status
        return finding

    def _confirm(self, seen: _Seen, record: Record) -> list[Finding]:
        out = []
        for failure in seen.failures:
            kind = "forgotten" if seen.success and failure.instance == seen.success.instance else self._kind(failure)
            finding = self.findings.get((kind, failure.type, f"{failure.method} {failure.path}"))
            if finding is not None and finding.status != "confirmed":
                finding.status = "confirmed"
                self._confirmed_keys.add(record.key)
                out.append(finding)
        return out


def _bound(table: dict, limit: int) -> None:  # type: ignore[type-arg]
    while len(table) > limit:
        del table[next(iter(table))]  # the oldest entry (dicts keep insertion order)


def join_disk(findings: Iterable[Finding], written: dict[str, set[str]]) -> None:
    """A finding whose succeeding instance wrote a file the path names is local disk, not memory."""
    for finding in findings:
        files = written.get(finding.success_on, set())
        name = finding.path.rsplit("/", 1)[-1]
        if finding.kind == "memory" and name and any(path.endswith("/" + name) or path == name for path in files):
            finding.kind = "disk"


def as_report(finding: Finding) -> dict[str, object]:
    """The finding as the report keeps it: kind, status, the requests (time, instance, status), rule, fix."""
    return {"kind": finding.kind, "type": finding.type, "status": finding.status,
            "request": f"{finding.method} {finding.path}", "line": finding.line(), "rule": RULE,
            "fix": FIXES[finding.kind], "evidence": [[round(t, 3), i, s] for t, i, s in finding.evidence]}
