"""The router in front of real servers: gunicorn and uvicorn (PyPI) and Python's http.server.

Chunked bodies both ways, Expect: 100-continue, HEAD, 204/304, keep-alive reuse of pooled
connections, and connections the server closes while idle in the pool.
"""

import hashlib
import http.client
import json
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import free_base, write_app

PY = sys.executable
BIN = Path(PY).parent
REPO = Path(__file__).resolve().parents[2]
PEERS = {
    "gunicorn": f"exec {BIN}/gunicorn --chdir {REPO} -b 127.0.0.1:$PORT -k gthread --threads 4 --keep-alive 1 "
                "--log-level warning tests.integration.peers:wsgi",
    "uvicorn": f"exec {BIN}/uvicorn --app-dir {REPO} --host 127.0.0.1 --port $PORT --timeout-keep-alive 1 "
               "--log-level warning tests.integration.peers:asgi",
    "http.server": f"exec {PY} {REPO}/tests/integration/peers.py",
}


@pytest.fixture(params=sorted(PEERS))
def peer(request, procrun, tmp_path):
    write_app(tmp_path, f"web: {PEERS[request.param]}\n")
    port = free_base()
    run = procrun("start", "--router", "-c", "web=2", "-p", str(port), "-t", "1", "--restart", "on-failure")
    run.wait_count(r"web\.\d is ready on port", 2, timeout=30)
    return request.param, port, run


@pytest.fixture
def connect():
    opened = []

    def open_one(port):
        opened.append(http.client.HTTPConnection("127.0.0.1", port, timeout=10))
        return opened[-1]
    yield open_one
    for conn in opened:
        conn.close()


def call(conn, method, path, body=None, headers=None, chunked=False):
    conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
    response = conn.getresponse()
    return response, response.read()


def raw_response(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, data
        data += more
    return data


def test_chunked_both_ways_and_framed_once(peer, connect):
    name, port, run = peer
    conn = connect(port)
    payload = [b"a" * 1000, b"b" * 70000, b"c"]
    response, body = call(conn, "POST", "/echo", body=iter(payload), chunked=True,
                          headers={"Transfer-Encoding": "chunked"})
    assert response.status == 200, body  # regression: gunicorn answered 400 to a doubled Transfer-Encoding
    info = json.loads(body)
    assert info["length"] == 71001 and info["sha256"] == hashlib.sha256(b"".join(payload)).hexdigest()
    response, body = call(conn, "GET", "/stream?n=300000")
    assert response.status == 200 and body == b"x" * 300000
    assert len(response.headers.get_all("Transfer-Encoding") or []) <= 1
    response, body = call(conn, "GET", "/sized?n=1000")
    assert body == b"x" * 1000 and response.getheader("Content-Length") == "1000"
    assert "Traceback" not in run.text()


def test_head_204_304_keep_the_connection_framed(peer, connect):
    name, port, run = peer
    conn = connect(port)
    response, body = call(conn, "HEAD", "/sized?n=5000")
    assert response.status == 200 and body == b"" and response.getheader("Content-Length") == "5000"
    response, body = call(conn, "GET", "/empty")
    assert response.status == 204 and body == b""
    response, body = call(conn, "GET", "/cached")
    assert response.status == 304 and body == b""
    response, body = call(conn, "HEAD", "/stream?n=100")
    assert response.status == 200 and body == b""
    response, body = call(conn, "GET", "/sized?n=10")  # the same connection is still in step
    assert response.status == 200 and body == b"x" * 10


def test_expect_100_continue(peer):
    name, port, run = peer
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        s.settimeout(1.5)
        try:
            first = s.recv(65536)  # a server that sends 100 Continue: it arrives; one that does not: no hang
        except socket.timeout:
            first = b""
        s.settimeout(10)
        s.sendall(b"hello")
        data = first
        while b'"length"' not in data:
            data += s.recv(65536)
        assert b"HTTP/1.1 200" in data and b'"length": 5' in data


def test_pooled_connections_are_reused_and_survive_the_servers_idle_close(peer, connect):
    name, port, run = peer
    conn = connect(port)
    ports = {}
    for _ in range(10):
        response, body = call(conn, "GET", "/echo")
        info = json.loads(body)
        ports.setdefault(info["name"], set()).add(info["port"])
    assert set(ports) == {"web.1", "web.2"}
    assert all(len(p) == 1 for p in ports.values()), ports  # one backend connection per instance, reused
    time.sleep(1.6)  # past the servers' own keep-alive timeout (1 s): they close the pooled connections
    for method in ("GET", "POST", "GET", "POST"):
        response, body = call(conn, method, "/echo", body=b"abc" if method == "POST" else None)
        assert response.status == 200, body  # an idle close never becomes a 502


def test_h2c_upgrade_is_stripped_and_served_as_http11(peer):
    name, port, run = peer
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                  b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /sized?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"xxx"):
            more = s.recv(65536)
            assert more, data
            data += more
    assert data.startswith(b"HTTP/1.1 200") and b"101" not in data.split(b"\r\n")[0]
    assert data.count(b"HTTP/1.1 200") == 2  # and the pipelined request after it
