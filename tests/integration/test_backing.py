"""Backing-service chaos against a real Redis (Debian's redis-server, redis-py): proxies, faults,
verdicts; values left alone; bytes unchanged through the proxy; proxies gone with the session."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, free_base, wait_until, write_app

PY = sys.executable
HERE = Path(__file__).parent / "backing"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_port(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server here (scripts/test installs Debian's under CI)")
    pytest.importorskip("redis")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: accepts(port), timeout=10)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def accepts(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def report(root):
    return json.loads(ctl(root, "report", "--json").stdout)


def verdict(root, type_name, action):
    for v in report(root)["backing"]:
        if v["type"] == type_name and v["action"] == action:
            return v
    return None


def proxied_port(run, var):
    match = run.wait_for(rf"backing +\| {var} \S+ through 127\.0\.0\.1:(\d+)")
    return int(match[1])


def test_workers_are_judged_recovered_and_crashed(procrun, tmp_path, redis_port):
    write_app(tmp_path, f"steady: exec {PY} {HERE / 'steady.py'}\nfragile: exec {PY} {HERE / 'fragile.py'}\n"
                        "show: echo \"cache=$CACHE_URL remote=$REMOTE_URL\"; sleep 1000\n",
              __env=f"REDIS_URL=redis://localhost:{redis_port}/0\nCACHE_URL=rediss://localhost:6380\n"
                    "REMOTE_URL=postgres://db.example.com/app\n")
    run = procrun("start", "--chaos-backing", "--restart", "on-failure", "-p", str(free_base()), "--no-color")
    port = proxied_port(run, "REDIS_URL")
    run.wait_for(r"backing +\| CACHE_URL not proxied: TLS")
    run.wait_for(r"backing +\| REMOTE_URL not proxied: db\.example\.com is not a loopback host")
    run.wait_for(r"show\.1 +\| cache=rediss://localhost:6380 remote=postgres://db\.example\.com/app$")  # unchanged
    time.sleep(1.5)  # both connected through the proxy, and procrun knows who opened what
    ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL", "--action", "reset")
    run.wait_for(r"chaos +\| reset REDIS_URL")
    wait_until(lambda: verdict(tmp_path, "fragile", "reset") and verdict(tmp_path, "steady", "reset"), timeout=15)
    assert verdict(tmp_path, "fragile", "reset")["verdict"] == "crashed"
    assert verdict(tmp_path, "steady", "reset")["verdict"] == "recovered"
    time.sleep(1.5)
    ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL", "--action", "outage")
    wait_until(lambda: verdict(tmp_path, "steady", "outage"), timeout=20)
    assert verdict(tmp_path, "steady", "outage")["verdict"] == "recovered"
    assert "disposability: fragile crashed" in "\n".join(ctl(tmp_path, "report").stdout.splitlines())
    ps = ctl(tmp_path, "ps").stdout
    assert f"backing: REDIS_URL redis://localhost:{redis_port}/0 through 127.0.0.1:{port}" in ps
    run.signal(signal.SIGINT)
    run.wait()
    assert not accepts(port)  # the proxy is gone with the session


def test_a_web_type_without_timeouts_is_judged_hung_after_a_blackhole(procrun, tmp_path, redis_port):
    write_app(tmp_path, f"web: exec {PY} {HERE / 'web.py'}\n", __env=f"REDIS_URL=redis://127.0.0.1:{redis_port}\n")
    base = free_base()
    run = procrun("start", "--chaos-backing", "--router", "--router-timeout", "30", "-p", str(base), "--no-color")
    run.wait_for(r"web\.1 is ready on port")
    stop = threading.Event()

    def browse():
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", base, timeout=2)
            try:
                conn.request("GET", "/")
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.1)

    worker = threading.Thread(target=browse, daemon=True)
    worker.start()
    try:
        time.sleep(1.5)
        ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL", "--action", "blackhole")
        wait_until(lambda: verdict(tmp_path, "web", "blackhole"), timeout=20)
        assert verdict(tmp_path, "web", "blackhole")["verdict"] == "hung"
    finally:
        stop.set()
        worker.join(timeout=5)
    records = [json.loads(line) for line in ctl(tmp_path, "logs", "--json").stdout.splitlines()]
    assert any(r["k"] == "fault" and r["action"] == "blackhole" for r in records)
    run.signal(signal.SIGKILL)
    run.wait()


def test_bytes_pass_unchanged_and_the_proxy_dies_with_procrun(procrun, tmp_path):
    sink = tmp_path / "sink.py"
    sink.write_text(
        "import hashlib, socket, sys\n"
        "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    c, _ = s.accept(); h = hashlib.sha256(); n = 0\n"
        "    while n < 100 * 2**20:\n"
        "        d = c.recv(1 << 20)\n"
        "        if not d: break\n"
        "        h.update(d); n += len(d); c.sendall(d)\n"
        "    c.close()\n")
    port = free_port()
    server = subprocess.Popen([PY, str(sink), str(port)], stdout=subprocess.PIPE)
    try:
        assert server.stdout.readline() == b"ready\n"
        write_app(tmp_path, "web: sleep 1000\n", __env=f"SINK_URL=http://localhost:{port}\n")
        run = procrun("start", "--chaos-backing", "-p", str(free_base()), "--no-color")
        proxy = proxied_port(run, "SINK_URL")
        data = os.urandom(1 << 20) * 100  # 100 MB
        back = hashlib.sha256()
        with socket.create_connection(("127.0.0.1", proxy)) as c:
            reader = threading.Thread(target=lambda: _read_all(c, len(data), back))
            reader.start()
            c.sendall(data)
            reader.join(timeout=60)
        assert back.hexdigest() == hashlib.sha256(data).hexdigest()
        run.proc.kill()
        run.wait()
        wait_until(lambda: not accepts(proxy), timeout=5)
    finally:
        server.kill()
        server.wait()
        server.stdout.close()


def _read_all(sock, n, digest):
    got = 0
    while got < n:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        digest.update(chunk)
        got += len(chunk)


def test_latency_delays_bytes_without_reordering_them():
    """Regression: delayed chunks each had their own timer, and timers due at the same moment
    ran in any order; a stream through a latency fault came out shuffled."""
    import asyncio
    import random

    from procrun.backing.proxy import Proxy
    from procrun.backing.urls import Backing

    async def echo(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        proxy = Proxy(Backing("X", "http://localhost", "http", "127.0.0.1", port), free_port(),
                      random.Random(1).random)
        await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        payload = b"".join(b"%06d" % i for i in range(2000))
        await proxy.begin("latency", 0.02)
        for i in range(0, len(payload), 600):
            writer.write(payload[i:i + 600])
            await writer.drain()
            await asyncio.sleep(0.001)
        await proxy.end()
        got = b""
        while len(got) < len(payload):
            got += await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
        await proxy.close()
        server.close()
        await server.wait_closed()
        return got == payload

    assert asyncio.run(main())
