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

    from procrun.backing.faults import make
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
        proxy = Proxy(Backing("X", "http://localhost", "http", "127.0.0.1", port), free_port(), random.Random(1))
        await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        payload = b"".join(b"%06d" % i for i in range(2000))
        await proxy.begin(make("latency", {"latency": "20", "jitter": "10"}))
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


class FakeSession:
    """What the backing service asks of its session, and the lines it said."""

    machine = type("Machine", (), {"ending": None})()
    chaos = None
    journal = type("Journal", (), {"event": staticmethod(lambda *a: None)})()

    def __init__(self):
        from types import SimpleNamespace

        self.said = []
        self.report = SimpleNamespace(backing=None, backing_counts={}, backing_map=[])

    def say(self, text, source="system"):
        self.said.append(text)


def test_short_connections_leave_no_descriptor_behind():
    """Regression (#26): a connection both ends closed normally (each half-closes, as a client
    that sends its request, shuts down writing and reads the reply does) stayed open in procrun,
    two descriptors a connection, until it ran out of them."""
    import asyncio
    import random

    from procrun.backing.proxy import Proxy
    from procrun.backing.urls import Backing

    async def answer(reader, writer):  # reads the request to its end, answers, closes
        await reader.read()
        writer.write(b"+OK\r\n")
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        proxy = Proxy(Backing("X", "redis://localhost", "redis", "127.0.0.1", server.sockets[0].getsockname()[1]),
                      free_port(), random.Random(1))
        await proxy.start()
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(300):
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"PING\r\n")
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b"+OK\r\n"
            writer.close()
            await writer.wait_closed()
        for _ in range(100):  # the proxy closes its ends as the last FINs arrive
            if not proxy.links:
                break
            await asyncio.sleep(0.02)
        after = len(os.listdir("/proc/self/fd"))
        left = len(proxy.links)
        await proxy.close()
        server.close()
        await server.wait_closed()
        return left, after - before

    left, grown = asyncio.run(main())
    assert left == 0 and grown <= 5, (left, grown)


def test_a_scheduled_fault_due_during_another_is_skipped_and_the_schedule_goes_on():
    """Regression (#26): a fault due while its service was under another raised inside the timer,
    and the schedule was never armed again (1-2 faults in 25 s at --chaos-interval 1)."""
    import asyncio

    from procrun.backing.faults import make
    from procrun.backing.service import BackingService, proxies_for
    from procrun.backing.urls import Backing

    session = FakeSession()
    said = session.said

    async def main():
        service = BackingService(session, None, proxies_for([Backing("X", "redis://localhost", "redis", "127.0.0.1", 1)]),
                                 [], seed=3, interval=0.01, scheduled=True, routed_type=None)
        service.proxies["X"].fault = make("latency")  # a long fault under way
        service._arm()
        await asyncio.sleep(0.5)
        await service.close()
        return service

    service = asyncio.run(main())
    assert service.scheduled_count >= 5 and service.skipped_count == service.scheduled_count
    assert all("skipped: it is under a latency fault" in line for line in said)


def test_a_password_in_a_service_url_is_never_shown():
    from procrun.backing.urls import rewrite, shown

    assert shown("postgres://app:s3cret@localhost:5432/db") == "postgres://app:***@localhost:5432/db"
    assert shown("redis://localhost:6379/0") == "redis://localhost:6379/0"
    assert shown("redis://:s3cret@localhost/0") == "redis://:***@localhost/0"
    assert "s3cret" in rewrite("postgres://app:s3cret@localhost:5432/db", 7000)  # the app still gets it


def test_credentials_in_a_service_url_never_reach_what_procrun_writes(procrun, tmp_path):
    """Regression (#26): user:password from a proxied URL was printed in the backing line, `ps`,
    report.json and the journal. The app still receives it."""
    got = tmp_path / "got-url"
    root = write_app(tmp_path / "app", f"web: echo \"$DB_URL\" > {got}; sleep 1000\n",
                     __env=f"DB_URL=postgres://app:s3cret-pw@localhost:{free_port()}/db\n")
    run = procrun("start", "--chaos-backing", "-p", str(free_base()), "--no-color", cwd=root)
    run.wait_for(r"backing +\| DB_URL postgres://app:\*\*\*@localhost:\d+/db through 127\.0\.0\.1:\d+")
    wait_until(lambda: got.exists() and got.read_text().strip(), timeout=10)
    assert "s3cret-pw" in got.read_text()  # the app's own URL keeps its password
    ps = ctl(root, "ps", "--json").stdout
    run.signal(signal.SIGINT)
    run.wait()
    written = [p.read_text(errors="replace") for p in (root / ".procrun").rglob("*") if p.is_file()]
    assert "s3cret-pw" not in run.text() and "s3cret-pw" not in ps
    assert written and not any("s3cret-pw" in text for text in written)


def test_a_proxy_port_taken_during_an_outage_is_retried_not_lost():
    """Regression (#26): another socket on the proxy's port when an outage ended raised in the
    fault's task ("Task exception was never retrieved") and the service stayed refused."""
    import asyncio
    import random

    from procrun.backing.faults import make
    from procrun.backing.service import BackingService, proxies_for
    from procrun.backing.urls import Backing

    session = FakeSession()
    said = session.said

    async def main():
        service = BackingService(session, None, proxies_for([Backing("X", "redis://localhost", "redis", "127.0.0.1", 1)]),
                                 [], seed=3, interval=30, scheduled=False, routed_type=None)
        proxy = service.proxies["X"]
        await proxy.start()
        await proxy.begin(make("outage"))
        squatter = socket.create_server(("127.0.0.1", proxy.port))  # takes the port meanwhile
        ending = asyncio.ensure_future(service._end(proxy))
        await asyncio.sleep(0.3)
        still_out = proxy.fault.kind == "outage" and not ending.done()
        squatter.close()
        await asyncio.wait_for(ending, 5)
        back = accepts(proxy.port)
        await proxy.close()
        return still_out, back, proxy.fault

    still_out, back, fault = asyncio.run(main())
    assert still_out and back and fault is None
    assert [line for line in said if "cannot listen" in line and "retrying" in line]


SAYS = ("import socket, sys\n"
        "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
        "while True:\n"
        "    c, _ = s.accept(); c.sendall(sys.argv[2].encode() + b'\\n'); c.close()\n")
ASKS = ("import os, socket, urllib.parse\n"
        "u = urllib.parse.urlsplit(os.environ['SVC_URL'])\n"
        "print('answer', socket.create_connection((u.hostname, u.port)).recv(10).decode().strip(), flush=True)\n"
        "import time; time.sleep(1000)\n")


def test_a_service_url_changed_under_watch_is_followed(procrun, tmp_path):
    """Regression (#26): changing a proxied URL in .env under --watch --chaos-backing restarted the
    worker with the old proxied URL, still reaching the old service."""
    (tmp_path / "says.py").write_text(SAYS)
    old, new = free_port(), free_port()
    servers = [subprocess.Popen([PY, str(tmp_path / "says.py"), str(port), name]) for port, name in
               ((old, "old"), (new, "new"))]
    try:
        root = write_app(tmp_path / "app", f"worker: exec {PY} asks.py\n", __env=f"SVC_URL=http://localhost:{old}/\n",
                         asks__py=ASKS)
        wait_until(lambda: accepts(old) and accepts(new), timeout=10)
        run = procrun("start", "--chaos-backing", "--watch", "-p", str(free_base()), "--no-color", cwd=root)
        run.wait_for(r"worker\.1 +\| answer old$", timeout=15)
        (root / ".env").write_text(f"SVC_URL=http://localhost:{new}/\n")
        run.wait_for(rf"backing +\| SVC_URL now http://localhost:{new}/ through 127\.0\.0\.1:\d+", timeout=15)
        run.wait_for(r"worker\.1 +\| answer new$", timeout=15)
        (root / ".env").write_text("SVC_URL=http://example.com:81/\n")
        run.wait_for(r"backing +\| SVC_URL changed to http://example\.com:81/: not proxied any more", timeout=15)
        run.signal(signal.SIGINT)
        run.wait()
    finally:
        for server in servers:
            server.kill()
            server.wait()


def test_a_crash_seen_before_the_session_stops_is_judged_within_the_grace():
    """Regression (#26): a verdict was dropped when the session stopped within the 3 s grace after
    a fault; a crash already seen is judged at shutdown (and nothing else is)."""
    import asyncio
    import time as clock
    from types import SimpleNamespace

    from procrun.backing.faults import make
    from procrun.backing.service import BackingService, proxies_for
    from procrun.backing.urls import Backing

    said, procs = [], {}

    class Machine:
        ending = None

        def get(self, name):
            return procs.get(name)

    class Session:
        machine = Machine()
        journal = type("J", (), {"event": staticmethod(lambda *a: None)})()
        report = SimpleNamespace(backing=None)

        def say(self, text, source="system"):
            said.append(text)

    async def main():
        service = BackingService(Session(), SimpleNamespace(rates={}, in_flight={}, history={}),
                                 proxies_for([Backing("X", "redis://localhost", "redis", "127.0.0.1", 1)]), [],
                                 seed=3, interval=30, scheduled=False, routed_type=None)
        proxy = service.proxies["X"]
        await proxy.start()
        procs["fragile.1"] = SimpleNamespace(pid=10, crashed_at=None)
        procs["steady.1"] = SimpleNamespace(pid=20, crashed_at=None)
        service._users = lambda proxy: (("fragile.1", 10), ("steady.1", 20))
        service.now("X", make("reset"))
        await asyncio.sleep(0.1)
        procs["fragile.1"] = SimpleNamespace(pid=None, crashed_at=clock.monotonic())  # it crashed at once
        await service.close()  # the session stops within the grace
        return service.verdicts

    found = asyncio.run(main())
    assert [(v.instance, v.verdict) for v in found] == [("fragile.1", "crashed")]
    assert any("fragile.1 crashed after reset of X" in line for line in said)


def test_new_faults_end_to_end_with_redis_py_get_the_verdicts_they_mean(procrun, tmp_path, redis_port):
    """A slow fault is coped with by both workers (redis-py waits); a connection closed after so
    many bytes (limit_data) crashes the one without retries and the other reconnects."""
    write_app(tmp_path, f"steady: exec {PY} {HERE / 'steady.py'}\nfragile: exec {PY} {HERE / 'fragile.py'}\n",
              __env=f"REDIS_URL=redis://localhost:{redis_port}/0\n")
    run = procrun("start", "--chaos-backing", "--restart", "on-failure", "-p", str(free_base()), "--no-color")
    proxied_port(run, "REDIS_URL")
    time.sleep(1.5)  # both connected through their own ports
    said = ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL", "--action", "latency",
               "--param", "latency=300", "--param", "jitter=50", "--param", "seconds=2").stdout
    assert said.startswith("latency REDIS_URL for 2s: latency 300 ms, jitter 50 ms")
    wait_until(lambda: verdict(tmp_path, "fragile", "latency") and verdict(tmp_path, "steady", "latency"), timeout=15)
    assert verdict(tmp_path, "fragile", "latency")["verdict"] == "coped"
    assert verdict(tmp_path, "steady", "latency")["verdict"] == "coped"
    ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL", "--action", "limit_data",
        "--param", "bytes=3", "--param", "direction=downstream", "--param", "seconds=3")
    wait_until(lambda: verdict(tmp_path, "fragile", "limit_data") and verdict(tmp_path, "steady", "limit_data"),
               timeout=15)
    assert verdict(tmp_path, "fragile", "limit_data")["verdict"] == "crashed"
    assert verdict(tmp_path, "steady", "limit_data")["verdict"] == "recovered"
    summary = ctl(tmp_path, "report").stdout
    assert "  coped: it kept working through a fault that slows or cuts data" in summary
    bad = ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL", "--action", "bandwidth", "--param", "rate=0",
              check=False)
    assert bad.returncode != 0 and "rate must be a number from 1 to" in bad.stderr
    run.signal(signal.SIGINT)
    run.wait()


def test_a_type_s_own_service_url_from_procrun_yaml_is_proxied_for_that_type_only(procrun, tmp_path, redis_port):
    """#28: URLs in a type's procrun.yaml env are proxied like .env's; the type's value wins over
    .env's (proxied or not), the other types keep .env's."""
    write_app(tmp_path, f"steady: exec {PY} {HERE / 'steady.py'}\nshow: echo \"show has $REDIS_URL\"; sleep 1000\n",
              __env="REDIS_URL=redis://localhost:1/0\n",
              procrun__yaml=f"types:\n  steady: {{env: {{REDIS_URL: 'redis://127.0.0.1:{redis_port}/0'}}}}\n")
    run = procrun("start", "--chaos-backing", "--restart", "on-failure", "-p", str(free_base()), "--no-color")
    own = int(run.wait_for(rf"backing +\| REDIS_URL \(steady\) redis://127\.0\.0\.1:{redis_port}/0 through 127\.0\.0\.1:(\d+)")[1])
    shared = proxied_port(run, "REDIS_URL")
    shown = run.wait_for(r"show\.1 +\| show has redis://127\.0\.0\.1:(\d+)/0$")
    assert int(shown[1]) not in (1, own, redis_port)  # .env's service, through its own proxy port
    time.sleep(1.5)  # steady connected through its type's proxy
    ctl(tmp_path, "chaos", "now", "--backing", "REDIS_URL (steady)", "--action", "reset")
    wait_until(lambda: verdict(tmp_path, "steady", "reset"), timeout=15)
    assert verdict(tmp_path, "steady", "reset")["verdict"] == "recovered"
    assert shared != own
    run.signal(signal.SIGINT)
    run.wait()
