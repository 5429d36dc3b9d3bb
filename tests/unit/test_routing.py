import pytest

from procrun.routing import (
    BadMessage,
    RoundRobin,
    error_response,
    forward_request,
    forward_response,
    framing,
    is_upgrade,
    keeps_alive,
    parse_request,
    parse_response,
)


def test_parse_request_and_forward_headers():
    head = parse_request(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1")
    assert head.start == ("GET", "/a?b=1", "HTTP/1.1") and head.get("host") == "x"
    out = forward_request(head, "127.0.0.1", 1700000000.5, upgrade=False).decode()
    assert out.startswith("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n")
    assert "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n" in out and "X-Forwarded-Proto: http\r\n" in out
    assert "X-Request-Start: t=1700000000500\r\n" in out and "Connection: close\r\n" in out
    assert "keep-alive" not in out and out.endswith("\r\n\r\n")


@pytest.mark.parametrize("raw", [
    b"GET /\r\n", b"GET / HTTP/2.0", b"G@T / HTTP/1.1", b"GET / HTTP/1.1\r\nNo colon here",
    b"GET / HTTP/1.1\r\nBad Name: x", b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4", b"POST / HTTP/1.1\r\nContent-Length: x",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip",
])
def test_bad_requests_are_rejected(raw):
    with pytest.raises(BadMessage):
        parse_request(raw)


def test_framing():
    assert framing(parse_request(b"GET / HTTP/1.1"), request=True) == ("none", 0)
    assert framing(parse_request(b"POST / HTTP/1.1\r\nContent-Length: 12"), request=True) == ("length", 12)
    assert framing(parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked"), request=True) == ("chunked", 0)
    assert framing(parse_response(b"HTTP/1.1 200 OK"), request=False) == ("eof", 0)
    assert framing(parse_response(b"HTTP/1.1 204 No Content\r\nContent-Length: 5"), request=False) == ("none", 0)
    assert framing(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5"), request=False, method="HEAD") == ("none", 0)


def test_keep_alive_and_upgrade():
    assert keeps_alive(parse_request(b"GET / HTTP/1.1"), "HTTP/1.1")
    assert not keeps_alive(parse_request(b"GET / HTTP/1.1\r\nConnection: close"), "HTTP/1.1")
    assert not keeps_alive(parse_request(b"GET / HTTP/1.0"), "HTTP/1.0")
    assert keeps_alive(parse_request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive"), "HTTP/1.0")
    assert is_upgrade(parse_request(b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket"))


def test_response_gets_instance_header():
    out = forward_response(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close"), "web.2", True)
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Procrun-Instance: web.2\r\nConnection: keep-alive\r\n\r\n"
    assert error_response(503, "Service Unavailable", "none ready").endswith(b"\r\n\r\nnone ready\n")


def test_round_robin_is_never_sticky():
    rr = RoundRobin()
    pool = ["web.1", "web.2", "web.3"]
    firsts = [rr.order(pool)[0] for _ in range(6)]
    assert firsts == ["web.1", "web.2", "web.3", "web.1", "web.2", "web.3"]
    assert sorted(rr.order(pool)) == pool  # every other instance is a retry candidate
    assert rr.order([]) == []
