"""The router's head rules, pure: what is refused, what is forwarded, how bodies are framed."""

import pytest

from procrun.router import http
from procrun.router.http import BadMessage, Request, Response


def req(method="GET", headers=((b"Host", b"a"),), version="1.1", keep=True, target=b"/"):
    return Request(method, target, version, tuple(headers), keep)


def test_host_and_version_rules():
    http.check(req())
    http.check(req(headers=(), version="1.0"))
    with pytest.raises(BadMessage, match="exactly one Host"):
        http.check(req(headers=()))
    with pytest.raises(BadMessage, match="exactly one Host"):
        http.check(req(headers=((b"Host", b"a"), (b"host", b"b"))))
    with pytest.raises(BadMessage, match="HTTP/2.0 is not spoken"):
        http.check(req(version="2.0"))


def test_request_head_drops_hop_by_hop_and_frames_once():
    r = req("POST", headers=((b"Host", b"a"), (b"Transfer-Encoding", b"chunked"), (b"Connection", b"close, te"),
                             (b"TE", b"trailers"), (b"Keep-Alive", b"5"), (b"X-Forwarded-For", b"10.0.0.1"),
                             (b"Cookie", b"s=1")))
    head = http.request_head(r, b"127.0.0.1", 12.5)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST / HTTP/1.1"
    assert lines.count(b"Transfer-Encoding: chunked") == 1  # regression: it was sent twice
    assert b"TE: trailers" not in lines and b"Keep-Alive: 5" not in lines
    assert b"X-Forwarded-For: 10.0.0.1, 127.0.0.1" in lines and b"X-Request-Start: t=12500" in lines
    assert b"Connection: keep-alive" in lines and b"Cookie: s=1" in lines
    assert head.endswith(b"\r\n\r\n")


def test_h2c_upgrade_is_stripped_and_websocket_kept():
    h2c = req(headers=((b"Host", b"a"), (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
                       (b"HTTP2-Settings", b"AAAA")))
    assert h2c.upgrade is None
    head = http.request_head(h2c, b"1.2.3.4", 0)
    assert b"h2c" not in head and b"HTTP2-Settings" not in head and b"Connection: keep-alive" in head
    ws = req(headers=((b"Host", b"a"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")))
    assert ws.upgrade == b"websocket"
    assert b"Upgrade: websocket" in http.request_head(ws, b"1.2.3.4", 0)


@pytest.mark.parametrize("status, method, headers, framing", [
    (200, "GET", ((b"Content-Length", b"5"),), "length"),
    (200, "GET", ((b"Transfer-Encoding", b"chunked"),), "chunked"),
    (200, "GET", (), "eof"),
    (200, "HEAD", ((b"Content-Length", b"5"),), "none"),
    (204, "GET", (), "none"), (304, "GET", ((b"Content-Length", b"5"),), "none"), (100, "POST", (), "none"),
])
def test_response_framing(status, method, headers, framing):
    assert http.response_framing(Response(status, b"X", headers), method) == framing


def test_response_head_frames_once_and_names_the_instance():
    response = Response(200, b"OK", ((b"Transfer-Encoding", b"chunked"), (b"Connection", b"keep-alive"),
                                     (b"Set-Cookie", b"s=1")))
    head = http.response_head(response, b"web.2", keep_alive=True, chunked=True)
    lines = head.split(b"\r\n")
    assert lines.count(b"Transfer-Encoding: chunked") == 1  # regression: responses carried it twice
    assert b"X-Procrun-Instance: web.2" in lines and b"Connection: keep-alive" in lines
    assert b"Set-Cookie: s=1" in lines


def test_retryable_means_idempotent_without_body():
    assert req("GET").retryable and req("DELETE").retryable
    assert not req("POST").retryable
    assert not req("PUT", headers=((b"Host", b"a"), (b"Content-Length", b"3"))).retryable
    assert req("PUT", headers=((b"Host", b"a"), (b"Content-Length", b"0"))).retryable


def test_chunks_and_errors():
    assert http.chunk(b"hello") == b"5\r\nhello\r\n"
    body = http.error_response(503, "none ready")
    assert body.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and body.endswith(b"\r\n\r\nnone ready\n")
    assert b"Content-Length: 11\r\n" in body and b"X-Procrun-Instance: router" in body
