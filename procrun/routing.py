"""HTTP/1.1 message heads and request balancing for the router. Pure.

Only what a reverse proxy needs: parse and re-render heads, decide how a body
is framed, whether the connection stays open, and which instance is next.
Anything ambiguous (bad request line, conflicting lengths, both
Content-Length and chunked) is rejected, so requests cannot be smuggled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

MAX_HEAD = 64 * 1024
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(rb"^HTTP/1\.[01]$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}


class BadMessage(ValueError):
    """A message the router will not forward (answered with 400 / 502)."""


@dataclass(frozen=True)
class Head:
    start: tuple[str, str, str]  # request: method, target, version; response: version, status, reason
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for v in self.all(name) for t in v.split(",") if t.strip()}


def _headers(lines: list[bytes]) -> tuple[tuple[str, str], ...]:
    out = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise BadMessage(f"malformed header line {line[:40]!r}")
        value = value.strip(b" \t")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise BadMessage("control characters in a header value")
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    return tuple(out)


def parse_request(data: bytes) -> Head:
    lines = data.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1] or not _VERSION.match(parts[2]):
        raise BadMessage(f"malformed request line {lines[0][:60]!r}")
    head = Head(tuple(p.decode("latin-1") for p in parts), _headers([l for l in lines[1:] if l]))  # type: ignore[arg-type]
    framing(head, request=True)  # validate now
    return head


def parse_response(data: bytes) -> Head:
    lines = data.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not _VERSION.match(parts[0]) or not parts[1].isdigit() or len(parts[1]) != 3:
        raise BadMessage(f"malformed status line {lines[0][:60]!r}")
    reason = parts[2] if len(parts) == 3 else b""
    return Head((parts[0].decode(), parts[1].decode(), reason.decode("latin-1")), _headers([l for l in lines[1:] if l]))


def framing(head: Head, request: bool, method: str = "GET") -> tuple[str, int]:
    """How the body after this head ends: ("length", n), ("chunked", 0), ("none", 0) or ("eof", 0)."""
    if not request:
        status = int(head.start[1])
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return ("none", 0)
    encodings = head.tokens("transfer-encoding")
    lengths = {v.strip() for v in head.all("content-length")}
    if encodings:
        if lengths:
            raise BadMessage("both Transfer-Encoding and Content-Length")
        if "chunked" not in encodings:
            if request:
                raise BadMessage("Transfer-Encoding without chunked")
            return ("eof", 0)
        return ("chunked", 0)
    if lengths:
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise BadMessage("invalid Content-Length")
        return ("length", int(next(iter(lengths))))
    return ("none", 0) if request else ("eof", 0)


def keeps_alive(head: Head, version: str) -> bool:
    tokens = head.tokens("connection")
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def is_upgrade(head: Head) -> bool:
    return "upgrade" in head.tokens("connection") and head.get("upgrade") is not None


def render(start: Sequence[str], headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [" ".join(s for s in start if s is not None).rstrip(" ")]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def forward_request(head: Head, client_ip: str, now: float, upgrade: bool) -> bytes:
    """The head sent to an instance: hop-by-hop headers dropped, forwarding headers added."""
    headers = [(k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP and
               k.lower() not in ("x-forwarded-for", "x-forwarded-proto", "x-request-start")]
    previous = head.get("x-forwarded-for")
    headers.append(("X-Forwarded-For", f"{previous}, {client_ip}" if previous else client_ip))
    headers.append(("X-Forwarded-Proto", head.get("x-forwarded-proto") or "http"))
    headers.append(("X-Request-Start", f"t={int(now * 1000)}"))
    if head.get("transfer-encoding"):
        headers.append(("Transfer-Encoding", "chunked"))
    if upgrade:
        headers += [("Connection", "Upgrade"), ("Upgrade", head.get("upgrade") or "")]
    else:
        headers.append(("Connection", "close"))
    return render(head.start, headers)


def forward_response(head: Head, instance: str, keep_alive: bool, upgrade: bool = False) -> bytes:
    headers = [(k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP]
    if upgrade:
        headers += [("Connection", "Upgrade"), ("Upgrade", head.get("upgrade") or "")]
    elif head.get("transfer-encoding"):
        headers.append(("Transfer-Encoding", "chunked"))
    headers.append(("X-Procrun-Instance", instance))
    if not upgrade:
        headers.append(("Connection", "keep-alive" if keep_alive else "close"))
    return render(head.start, headers)


def error_response(status: int, reason: str, text: str, close: bool = True) -> bytes:
    body = (text.rstrip("\n") + "\n").encode()
    head = render(("HTTP/1.1", str(status), reason), [
        ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
        ("X-Procrun-Instance", "router"), ("Connection", "close" if close else "keep-alive")])
    return head + body


T = TypeVar("T")


class RoundRobin:
    """Next instance per request, whatever the client: never sticky."""

    def __init__(self) -> None:
        self.counter = 0

    def order(self, pool: Sequence[T]) -> list[T]:
        """The pool rotated to start at the next instance: first choice, then retries."""
        if not pool:
            return []
        start = self.counter % len(pool)
        self.counter += 1
        return list(pool[start:]) + list(pool[:start])
