"""HTTP/1.1 heads for the router: what to forward, how a body is framed, answers
the router gives itself. Pure: parsing is llhttp's (httptools), this module only
decides.

Requests arrive parsed and validated by llhttp (conflicting or signed
Content-Length, Content-Length with Transfer-Encoding, a coding other than
chunked, obs-fold, bare LF and bad chunk sizes are its errors). Here: the rules
it leaves to the application (Host, the HTTP version) and the re-rendering of
heads with hop-by-hop headers dropped, the router's own added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_HEAD = 64 * 1024
Headers = Sequence[tuple[bytes, bytes]]
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade",
                        b"transfer-encoding", b"http2-settings"})
FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-request-start"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
REASONS = {400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported"}


class BadMessage(ValueError):
    """A message the router will not forward: answered 400 (or 502 from a backend)."""


def get(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def tokens(headers: Headers, name: bytes) -> set[bytes]:
    return {t.strip().lower() for key, value in headers if key.lower() == name for t in value.split(b",") if t.strip()}


@dataclass(frozen=True)
class Request:
    method: str
    target: bytes
    version: str  # "1.0" or "1.1"
    headers: Headers
    keep_alive: bool

    @property
    def chunked(self) -> bool:
        return b"chunked" in tokens(self.headers, b"transfer-encoding")

    @property
    def has_body(self) -> bool:
        length = get(self.headers, b"content-length")
        return self.chunked or (length is not None and length.strip() != b"0")

    @property
    def upgrade(self) -> bytes | None:
        """The protocol asked for by a tunnelled upgrade (WebSocket...); h2c is not one."""
        wanted = get(self.headers, b"upgrade")
        if wanted is None or b"upgrade" not in tokens(self.headers, b"connection"):
            return None
        return None if wanted.strip().lower() == b"h2c" else wanted

    @property
    def retryable(self) -> bool:
        """Safe to send again on another connection: idempotent and without a body."""
        return self.method in IDEMPOTENT and not self.has_body


def check(request: Request) -> None:
    """What llhttp leaves to us: the version, and Host on HTTP/1.1 (RFC 9112 3.2)."""
    if request.version not in ("1.0", "1.1"):
        raise BadMessage(f"HTTP/{request.version} is not spoken here; use HTTP/1.1")
    hosts = [v for k, v in request.headers if k.lower() == b"host"]
    if request.version == "1.1" and len(hosts) != 1:
        raise BadMessage("an HTTP/1.1 request needs exactly one Host header")


def _passed(headers: Headers) -> list[bytes]:
    return [k + b": " + v for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in FORWARDING]


def request_head(request: Request, client_ip: str, now: float) -> bytes:
    """The head sent to an instance: its own framing, keep-alive, forwarding headers added."""
    lines = [f"{request.method} ".encode() + request.target + f" HTTP/{request.version}".encode(),
             *_passed(request.headers)]
    previous = get(request.headers, b"x-forwarded-for")
    lines.append(b"X-Forwarded-For: " + (previous + b", " if previous else b"") + client_ip.encode())
    lines.append(b"X-Forwarded-Proto: " + (get(request.headers, b"x-forwarded-proto") or b"http"))
    lines.append(f"X-Request-Start: t={int(now * 1000)}".encode())
    if request.chunked:
        lines.append(b"Transfer-Encoding: chunked")
    if request.upgrade is not None:
        lines += [b"Connection: Upgrade", b"Upgrade: " + request.upgrade]
    else:
        lines.append(b"Connection: keep-alive")
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass(frozen=True)
class Response:
    status: int
    reason: bytes
    headers: Headers


def response_framing(response: Response, method: str) -> str:
    """How the body after this head ends: "none", "length", "chunked" or "eof"."""
    if method == "HEAD" or 100 <= response.status < 200 or response.status in (204, 304):
        return "none"
    if b"chunked" in tokens(response.headers, b"transfer-encoding"):
        return "chunked"
    if get(response.headers, b"content-length") is not None:
        return "length"
    return "eof"


def response_head(response: Response, instance: str, keep_alive: bool, chunked: bool, upgrade: bool = False) -> bytes:
    """The head sent to the client; ``chunked``: the router frames the body in chunks."""
    lines = [f"HTTP/1.1 {response.status} ".encode() + response.reason, *_passed(response.headers)]
    if upgrade:
        lines += [b"Connection: Upgrade", b"Upgrade: " + (get(response.headers, b"upgrade") or b"")]
    elif chunked:
        lines.append(b"Transfer-Encoding: chunked")
    lines.append(b"X-Procrun-Instance: " + instance.encode())
    if not upgrade:
        lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def informational(response: Response) -> bytes:
    """A 1xx (100 Continue...) passed on as it came, hop-by-hop headers dropped."""
    return b"\r\n".join([f"HTTP/1.1 {response.status} ".encode() + response.reason, *_passed(response.headers)]) \
        + b"\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def error_response(status: int, text: str, close: bool = True) -> bytes:
    body = (text.rstrip("\n") + "\n").encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nX-Procrun-Instance: router\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n")
    return head.encode() + body


def rotate(pool: Sequence[object], counter: int) -> list[object]:
    """The pool rotated to start at ``counter``: first choice, then retries. Never sticky."""
    if not pool:
        return []
    start = counter % len(pool)
    return list(pool[start:]) + list(pool[:start])


def describe_pool(states: Iterable[tuple[str, str]], type_name: str) -> str:
    states = list(states)
    why = ", ".join(f"{name} {state}" for name, state in states) or f"the formation has no {type_name} instances"
    return f"procrun router: no {type_name} instance is ready to take this request ({why})."
