"""State kept in process memory, seen from the router. Pure: request records in, findings out.

A client is known by a key (an HMAC of the cookies the backends issued and of
Authorization; never the values), and a session by its lineage: the response that
issued a key (a login POST included) names the instance that made the session. A safe
request (GET/HEAD) with that key rejected by another instance (401/403/404/410 or a
redirect to a login page) before it ever succeeded there is evidence at once; so is the
same safe request that succeeds on one instance and fails on another. A success that
fails on the same instance after it restarted is *forgotten on restart*. Nothing may
explain it: an unsafe request from that key or by anyone to that path, an overlapping
request of the key, an answer the router made itself, or another release (instances
that procrun restarted for a code or config change are a new release, and answers are
compared only within one). One transition is *suspected*; the verdict comes from
asking again: the same request replayed on the instance that issued the session (or
served its success), ``verified`` here, confirms it when that instance still answers
with success, and explains it away when it does not; a flap (success, failure, success
again) or failures on two other instances than the issuer confirm it too. Once
confirmed for a key, 5xx and 400/419/422 answers on other instances count as evidence.

The cause follows from what the session credential carries: data signed into the
cookie or token (Flask, itsdangerous, Django signed cookies, JWTs) that another instance
rejects means instances sign with different keys (*secret-key*); an opaque id means the
data behind it is in the issuing process (*memory*), or on its disk (*disk*, joined
with the files it wrote).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from procrun.diagnose.report import Kind, Status, pattern
from procrun.project.plan import type_of

SAFE = frozenset({"GET", "HEAD"})
LOGOUT_WORDS = ("logout", "log-out", "signout", "sign-out", "logoff")  # a GET that changes state
LOGIN_WORDS = ("login", "log-in", "signin", "sign-in", "auth")
FAILURE = frozenset({401, 403, 404, 410})
CSRF_OR_ERROR = frozenset({400, 419, 422})


def login_redirect(status: int, location: bytes | None) -> bool:
    """A redirect whose Location names a login page: the app forgot who the client is."""
    return 300 <= status < 400 and location is not None and any(
        word.encode() in location.lower() for word in LOGIN_WORDS)


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
    signed_cookie: bool = False  # the credential carries signed data (a Flask/Django signed cookie, a JWT)
    router_made: bool = False  # a 502/503/504 of the router's own
    issued: str = ""  # the key this response issued (the client's next key), "" when it set none
    release: int = 0  # the release of the instance that answered (a code or .env change makes a new one)

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
    def server_or_form_error(self) -> bool:
        """Evidence once a key is confirmed: a 5xx, or a form the instance refused (400/419/422)."""
        return self.status >= 500 or self.status in CSRF_OR_ERROR

    @property
    def unsafe(self) -> bool:
        return self.method not in SAFE or any(word in self.path.lower() for word in LOGOUT_WORDS)


@dataclass
class Finding:
    """One hidden-state finding from requests; ``evidence`` holds (time, instance, status) triples."""

    kind: Kind
    type: str
    method: str
    path: str
    status: Status = Status.SUSPECTED
    success_on: str = ""
    success_status: int = 0
    failures: list[tuple[str, int]] = field(default_factory=list)  # (instance, status)
    evidence: list[tuple[float, str, int]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    issued_by: str = ""  # "POST /login": the request whose answer made the session (lineage)
    replays: int = 0  # requests procrun replayed to decide

    @property
    def request(self) -> str:
        """``GET /uploads/<id>.txt``: the request, its path's generated parts grouped."""
        return f"{self.method} {self.path}"

    @property
    def key(self) -> tuple[str, str, str]:
        """One finding per cause: kind, type and request."""
        return self.kind, self.type, self.request

    def line(self) -> str:
        """The one line a developer sees: ``GET /me with the same session: 200 from web.1, 401 from web.3 (x4)``."""
        last_instance, last_status = self.failures[-1]
        count = f" (x{len(self.failures)})" if len(self.failures) > 1 else ""
        who = "the same session" if any(self.keys) else "the same client"
        where = f"{last_status} from {last_instance}" if self.kind != Kind.FORGOTTEN else \
            f"{last_status} from {last_instance} after it restarted"
        if self.issued_by:
            first = f"issued by {self.success_on} ({self.issued_by})"
        elif not self.success_status:
            first = f"{self.success_on} wrote the file it names"
        else:
            first = f"{self.success_status} from {self.success_on}"
        return f"{self.method} {self.path} with {who}: {first}, {where}{count} — {CAUSES[self.kind]}"


CAUSES = {
    Kind.MEMORY: "state kept in process memory (sessions?)",
    Kind.FORGOTTEN: "state kept in process memory, lost when the instance restarted",
    Kind.SECRET_KEY: "a per-instance secret key (secret_key = os.urandom(...)?): other instances reject its signed "
                  "cookies",
    Kind.DISK: "state kept on local disk: the instance that answered wrote it next to the code",
    Kind.TMPDIR: "a file kept in TMPDIR between requests: the instance that wrote it is the only one that has it",
}
FIXES = {
    Kind.MEMORY: "keep sessions in a backing store (Redis, a database) or in signed cookies with a shared secret; "
                 "if they already are in a shared store, the key that signs their ids differs per process: read "
                 "it from the environment",
    Kind.FORGOTTEN: "keep the state in a backing store (Redis, a database) that outlives the process",
    Kind.SECRET_KEY: "read the secret key from the environment (.env) so every instance shares it",
    Kind.DISK: "put files in object storage or a database, not on local disk",
    Kind.TMPDIR: "TMPDIR is for one request: keep what a later request needs in object storage or a database",
}
WRITTEN_FAILURE = frozenset({404, 410, 500, 502, 503})  # a request naming a file another instance wrote
RULE = "twelve-factor VI, Processes: stateless and share-nothing; memory and disk are a single-transaction cache"


@dataclass(frozen=True)
class Verify:
    """Ask again: replay ``record``'s request on ``instance`` (the one that issued the session or
    served its success); ``verified`` takes the answer."""

    finding: Finding
    record: Record
    instance: str


REPLAY_EVERY = 1.0  # seconds: at most one replay per type and path


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

    def __init__(self, window: int = 64, limit: int = 10_000, replay: bool = True, server_errors: bool = False) -> None:
        self.window = window
        self.limit = limit
        self.replay = replay  # replays are made (router.replay): a rejection waits for its verdict
        self.server_errors = server_errors  # router.replay: all: a 5xx after a success elsewhere is a suspicion too
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._recent: dict[str, list[Record]] = {}  # per key, the last few records (overlaps)
        self._issuer: dict[str, Record] = {}  # key -> the answer that issued it (its instance, release)
        self._succeeded: dict[str, set[str]] = {}  # key -> the instances it has succeeded on
        self._confirmed_keys: set[str] = set()
        self.findings: dict[tuple[str, str, str], Finding] = {}
        self.asks = Asks(limit)
        self._ask, self.pending = self.asks.ask, self.asks.pending  # replays to make; the caller takes them
        self.files = WrittenFiles(limit)
        self.wrote = self.files.wrote

    def feed(self, record: Record) -> list[Finding]:
        """The findings this record created or confirmed (each once)."""
        if record.router_made:
            return []
        overlapping = _note(self._recent, record, self.window, self.limit)
        if record.issued:
            self._issuer[record.issued] = record
            _bound(self._issuer, self.limit)
        if record.unsafe:
            self._forget(record)
            return []
        if record.set_cookie and record.key:
            self._issuer.setdefault(record.key, record)
        seen = self._seen.get((record.key, record.path, record.release))
        if seen is None:
            seen = self._seen[(record.key, record.path, record.release)] = _Seen()
            _bound(self._seen, self.limit)
        if record.success:
            if record.key:
                self._succeeded.setdefault(record.key, set()).add(record.instance)
                _bound(self._succeeded, self.limit)
            return self._on_success(seen, record)
        if overlapping:
            return []
        if record.status in WRITTEN_FAILURE and seen.success is None and self.files:
            named = self._named_file(record)
            if named:
                return named
        if record.failure and seen.success is None:
            return self._rejected(record)
        if record.failure or (record.status >= 500 and self.server_errors) \
                or (record.key in self._confirmed_keys and record.server_or_form_error):
            return self._on_failure(seen, record)
        return []

    def _rejected(self, record: Record) -> list[Finding]:
        """A session issued by one instance, rejected by another before it ever succeeded there."""
        issuer = self._issuer.get(record.key) if record.key else None
        if issuer is None or issuer.instance == record.instance or issuer.release != record.release \
                or record.instance in self._succeeded.get(record.key, ()):
            return []
        kind = self._kind(record)
        if kind == Kind.MEMORY and self.files.wrote_during(issuer.instance, f"{issuer.method} {issuer.path}"):
            kind = Kind.DISK  # the request that issued the session wrote a file: the session's own
        known = self.findings.get(_key(kind, record))
        if known is not None:  # more evidence for what is known
            self._add_failure(known, issuer, record)
            return []
        suspect = Finding(kind, record.type, record.method, pattern(record.path), success_on=issuer.instance,
                          success_status=issuer.status, issued_by=f"{issuer.method} {issuer.path}")
        self._add_failure(suspect, issuer, record)
        if self.replay and self._ask(suspect, record, issuer.instance):  # said once the issuer has answered
            return []
        return self.unasked(Verify(suspect, record, issuer.instance))

    def _named_file(self, record: Record) -> list[Finding]:
        """A request whose path names a file that another instance of this release wrote."""
        writer = self.files.writer_of(record.path)
        if writer is None or writer[0] == record.instance or writer[2] != record.release:
            return []
        instance, scratch, _ = writer
        kind = Kind.TMPDIR if scratch else Kind.DISK
        known = self.findings.get(_key(kind, record))
        if known is not None:
            self._add_failure(known, record, record)
            return []
        suspect = Finding(kind, record.type, record.method, pattern(record.path), success_on=instance)
        suspect.failures.append((record.instance, record.status))
        suspect.evidence.append((record.ended, record.instance, record.status))
        suspect.keys.add(record.key)
        if self.replay and self._ask(suspect, record, instance):
            return []
        return self.unasked(Verify(suspect, record, instance))

    def unasked(self, verify: Verify) -> list[Finding]:
        """A suspicion nobody will replay (replays off; its request excluded, with a body or unsafe):
        said as suspected, unless it is a page missing (404, 410) after a session was issued,
        which with nobody to ask looks the same as a page missing everywhere."""
        finding, record = verify.finding, verify.record
        if finding.key in self.findings or (finding.issued_by and record.status in (404, 410)):
            return []
        self.findings[finding.key] = finding
        return [finding]

    def verified(self, verify: Verify, status: int, login_redirect: bool, now: float) -> list[Finding]:
        """The replay's answer: the issuer still accepts the session (confirmed), or it does not
        either (explained: not instance-dependent)."""
        finding = verify.finding
        finding.replays += 1
        finding.evidence.append((now, verify.instance, status))
        key = finding.key
        known = self.findings.get(key)
        if not (200 <= status < 300 or status == 304):
            if known is finding and finding.status == Status.SUSPECTED and (status in FAILURE or login_redirect):
                finding.status = Status.EXPLAINED  # the issuer rejects it too: not instance-dependent
                return [finding]
            return []
        self._confirmed_keys.add(verify.record.key)
        finding.success_status = finding.success_status or status
        if known is None:  # a rejection waiting for its verdict
            finding.status = Status.CONFIRMED
            self.findings[key] = finding
            return [finding]
        if known.status == Status.CONFIRMED:
            return []
        known.status = Status.CONFIRMED
        if known is not finding:
            known.evidence += finding.evidence[-4:]
        return [known]

    def _forget(self, record: Record) -> None:
        """An unsafe request explains any change: for its key, and for its path for everyone."""
        for (key, path, release) in list(self._seen):
            if key == record.key or path == record.path:
                del self._seen[(key, path, release)]

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
        kind = self._kind(record, restarted=success.instance == record.instance)
        seen.failures.append(record)
        finding = self._finding(kind, success, record)
        new = not finding.failures
        self._add_failure(finding, success, record)
        issued = self._issuer.get(record.key)
        issuer = issued.instance if issued is not None else success.instance
        if finding.status == Status.SUSPECTED and sum(r.instance != issuer for r in seen.failures) >= 2:
            return self._confirm(seen, record)
        if success.instance != record.instance:  # after a restart, the issuer is gone: nobody to ask
            self._ask(finding, record, success.instance)
        return [finding] if new else []

    def _add_failure(self, finding: Finding, before: Record, record: Record) -> None:
        finding.failures.append((record.instance, record.status))
        del finding.failures[:-50]
        finding.evidence += [(before.ended, before.instance, before.status), (record.ended, record.instance,
                                                                              record.status)]
        del finding.evidence[:-20]
        finding.keys.add(record.key)

    def _kind(self, record: Record, restarted: bool = False) -> Kind:
        """Signed data rejected is a key the process made (a restart makes another); an opaque
        id rejected is state in memory, lost with the process when ``restarted``."""
        if record.signed_cookie:
            return Kind.SECRET_KEY
        return Kind.FORGOTTEN if restarted else Kind.MEMORY

    def _finding(self, kind: str, success: Record, record: Record) -> Finding:
        key = _key(kind, record)
        if key not in self.findings:
            self.findings[key] = Finding(kind, record.type, record.method, pattern(record.path),
                                         success_on=success.instance, success_status=success.status)
        finding = self.findings[key]
        finding.success_on, finding.success_status = success.instance, success.status
        return finding

    def _confirm(self, seen: _Seen, record: Record) -> list[Finding]:
        out = []
        for failure in seen.failures:
            kind = self._kind(failure, restarted=bool(seen.success and failure.instance == seen.success.instance))
            finding = self.findings.get(_key(kind, failure))
            if finding is not None and finding.status != Status.CONFIRMED:
                finding.status = Status.CONFIRMED
                self._confirmed_keys.add(record.key)
                out.append(finding)
        return out


def _note(recent_by_key: dict[str, list[Record]], record: Record, window: int, limit: int) -> bool:
    """Keep the client's last records; True when this one overlapped one of them (a client with
    requests in flight at once: which answered first explains nothing)."""
    recent = recent_by_key.get(record.key)
    if recent is None:
        recent = recent_by_key[record.key] = []
        _bound(recent_by_key, limit)
    overlapping = any(r.started < record.ended and record.started < r.ended for r in recent[-8:])
    recent.append(record)
    del recent[:-window]
    return overlapping and bool(record.key)


class Asks:
    """The replays the rules want made: a safe suspected request, at most one per type and path
    a second (``pending``, taken by the caller)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending: list[Verify] = []
        self._last: dict[tuple[str, str], float] = {}  # (type, path) -> when it was last replayed

    def ask(self, finding: Finding, record: Record, instance: str) -> bool:
        """Whether a replay will judge it: asked now, or one of the same path within the second
        (its verdict serves); not for an unsafe request or what is no longer suspected."""
        if finding.status != Status.SUSPECTED or record.method not in SAFE:
            return False
        key = (record.type, record.path)
        if record.ended - self._last.get(key, float("-inf")) < REPLAY_EVERY:
            return True
        self._last[key] = record.ended
        _bound(self._last, self.limit)
        self.pending.append(Verify(finding, record, instance))
        return True


class WrittenFiles:
    """Files the instances wrote, by name: a later request naming one that fails on another
    instance of the same release is evidence (TMPDIR used across requests, local disk)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_name: dict[str, tuple[str, bool, int]] = {}  # name -> (instance, in TMPDIR, release)
        self._during: set[tuple[str, str]] = set()  # (instance, "POST /login"): requests that wrote app files

    def wrote_during(self, instance: str, request: str) -> bool:
        return (instance, request) in self._during

    def wrote(self, instance: str, path: str, scratch: bool, release: int = 0, serving: str | None = None) -> None:
        if serving and not scratch:
            self._during.add((instance, serving))
            _bound_set(self._during, self.limit)
        name = path.rsplit("/", 1)[-1]
        if len(name) >= 6:  # a name that can identify a request's subject (an id), not "a" or "x.db"
            self._by_name[name] = self._by_name[name.split(".", 1)[0]] = (instance, scratch, release)
            _bound(self._by_name, self.limit)

    def writer_of(self, path: str) -> tuple[str, bool, int] | None:
        for segment in reversed(path.split("/")):
            writer = self._by_name.get(segment) or self._by_name.get(segment.split(".", 1)[0])
            if writer is not None:
                return writer
        return None

    def __bool__(self) -> bool:
        return bool(self._by_name)


def _bound_set(table: set, limit: int) -> None:  # type: ignore[type-arg]
    while len(table) > limit:
        table.pop()


def _key(kind: str, record: Record) -> tuple[str, str, str]:
    """One finding per cause: kind, type and request, the path's generated parts grouped
    (GET /uploads/3f2a9c1e.txt and GET /uploads/77ab01c2.txt are GET /uploads/<id>.txt)."""
    return kind, record.type, f"{record.method} {pattern(record.path)}"


def _bound(table: dict, limit: int) -> None:  # type: ignore[type-arg]
    while len(table) > limit:
        del table[next(iter(table))]  # the oldest entry (dicts keep insertion order)


def join_disk(findings: Iterable[Finding], written: dict[str, set[str]]) -> None:
    """A finding whose succeeding instance wrote a file the path names is local disk, not memory."""
    for finding in findings:
        files = {pattern(path) for path in written.get(finding.success_on, set())}
        name = finding.path.rsplit("/", 1)[-1]  # the request's path, generated parts grouped
        if finding.kind == Kind.MEMORY and name and any(path.endswith("/" + name) or path == name for path in files):
            finding.kind = Kind.DISK


def as_report(finding: Finding, epoch: float = 0.0) -> dict[str, object]:
    """The finding as the report keeps it: kind, status, the requests (time, instance, status), rule,
    fix. ``epoch`` turns the rules' clock (monotonic) into the report's (seconds since the epoch)."""
    return {"kind": finding.kind, "type": finding.type, "status": finding.status,
            "request": finding.request, "line": finding.line(), "rule": RULE,
            "fix": FIXES[finding.kind], "evidence": [[round(t + epoch, 3), i, s] for t, i, s in finding.evidence],
            "replays": finding.replays}
