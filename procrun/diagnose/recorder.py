"""The router's request records, for the memory rules: what a request was, never its values.

The client key is an HMAC, with a secret drawn for this session, of the cookies that
the backends themselves issued (an analytics cookie set by a script is not part of
it) and of Authorization. A response that sets cookies issues the client's next key,
computed the same way, so a session is followed from the instance that made it (a
login POST's answer) to the one that rejects it. Query strings are dropped; cookie and
header values are never kept past the request, printed or written: a request the rules
want verified is handed to ``replay`` (the router sends it once more to one instance)
and forgotten when that answer comes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.diagnose.answers import Difference, eligible
from procrun.diagnose.memory import SAFE, Finding, Memory, Record, Verify, login_redirect
from procrun.diagnose.report import pattern
from procrun.diagnose.sampling import Compared, Sampler

if TYPE_CHECKING:
    from procrun.router.http import Request, Response

# A credential that carries signed data, not an id: base64 JSON (eyJ: '{"'), zlib-compressed
# (.eJ: Flask, Django signed cookies), JWTs, Rails' value--digest. express-session's s%3A<id>.<sig>
# and random ids are opaque: the data behind them lives in the process that made them. The
# prefix alone is not enough: a random 32-character id starts with eyj one time in 20,000 (a
# client that logs in thousands of times meets one), so the segment must decode to JSON text.
SIGNED = re.compile(rb"^(?:[Bb]earer )?(\.eJ[A-Za-z0-9_\-+/]{4,}|eyJ[A-Za-z0-9_\-+/]{4,})")
RAILS = re.compile(rb"^[A-Za-z0-9+/%]{20,}(?:%3D|=){0,2}--[0-9a-fA-F]{20,}")
CLEARED = re.compile(rb";\s*max-age=0\b|;\s*expires=[^;]*19[0-9]{2}\b", re.IGNORECASE)
# Never replayed: a request whose path or query may change state or spend a one-time token.
REPLAY_EXCLUDE = ("login", "logout", "signin", "signout", "sign-in", "sign-out", "log-in", "log-out", "callback",
                  "confirm", "verify", "activate", "reset", "token", "oauth", "unsubscribe")

Replay = Callable[["Request", str, Callable[[int, bool], None]], None]  # (request, instance, on answer)
# (request, instance, on its result: the differences or None, and the two instances compared) -> started
Compare = Callable[["Request", str, Callable[[list[Difference] | None, tuple[str, ...]], None]], bool]


class Recorder:
    def __init__(self, report: Callable[[Finding], None], clock: Callable[[], float] = time.monotonic,
                 replay: Replay | None = None, release_of: Callable[[str], int] = lambda name: 0,
                 exclude: tuple[str, ...] = REPLAY_EXCLUDE, server_errors: bool = False) -> None:
        self.report = report  # told each finding when it is new, newly confirmed or explained
        self.clock = clock
        self.replay = replay  # None: nothing is replayed (router.replay: off)
        self.release_of = release_of
        self.exclude = tuple(word.encode() for word in exclude)
        self.memory = Memory(replay=replay is not None, server_errors=server_errors)
        self._secret = os.urandom(32)
        self._issued: set[bytes] = set()  # names of cookies the backends set
        self.compare: Compare | None = None  # router.compare: answers compared across instances
        self.sampler: Sampler | None = None
        self.compared: Callable[[Compared], None] = lambda found: None  # told each new or stronger finding
        self._names: dict[bytes, str] = {}  # a GET's target -> its request pattern, "" when never replayed

    def record(self, request: Request, started: float, status: int, instance: str, pid: int,
               response: Response | None) -> None:
        set_cookie, login, issued = False, False, ""
        if response is not None:
            self._issued.update(response.cookies)
            set_cookie = bool(response.cookies)
            login = login_redirect(status, response.location)
            if set_cookie:
                issued = self._next_key(request, response)
        key, carries_data = self._key(request)
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        record = Record(started, self.clock(), key, request.method, path, status, instance, pid, set_cookie,
                        login, carries_data, response is None, issued, self.release_of(instance))
        for finding in self.memory.feed(record):
            self.report(finding)
        self._verify(request)
        if self.sampler is not None:
            self._sample(request, record, response)

    def _sample(self, request: Request, record: Record, response: Response | None) -> None:
        """router.compare: a safe answer the sampler picks is compared across instances."""
        sampler = self.sampler
        assert sampler is not None and self.compare is not None
        sampler.note(record.key, record.unsafe, record.issued)
        if response is None or request.method != "GET" or not 200 <= record.status < 300 or request.has_body:
            return
        name = self._names.get(request.target)  # (the pattern and the exclusions, once per target)
        if name is None:
            name = self._names[request.target] = f"GET {pattern(record.path)}" if self.replayable(request) else ""
            if len(self._names) > 10_000:
                self._names.clear()
        if not name or not sampler.due(record.type, name) or not eligible(record.status, response.headers) \
                or not sampler.wants(record.type, name, record.key):
            return
        started = time.time()

        def done(differences: list[Difference] | None, instances: tuple[str, ...]) -> None:
            found = sampler.judged(record.type, name, differences, instances, record.status, started)
            if found is not None:
                self.compared(found)

        if not self.compare(request, record.instance, done):
            sampler.judged(record.type, name, None, (), 0, started)

    def wrote(self, instance: str, path: str, scratch: bool, serving: str | None = None) -> None:
        """An instance wrote a file (in TMPDIR when ``scratch``) while ``serving`` a request: a later
        request naming it may fail elsewhere, and a session that request issued lives on disk."""
        self.memory.wrote(instance, path, scratch, self.release_of(instance), serving)

    def _verify(self, request: Request) -> None:
        """Replay what the rules want verified, when the request is safe to send again; one that
        is not (excluded, or with a body) is judged as with replays off, never dropped."""
        pending = self.memory.pending[:]
        self.memory.pending.clear()
        for verify in pending:
            if self.replay is None or not self.replayable(request):
                for finding in self.memory.unasked(verify):
                    self.report(finding)
                continue
            self.replay(request, verify.instance, lambda status, login, v=verify: self._answered(v, status, login))

    def replayable(self, request: Request) -> bool:
        target = request.target.lower()
        return request.method in SAFE and not request.has_body and not any(w in target for w in self.exclude)

    def _answered(self, verify: Verify, status: int, login: bool) -> None:
        for finding in self.memory.verified(verify, status, login, self.clock()):
            self.report(finding)

    def _key(self, request: Request, overlay: dict[bytes, bytes | None] | None = None) -> tuple[str, bool]:
        """The client key of a request (with ``overlay``: of the request that will follow it)."""
        parts, data = [], False
        cookies: dict[bytes, bytes | None] = {}
        for lowered, value in request.credentials:
            if lowered == b"authorization":
                parts.append(b"authorization=" + value)
                data = data or carries_data(value)
            elif self._issued:
                for pair in value.split(b";"):
                    cookie, _, cookie_value = pair.strip().partition(b"=")
                    if cookie in self._issued:
                        cookies[cookie] = cookie_value
        cookies.update(overlay or {})
        for cookie, cookie_value in cookies.items():
            if cookie_value is not None:
                parts.append(cookie + b"=" + cookie_value)
                data = data or carries_data(cookie_value)
        if not parts:
            return "", False
        digest = hmac.new(self._secret, b"\0".join(sorted(parts)), hashlib.sha256).hexdigest()
        return digest[:16], data

    def _next_key(self, request: Request, response: Response) -> str:
        """The key the client will send next: its cookies with the ones this answer set (or cleared)."""
        overlay: dict[bytes, bytes | None] = {}
        for header in response.set_cookies:
            pair = header.split(b";", 1)[0]
            name, _, value = pair.partition(b"=")
            overlay[name.strip()] = None if not value.strip() or CLEARED.search(header) else value.strip()
        return self._key(request, overlay)[0]


def carries_data(value: bytes) -> bool:
    """The credential carries signed data (JSON in base64, maybe compressed; Rails' data--digest)."""
    match = SIGNED.match(value)
    if match is None:
        return RAILS.match(value) is not None
    segment = match.group(1)
    raw = segment.lstrip(b".").replace(b"+", b"-").replace(b"/", b"_")
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        if segment.startswith(b"."):  # zlib: its header skipped, raw deflate (no checksum to wait for)
            data = zlib.decompressobj(-15).decompress(data[2:], 64)
    except (binascii.Error, ValueError, zlib.error):
        return False
    head = data[:48].decode("utf-8", "ignore")
    return head[:1] in ("{", "[") and len(head) >= min(len(data), 48) - 3 and head.isprintable()
