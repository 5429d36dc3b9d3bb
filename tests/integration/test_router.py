"""The router in front of three real web instances."""

import base64
import http.client
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, free_base, wait_until, write_app

BACKEND = Path(__file__).with_name("backend.py")


@pytest.fixture
def routed(procrun, tmp_path):
    def start(*extra, count=3):
        write_app(tmp_path, f"web: exec {sys.executable} {BACKEND}\n")
        port = free_base()
        run = procrun("start", "--router", "-c", f"web={count}", "-p", str(port), "-t", "1",
                      "--restart", "on-failure", *extra)
        run.wait_count(r"web\.\d is ready on port", count)
        return run, port
    return start


def get(conn, path="/", method="GET", body=None, headers=None):
    headers = headers or {}
    conn.request(method, path, body=body, headers=headers,
                 encode_chunked=headers.get("Transfer-Encoding") == "chunked")
    response = conn.getresponse()
    return response, response.read()


def test_keep_alive_requests_spread_over_instances_with_headers(routed):
    run, port = routed()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    seen, socks = [], set()
    for _ in range(6):
        response, body = get(conn)
        assert response.status == 200
        socks.add(id(conn.sock))
        info = json.loads(body)
        assert response.getheader("X-Procrun-Instance") == info["name"]
        seen.append(info["name"])
    assert len(socks) == 1  # one keep-alive connection
    assert all(a != b for a, b in zip(seen, seen[1:]))  # never the same instance twice in a row
    assert set(seen) == {"web.1", "web.2", "web.3"}
    h = info["headers"]
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-proto"] == "http"
    assert h["x-request-start"].startswith("t=")
    conn.close()


def test_bodies_chunked_and_length_both_ways(routed):
    run, port = routed(count=2)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    response, body = get(conn, "/echo", "POST", body=b"x" * 100_000)
    assert response.status == 200 and b"got 100000 bytes" in body
    response, body = get(conn, "/echo", "POST", body=iter([b"hello ", b"chunked ", b"world"]),
                         headers={"Transfer-Encoding": "chunked"})
    assert body.endswith(b"got 19 bytes: hello chunked world")
    response, body = get(conn, "/chunked")
    assert response.status == 200 and json.loads(body)["name"].startswith("web.")
    conn.close()


def test_killed_instance_loses_no_request(routed):
    run, port = routed()
    pids = {p["name"]: p["pid"] for p in json.loads(ctl(run.cwd, "ps", "--json").stdout)}
    failures, statuses = [], []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(150):
            try:
                response, _ = get(conn)
                statuses.append(response.status)
            except Exception as exc:  # noqa: BLE001 - any failure is what we count
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    thread = threading.Thread(target=client)
    thread.start()
    wait_until(lambda: len(statuses) >= 20)
    os.kill(pids["web.2"], signal.SIGKILL)
    thread.join(timeout=60)
    assert failures == [] and statuses == [200] * 150
    run.wait_for(r"web\.2 stopped \(rc=-9\)")


def test_all_down_is_503_and_slow_is_504(routed):
    run, port = routed("--router-timeout", "0.5", count=1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    response, body = get(conn, "/slow")
    assert response.status == 504 and b"did not start a response within 0.5s" in body
    conn.close()
    assert ctl(run.cwd, "stop", "web", check=False).returncode == 0
    run.wait_for(r"web\.1 stopped")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    response, body = get(conn)
    assert response.status == 503
    assert b"no web instance is ready to take this request (web.1 stopped)" in body  # (procrun stop: stopped)
    conn.close()


def test_malformed_request_gets_400_and_router_keeps_serving(routed):
    run, port = routed(count=1)
    for garbage in [b"NONSENSE\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                    b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(garbage)
            assert s.recv(4096).startswith(b"HTTP/1.1 400 Bad Request")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert get(conn)[0].status == 200
    conn.close()


def test_websocket_echo_is_tunnelled(routed):
    run, port = routed(count=2)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        name = [l.split(b": ")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"x-procrun-instance")][0]
        for text in (b"one", b"two", b"three"):
            mask = os.urandom(4)
            s.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
            frame = s.recv(2)
            payload = s.recv(frame[1])
            assert payload == name + b" echoes " + text  # the same instance for the whole tunnel


def test_tcp_mode_balances_connections(routed):
    run, port = routed("--router-mode", "tcp", count=2)
    names = set()
    for _ in range(4):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        response, body = get(conn)
        names.add(json.loads(body)["name"])
        assert response.getheader("X-Procrun-Instance") is None  # bytes pass through untouched
        conn.close()
    assert names == {"web.1", "web.2"}
