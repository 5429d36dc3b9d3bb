"""The router under faults and hostile clients: each numbered defect of the router issue,
smuggling attempts, slowloris, a low fd limit, fuzzed requests and gigabyte bodies."""

import os
import resource
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import Run, ctl, free_base, write_app

PY = sys.executable
HERE = Path(__file__).parent


def session(procrun, root, command, count=1, preexec=None):
    write_app(root, f"web: exec {PY} {command}\n")
    port = free_base()
    run = procrun("start", "--router", "-c", f"web={count}", "-p", str(port), "-t", "0.5", "--restart",
                  "on-failure", preexec=preexec)
    run.wait_count(r"web\.\d is ready on port", count, timeout=20)
    return run, port


def send(port, data: bytes, timeout=5.0) -> bytes:
    """Send raw bytes; everything the router answers until it closes (or the deadline)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                more = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return out + b"<reset>"
            if not more:
                break
            out += more
        return out


def get_ok(port) -> bool:
    return send(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_started_response_that_fails_is_truncated_not_glued_to_a_502(procrun, tmp_path):
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    data = send(port, b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nhello world!")
    assert b"HTTP/1.1 502" not in data


def test_oversized_response_head_is_a_502(procrun, tmp_path):
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    data = send(port, b"GET /bighead HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 502 Bad Gateway")
    assert get_ok(port)
    assert "Traceback" not in run.text() and "never retrieved" not in run.text()


def test_a_connection_the_backend_closes_after_answering_is_not_reused_into_a_502(procrun, tmp_path):
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for path in (b"/close", b"/", b"/close", b"/", b"/"):
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"ok"):
                data += s.recv(65536)
            assert data.startswith(b"HTTP/1.1 200"), data


@pytest.mark.parametrize("raw, words", [
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", b"chunk size"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: cow\r\n\r\n0\r\n\r\n",
     b"Transfer-Encoding"),
    (b"GET / HTTP/1.1\r\n\r\n", b"Host"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     b"Content-Length"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", b"Content-Length"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", b"whitespace"),
    (b"GET / HTTP/1.1\nHost: x\n\n", b"CRLF"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", b"Content-Length"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
])
def test_smuggling_and_malformed_requests_get_400_at_once(procrun, tmp_path, raw, words):
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    started = time.monotonic()
    data = send(port, raw)
    assert data.split(b"\r\n")[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 431 Request Header Fields Too Large")
    assert words in data and time.monotonic() - started < 4  # regression: a bad chunk size waited for a 504
    assert get_ok(port)


def test_slowloris_connections_never_block_other_clients(procrun, tmp_path):
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    stop = threading.Event()
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]

    def drip():
        while not stop.is_set():
            for s in slow:
                try:
                    s.send(b"G")
                except OSError:
                    pass
            stop.wait(1.0)
    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        answered = sum(get_ok(port) for _ in range(50))
        assert answered == 50
        assert ctl(tmp_path, "ps").returncode == 0
    finally:
        stop.set()
        thread.join()
        for s in slow:
            s.close()


def test_idle_connections_under_a_low_fd_limit_leave_the_control_socket_served(procrun, tmp_path):
    """Regression: under ulimit -n 100, 150 idle connections stopped the router and the control socket."""
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))  # noqa: E731
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py", preexec=limit)
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        assert ctl(tmp_path, "ps").returncode == 0
        started = time.monotonic()
        answer = send(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # over the cap: a 503, or closed at once when many are being refused; never a hang
        assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503")) or answer in (b"", b"<reset>")
        assert time.monotonic() - started < 4
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while not get_ok(port):
        assert time.monotonic() < deadline
    assert "out of system resource" not in run.text()


@pytest.fixture(scope="module")
def fuzz_session(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    write_app(root, f"web: exec {PY} {HERE / 'rawbackend.py'}\n")
    port = free_base()
    run = Run(["start", "--router", "-p", str(port), "-t", "0.5", "--restart", "on-failure"], root)
    try:
        run.wait_for(r"web\.1 is ready on port", timeout=20)
        yield run, port
    finally:
        run.cleanup()


PARTS = [b"GET", b"POST", b"HEAD", b" ", b"/", b"/x?a=1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b"\r\n", b"\n",
         b"Host: x", b"Content-Length: 3", b"Content-Length: -1", b"Transfer-Encoding: chunked",
         b"Transfer-Encoding: gzip", b"Connection: close", b"Connection: Upgrade", b"Upgrade: h2c",
         b"Expect: 100-continue", b":", b"\x00", b"\xff", b"abc", b"0\r\n\r\n", b"3\r\nabc\r\n", b"ffffffffffffffffff\r\n"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PARTS), max_size=25).map(b"".join), st.binary(max_size=40))
def test_fuzzed_requests_end_forwarded_refused_or_closed(fuzz_session, head, noise):
    run, port = fuzz_session
    data = send(port, head + b"\r\n\r\n" + noise, timeout=3)
    assert data in (b"", b"<reset>") or data.startswith(b"HTTP/1.1 "), data[:200]
    assert get_ok(port)  # the router keeps serving a well-formed client
    assert "Traceback" not in run.text()


def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_gigabyte_streams_both_ways_with_flat_memory(procrun, tmp_path):
    import http.client

    run, port = session(procrun, tmp_path, HERE / "peers.py")
    before = _rss_kib(run.proc.pid, "VmRSS")
    size, block = 1 << 30, b"u" * (1 << 20)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/sink", body=(block for _ in range(size // len(block))),
                     headers={"Content-Length": str(size)})
        response = conn.getresponse()
        assert response.status == 200 and response.read() == str(size).encode()
        conn.request("GET", f"/sized?n={size}")
        response = conn.getresponse()
        received = 0
        while chunk := response.read(1 << 20):
            received += len(chunk)
        assert received == size
    finally:
        conn.close()
    peak = _rss_kib(run.proc.pid, "VmHWM")
    assert peak - before < 32 * 1024, (before, peak)  # never the body in memory: a few buffers at most


def test_a_client_that_half_closes_after_its_request_gets_its_answer(procrun, tmp_path):
    """Regression (#27): `nc -N` and some health checks send the request, then shutdown(SHUT_WR);
    the router had no eof_received and the client got nothing (the instance answers 200)."""
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    for request in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /early HTTP/1.1\r\nHost: x\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            data = b""
            while more := s.recv(65536):  # the router closes once it has answered
                data += more
        assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1 200") == request.count(b"GET"), data


@pytest.mark.parametrize("request_", [
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /more HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n\x00garbage that is not HTTP",
    b"GET / HTTP/1.0\r\n\r\nanything at all",
])
def test_a_request_that_closes_the_connection_is_answered_whatever_follows_it(procrun, tmp_path, request_):
    """Regression (#27): bytes after a Connection: close (or HTTP/1.0) request in the same write
    got `400 Data after Connection: close` instead of the answer. Servers ignore them."""
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    data = send(port, request_)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok") and b"400" not in data, data


def test_informational_answers_never_reach_an_http_1_0_client(procrun, tmp_path):
    """Regression (#27): a 103 (or 102) was forwarded to HTTP/1.0 clients, which have no 1xx and
    take it for the answer."""
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py")
    old = send(port, b"GET /early HTTP/1.0\r\n\r\n")
    assert old.startswith(b"HTTP/1.1 200") and b"103" not in old, old
    new = send(port, b"GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert new.startswith(b"HTTP/1.1 103 Early Hints\r\n") and b"HTTP/1.1 200" in new  # 1.1 clients get it


def test_a_crowd_over_the_client_cap_is_answered_503_never_closed_unanswered(procrun, tmp_path):
    """Regression (#27): beyond 16 refusals at once, clients over the cap were closed unanswered
    (ulimit -n 1024, 2,000 clients: 1,482 saw EOF, 48 a 503). Each now gets an answer: served,
    or 503 (the backlog waits while every refusal slot is busy)."""
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))  # noqa: E731
    run, port = session(procrun, tmp_path, HERE / "rawbackend.py", preexec=limit)
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(150)]  # the cap, taken
    answers = {}

    def client():
        got = send(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=20)
        key = got[:12].decode("latin-1") or "EOF"
        answers[key] = answers.get(key, 0) + 1

    try:
        threads = [threading.Thread(target=client) for _ in range(400)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        for s in held:
            s.close()
    assert sum(answers.values()) == 400
    assert set(answers) <= {"HTTP/1.1 503", "HTTP/1.1 200"} and answers.get("HTTP/1.1 503", 0) > 0, answers
