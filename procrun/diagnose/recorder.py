"""The router's request records, for the memory rules: what a request was, never its values.

The client key is an HMAC, with a secret drawn for this session, of the cookies that
the backends themselves issued (an analytics cookie set by a script is not part of
it) and of Authorization. Query strings are dropped, cookie and header values are
never kept, printed or written.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.diagnose.memory import LOGIN_WORDS, Finding, Memory, Record

if TYPE_CHECKING:
    from procrun.router.http import Request, Response

# value.signature (Flask/itsdangerous, Django signing), s:value.sig (Express), value--digest (Rails)
SIGNED = re.compile(rb"^(?:s%3A|s:)?[A-Za-z0-9_\-+/=%]{8,}(?:\.[A-Za-z0-9_\-+/=%]{4,}){1,3}$|--[0-9a-f]{20,}$")


class Recorder:
    def __init__(self, report: Callable[[Finding], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.report = report  # told each finding when it is new or newly confirmed
        self.clock = clock
        self.memory = Memory()
        self._secret = os.urandom(32)
        self._issued: set[bytes] = set()  # names of cookies the backends set

    def record(self, request: Request, started: float, status: int, instance: str, pid: int,
               response: Response | None) -> None:
        set_cookie, login = False, False
        if response is not None:
            self._issued.update(response.cookies)
            set_cookie = bool(response.cookies)
            if response.location is not None and 300 <= status < 400:
                location = response.location.lower()
                login = any(word.encode() in location for word in LOGIN_WORDS)
        key, signed = self._key(request)
        path = request.target.split(b"?", 1)[0].decode("latin-1")
        record = Record(started, self.clock(), key, request.method, path, status, instance, pid, set_cookie,
                        login, signed, response is None)
        for finding in self.memory.feed(record):
            self.report(finding)

    def _key(self, request: Request) -> tuple[str, bool]:
        parts, signed = [], False
        for lowered, value in request.credentials:
            if lowered == b"authorization":
                parts.append(b"authorization=" + value)
            elif self._issued:
                for pair in value.split(b";"):
                    cookie, _, cookie_value = pair.strip().partition(b"=")
                    if cookie in self._issued:
                        parts.append(cookie + b"=" + cookie_value)
                        signed = signed or bool(SIGNED.search(cookie_value))
        if not parts:
            return "", False
        digest = hmac.new(self._secret, b"\0".join(sorted(parts)), hashlib.sha256).hexdigest()
        return digest[:16], signed
