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


class Request:
    """A request head as llhttp parsed it, its headers read once (this is the hot path)."""

    __slots__ = ("method", "target", "version", "headers", "keep_alive", "chunked", "has_body", "upgrade",
                 "hosts", "passed", "forwarded_for", "forwarded_proto", "credentials")

    def __init__(self, method: str, target: bytes, version: str, headers: Headers, keep_alive: bool) -> None:
        self.method, self.target, self.version, self.headers = method, target, version, headers
        self.keep_alive = keep_alive
        self.chunked = self.has_body = False
        self.hosts = 0
        self.forwarded_for: bytes | None = None
        self.forwarded_proto: bytes | None = None
        self.credentials: list[tuple[bytes, bytes]] = []  # Cookie and Authorization (the memory diagnosis keys)
        upgrade, connection, passed = None, b"", []
        for name, value in headers:
            key = name.lower()
            if key in HOP_BY_HOP:
                if key == b"transfer-encoding":
                    self.chunked = self.has_body = True  # llhttp admits chunked as the only coding
                elif key == b"upgrade":
                    upgrade = value
                elif key == b"connection":
                    connection += b"," + value.lower()
                continue
            if key in FORWARDING:
                if key == b"x-forwarded-for":
                    self.forwarded_for = value
                elif key == b"x-forwarded-proto":
                    self.forwarded_proto = value
                continue
            if key == b"host":
                self.hosts += 1
            elif key == b"content-length" and value.strip() != b"0":
                self.has_body = True
            elif key == b"cookie" or key == b"authorization":
                self.credentials.append((key, value))
            passed.append(name + b": " + value)
        self.passed = passed
        wanted = upgrade is not None and b"upgrade" in (t.strip() for t in connection.split(b","))
        # h2c is not tunnelled: the Upgrade is dropped and the request goes on as HTTP/1.1
        self.upgrade = upgrade if wanted and upgrade.strip().lower() != b"h2c" else None

    @property
    def retryable(self) -> bool:
        """Safe to send again on another connection: idempotent and without a body."""
        return self.method in IDEMPOTENT and not self.has_body


def check(request: Request) -> None:
    """What llhttp leaves to us: the version, and Host on HTTP/1.1 (RFC 9112 3.2)."""
    if request.version not in ("1.0", "1.1"):
        raise BadMessage(f"HTTP/{request.version} is not spoken here; use HTTP/1.1")
    if request.version == "1.1" and request.hosts != 1:
        raise BadMessage("an HTTP/1.1 request needs exactly one Host header")


def request_head(request: Request, client_ip: bytes, now: float) -> bytes:
    """The head sent to an instance: its own framing, keep-alive, forwarding headers added."""
    lines = [request.method.encode() + b" " + request.target + b" HTTP/" + request.version.encode(),
             *request.passed]
    previous = request.forwarded_for
    lines.append(b"X-Forwarded-For: " + (previous + b", " if previous else b"") + client_ip)
    lines.append(b"X-Forwarded-Proto: " + (request.forwarded_proto or b"http"))
    lines.append(b"X-Request-Start: t=%d" % int(now * 1000))
    if request.chunked:
        lines.append(b"Transfer-Encoding: chunked")
    if request.upgrade is not None:
        lines += [b"Connection: Upgrade", b"Upgrade: " + request.upgrade]
    else:
        lines.append(b"Connection: keep-alive")
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Response:
    """A response head as llhttp parsed it, its headers read once."""

    __slots__ = ("status", "reason", "headers", "chunked", "sized", "passed", "upgrade", "cookies", "set_cookies",
                 "location")

    def __init__(self, status: int, reason: bytes, headers: Headers) -> None:
        self.status, self.reason, self.headers = status, reason, headers
        self.chunked = self.sized = False
        self.upgrade: bytes | None = None
        self.cookies: list[bytes] = []  # names of the cookies it sets
        self.set_cookies: list[bytes] = []  # its Set-Cookie values, for the diagnosis (held no longer than the answer)
        self.location: bytes | None = None
        passed = []
        for name, value in headers:
            key = name.lower()
            if key in HOP_BY_HOP:
                if key == b"transfer-encoding":
                    self.chunked = self.chunked or b"chunked" in value.lower()
                elif key == b"upgrade":
                    self.upgrade = value
                continue
            if key == b"content-length":
                self.sized = True
            elif key == b"set-cookie":
                self.cookies.append(value.split(b"=", 1)[0].strip())
                self.set_cookies.append(value)
            elif key == b"location":
                self.location = value
            passed.append(name + b": " + value)
        self.passed = passed


def response_framing(response: Response, method: str) -> str:
    """How the body after this head ends: "none", "length", "chunked" or "eof"."""
    if method == "HEAD" or 100 <= response.status < 200 or response.status in (204, 304):
        return "none"
    if response.chunked:
        return "chunked"
    return "length" if response.sized else "eof"


def relay_framing(response: Response, request: Request) -> tuple[str, bool, bool]:
    """How the router relays this response: its framing, whether the router re-frames the body
    in chunks (an EOF-framed body to an HTTP/1.1 client), and whether the client connection stays open."""
    framing = response_framing(response, request.method)
    chunked_out = framing == "chunked" or (framing == "eof" and request.version == "1.1")
    keep = request.keep_alive and request.upgrade is None and (framing != "eof" or chunked_out)
    return framing, chunked_out, keep


def response_head(response: Response, instance: bytes, keep_alive: bool, chunked: bool, upgrade: bool = False) -> bytes:
    """The head sent to the client; ``chunked``: the router frames the body in chunks."""
    lines = [b"HTTP/1.1 %d " % response.status + response.reason, *response.passed]
    if upgrade:
        lines += [b"Connection: Upgrade", b"Upgrade: " + (response.upgrade or b"")]
    elif chunked:
        lines.append(b"Transfer-Encoding: chunked")
    lines.append(b"X-Procrun-Instance: " + instance)
    if not upgrade:
        lines.append(b"Connection: keep-alive" if keep_alive else b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def informational(response: Response) -> bytes:
    """A 1xx (100 Continue...) passed on as it came, hop-by-hop headers dropped."""
    return b"\r\n".join([b"HTTP/1.1 %d " % response.status + response.reason, *response.passed]) + b"\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def error_response(status: int, text: str, close: bool = True) -> bytes:
    body = (text.rstrip("\n") + "\n").encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nX-Procrun-Instance: router\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n")
    return head.encode() + body





def describe_pool(states: Iterable[tuple[str, str]], type_name: str) -> str:
    states = list(states)
    why = ", ".join(f"{name} {state}" for name, state in states) or f"the formation has no {type_name} instances"
    return f"procrun router: no {type_name} instance is ready to take this request ({why})."
