"""procrun vs honcho vs a plain shell, measured in one run (see DESIGN.md targets).

Each figure is the median of --runs runs. Output goes to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # the diagnosis part drives the test corpus's apps
BIN = Path(sys.executable).parent
LINE_BYTES = 80
TOKEN = "PROCRUN_BENCH_TOKEN"


def runners(app: Path) -> dict[str, list[str]]:
    return {
        "procrun": [str(BIN / "procrun"), "start", "--no-color"],
        "honcho": [str(BIN / "honcho"), "start", "--no-colour"],
        "shell": ["bash", str(app / "run.sh")],
    }


def shell_script(app: Path, commands: list[str]) -> None:
    """A plain-shell supervisor: start all, forward INT/TERM, wait."""
    body = "\n".join(f"({c}) &" for c in commands)
    (app / "run.sh").write_text(
        "trap 'kill $(jobs -p) 2>/dev/null; wait; exit 130' INT TERM\n" + body + "\nwait\n")


def make_app(base: Path, name: str, commands: dict[str, str]) -> Path:
    app = base / name
    app.mkdir(parents=True, exist_ok=True)
    (app / "Procfile").write_text("".join(f"{k}: {v}\n" for k, v in commands.items()))
    shell_script(app, list(commands.values()))
    return app


def marked(token: str) -> list[int]:
    needle = f"\0{TOKEN}={token}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in b"\0" + f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


BACKEND: dict[str, str] = {}  # {"PROCRUN_PLATFORM": "portable"} while measuring the portable backend


def launch(cmd: list[str], app: Path, out, token: str) -> subprocess.Popen:
    env = dict(os.environ, **{TOKEN: token}, **BACKEND)
    env.pop("PORT", None)
    return subprocess.Popen(cmd, cwd=app, stdout=out, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, preexec_fn=_default_signals)


def _default_signals() -> None:
    """Runners start with SIGINT handled by default even if the bench was started with it ignored
    (a shell cannot trap a signal that was ignored when it started)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def kill_all(proc: subprocess.Popen, token: str) -> None:
    """Stop a runner as a user would (SIGTERM: procrun removes its temporary directories), then
    SIGKILL its group and everything carrying the token if it has not gone within 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    for pid in marked(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- log relay ----------------------------------------------------------------

def relay(base: Path, who: str, nproc: int, lines: int, extra: tuple[str, ...] = ()) -> tuple[float, int, int]:
    """Lines/s, lines lost and lines split for nproc processes × lines lines."""
    data = base / "data"
    data.mkdir(exist_ok=True)
    for i in range(nproc):
        f = data / f"p{i}.txt"
        if not f.exists():
            with open(f, "wb") as out:
                tag = f"P{i}".encode()
                for n in range(lines):
                    head = b"%s %08d " % (tag, n)
                    out.write(head + b"x" * (LINE_BYTES - 1 - len(head)) + b"\n")
    app = make_app(base, f"relay{nproc}", {f"p{i}": f"cat {data}/p{i}.txt" for i in range(nproc)})
    token = uuid.uuid4().hex
    out_path = base / f"out-{who}.txt"
    cmd = runners(app)[who]
    if who == "procrun":  # every process runs to completion, as under honcho and the shell
        cmd = cmd + ["--restart", "on-failure", *extra]
    with open(out_path, "wb") as out:
        # The runner writes into a pipe read by cat, as it would into a terminal or `| tee`.
        sink = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=out)
        start = time.perf_counter()
        proc = launch(cmd, app, sink.stdin, token)
        sink.stdin.close()
        try:
            proc.wait(timeout=600)
            sink.wait(timeout=600)
        finally:
            kill_all(proc, token)
            sink.kill()
            sink.wait()
        elapsed = time.perf_counter() - start
    good, split = count_lines(out_path, nproc)
    out_path.unlink()
    total = nproc * lines
    return total / elapsed, total - good, split


LINE = re.compile(rb"(P\d+) (\d{8}) x+$")


def count_lines(path: Path, nproc: int) -> tuple[int, int]:
    good, split = 0, 0
    last = {}
    with open(path, "rb") as f:
        for raw in f:
            body = raw.rstrip(b"\n")
            body = body.split(b"| ", 1)[1] if b"| " in body else body
            m = LINE.match(body)
            if m and len(body) == LINE_BYTES - 1:
                tag, n = m.group(1), int(m.group(2))
                if n == last.get(tag, -1) + 1:
                    good += 1
                last[tag] = n
            elif b"P" in body and b"xxxx" in body:
                split += 1
    return good, split


# -- start / stop of 50 -------------------------------------------------------

def start_stop(base: Path, who: str, n: int) -> tuple[float, float, float]:
    """(launch → first running, first → all n running, SIGINT → runner exited)."""
    app = make_app(base, f"many{n}", {f"p{i}": "exec sleep 600" for i in range(n)})
    token = uuid.uuid4().hex
    with open(os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = launch(runners(app)[who], app, out, token)
        try:
            first = None
            while (up := len([p for p in marked(token) if _comm(p) == "sleep"])) < n:
                if up and first is None:
                    first = time.perf_counter() - start
                if time.perf_counter() - start > 30:
                    raise RuntimeError(f"{who}: {n} processes not up within 30 s")
                time.sleep(0.01)  # polled from outside every 10 ms
            started = time.perf_counter() - start
            first = started if first is None else first
            time.sleep(0.3)
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
                stopped = time.perf_counter() - t0
            except subprocess.TimeoutExpired:
                stopped = float("inf")
        finally:
            kill_all(proc, token)
    return first, started - first, stopped


def cli_round_trip(base: Path, n: int = 21) -> tuple[float, float]:
    """Median wall time of `procrun ps` against a live session, and of `python -c pass`."""
    app = make_app(base, "cli", {"web": "exec sleep 600"})
    token = uuid.uuid4().hex
    with open(os.devnull, "wb") as out:
        proc = launch(runners(app)["procrun"], app, out, token)
        try:
            wait_for(lambda: (app / ".procrun" / "control.sock").exists())

            def timed(cmd: list[str]) -> float:
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=app, stdout=subprocess.DEVNULL, check=True)
                return time.perf_counter() - t0
            ps = median([timed([str(BIN / "procrun"), "ps"]) for _ in range(n)])
            bare = median([timed([sys.executable, "-c", "pass"]) for _ in range(n)])
        finally:
            kill_all(proc, token)
    return ps, bare


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


# -- runtime control (procrun only: honcho and the shell cannot scale or restart) --

def scale_and_restart(base: Path) -> tuple[float, float]:
    """(`procrun scale p=20` issued → 20 running, SIGKILL of an instance → replacement running)."""
    app = make_app(base, "scale", {"p": "exec sleep 600"})
    token = uuid.uuid4().hex
    with open(os.devnull, "wb") as out:
        proc = launch(runners(app)["procrun"] + ["--restart", "always"], app, out, token)
        try:
            sleeps = lambda: [p for p in marked(token) if _comm(p) == "sleep"]
            wait_for(lambda: len(sleeps()) == 1)
            t0 = time.perf_counter()
            subprocess.run([str(BIN / "procrun"), "scale", "p=20"], cwd=app, check=True,
                           stdout=subprocess.DEVNULL)
            wait_for(lambda: len(sleeps()) == 20, interval=0.0005)
            scaled = time.perf_counter() - t0
            victim = sleeps()[0]
            before = set(sleeps())
            t0 = time.perf_counter()
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: len(set(sleeps()) - before) == 1, interval=0.0002)
            restarted = time.perf_counter() - t0
        finally:
            kill_all(proc, token)
    return scaled, restarted


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("benchmark condition not reached in time")
        time.sleep(interval)


# -- fresh working directories -------------------------------------------------

def big_app(base: Path, kind: str) -> Path:
    """An app root the size of a real one (generated, never committed): 50,000 files of 4 KB in
    500 folders, or one 1 GiB file; two types that print one line and idle."""
    app = base / f"scale-{kind}"
    if not app.exists():
        if kind == "50k":
            block = os.urandom(4000)
            for d in range(500):
                folder = app / f"pkg{d // 50}" / f"m{d}"
                folder.mkdir(parents=True)
                for f in range(100):
                    (folder / f"f{f}.py").write_bytes(block)
        else:
            app.mkdir(parents=True)
            block = os.urandom(1 << 20)
            with open(app / "model.bin", "wb") as f:
                for _ in range(1024):
                    f.write(block)
    (app / "Procfile").write_text("web: echo up; exec sleep 600\nworker: echo up; exec sleep 600\n")
    return app


def control_rtt(sock: Path, request: dict, timeout: float = 10.0) -> float:
    """One request over the control socket, its answer's round trip (timeout: never answered)."""
    import json
    import socket

    t0 = time.perf_counter()
    try:
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(timeout)
            c.connect(str(sock))
            c.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return timeout if time.perf_counter() - t0 >= timeout else 0.0
    return time.perf_counter() - t0


class Lines:
    """procrun's output lines with the time each arrived."""

    def __init__(self, proc: subprocess.Popen) -> None:
        import threading

        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            self.lines.append((time.perf_counter(), raw.decode(errors="replace")))

    def after(self, index: int, needle: str, timeout: float = 120.0) -> tuple[int, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(index, len(self.lines)):
                if needle in self.lines[i][1]:
                    return i, self.lines[i][0]
            time.sleep(0.002)
        raise RuntimeError(f"no line with {needle!r}: {self.lines[-5:]}")


class Prober:
    """`ps` over the control socket every ``every`` seconds: the slowest answer is how long the
    session's loop was kept from answering (a lag probe from outside; procrun runs no timer for it)."""

    def __init__(self, sock: Path, every: float) -> None:
        import threading

        self.sock, self.every, self.worst, self.stop = sock, every, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.sock.exists():
                self.worst = max(self.worst, control_rtt(self.sock, {"cmd": "ps"}))
            time.sleep(self.every)

    def end(self) -> float:
        self.stop.set()
        self.thread.join()
        return self.worst


def tree_kib(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, n)).st_blocks // 2 for d, dirs, files in os.walk(path) for n in dirs + files)


def fresh_at_scale(base: Path, kind: str, method: str, relocations: int = 5) -> dict[str, float]:
    """``procrun start --chaos -c web=2,worker=2`` on a big app root with one way of making fresh
    directories: exec to the first app line, each relocation's stop to start, the temporary space of
    an instance that wrote nothing, ps while instances are made, the slowest answer during relocations."""
    app = big_app(base, kind)
    scratch = base / f"tmp-{kind}-{method}"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), **BACKEND, **({"PROCRUN_FRESH": "copy"} if method == "copy" else {}))
    env.pop("PORT", None)
    sock = app / ".procrun" / "control.sock"
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "procrun"), "start", "--no-color", "--chaos", "--chaos-interval", "100000",
                             "--no-router", "-c", "web=2,worker=2"], cwd=app, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=_default_signals)
    lines, prober = Lines(proc), Prober(sock, 0.05)
    try:
        _, first = lines.after(0, "| up")
        index = 0
        for _ in range(4):
            index, _ = lines.after(index + 1 if index else 0, "| up")
        making = prober.end()
        instance = max(scratch.glob("procrun-*/web.1-*"), key=lambda p: p.stat().st_mtime)
        space = tree_kib(instance) / 1024
        prober, starts = Prober(sock, 0.02), []
        for _ in range(relocations):
            mark = len(lines.lines)
            control_rtt(sock, {"cmd": "chaos", "op": "now", "targets": ["web.1"], "action": "relocate"})
            i, stopped = lines.after(mark, "web.1 stopped")
            _, started = lines.after(i, "web.1 started")
            starts.append(started - stopped)
            time.sleep(0.3)  # running again before the next one
        stall = prober.end()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        left = list(scratch.iterdir())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(scratch)])
    return {"first": first - t0, "start": median(starts), "space": space, "making": making, "stall": stall,
            "diff": diff_cost(app, method, base), "left": len(left)}


def fresh_rows(base: Path, rows: list) -> None:
    """#25's table: each figure on the copy-on-write path and on the copy path (forced), for
    50,000 files / 200 MB and for one 1 GiB file."""
    got = {}
    for kind in ("50k", "1g"):
        for method in ("overlay", "copy"):
            got[kind, method] = r = fresh_at_scale(base, kind, method, relocations=5 if method == "overlay" else 3)
            print(f"fresh {kind} {method}: first line {r['first']:.2f} s, relocation {r['start'] * 1000:.0f} ms, "
                  f"{r['space']:.1f} MiB per idle instance, diff {r['diff'] * 1000:.1f} ms, ps while making "
                  f"{r['making']:.3f} s, slowest answer {r['stall'] * 1000:.0f} ms, left {r['left']}", flush=True)
    trees = {"50k": "50,000 files / 200 MB", "1g": "one 1 GiB file"}
    figures = [("exec of `procrun start --chaos -c web=2,worker=2` → first app line", "first", "s", 2.0, True),
               ("each later fresh start (chaos relocate): stop → started", "start", "ms", 0.05, True),
               ("temporary space per instance that wrote nothing", "space", "MiB", 5.0, True),
               ("stop-time diff of an instance that wrote 10 files", "diff", "ms", 0.02, True),
               ("`ps` answer while instances are being made (slowest)", "making", "s", 0.3, False),
               ("slowest control-socket answer during relocations (loop stall probe)", "stall", "ms", 0.02, False)]
    for label, key, unit, target, fast_path_only in figures:
        for kind, tree in trees.items():
            shown = {m: (f"{got[kind, m][key] * 1000:.1f} ms" if unit == "ms" else f"{got[kind, m][key]:.2f} {unit}")
                     for m in ("overlay", "copy")}
            checked = ("overlay",) if fast_path_only else ("overlay", "copy")
            met = all(got[kind, m][key] <= target for m in checked) and all(got[kind, m]["left"] == 0 for m in checked)
            limit = f"{target * 1000:.0f} ms" if unit == "ms" else f"{target} {unit}"
            rows.append((f"fresh directories, {tree}: {label}",
                         {"procrun": f"copy-on-write {shown['overlay']}; copy (forced) {shown['copy']}",
                          "honcho": "n/a", "shell": "n/a"},
                         f"≤ {limit} ({'copy-on-write' if fast_path_only else 'both paths'}): "
                         f"{'met' if met else 'NOT met'}"))


def diff_cost(app: Path, method: str, base: Path) -> float:
    """The stop-time diff of an instance that wrote 10 files, timed in-process."""
    from procrun.fresh.workdir import Workdirs

    os.environ["TMPDIR"] = str(base)
    os.environ.pop("PROCRUN_FRESH", None) if method != "copy" else os.environ.update(PROCRUN_FRESH="copy")
    dirs = Workdirs(str(app))
    try:
        dirs.open(lambda root: None)
        dirs.snapshot()
        wd = dirs.create("web.1")
        subprocess.run([*wd.wrap, "/bin/sh", "-c", "for i in 0 1 2 3 4 5 6 7 8 9; do echo x > f$i; done"],
                       cwd=wd.base if wd.wrap else wd.path, check=True)
        t0 = time.perf_counter()
        found = dirs.inspect(wd)
        elapsed = time.perf_counter() - t0
        assert len(found.created) == 10, found
        dirs.discard(wd)
    finally:
        dirs.close()
        os.environ.pop("PROCRUN_FRESH", None)
    return elapsed


# -- router ----------------------------------------------------------------------

def ensure_wrk() -> str | None:
    """wrk from Debian, installed like the export engines (root with apt-get)."""
    import shutil
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk",
                       shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which("wrk")


def wrk(binary: str, port: int, connections: int, seconds: float) -> tuple[float, float, int]:
    """(requests/s, p50 latency in s, requests) of a wrk run with keep-alive connections."""
    out = subprocess.run([binary, "-t", "1" if connections == 1 else "2", "-c", str(connections),
                          "-d", f"{seconds:g}s", "--latency", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
    p50 = float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return rate, p50, total


def router(base: Path, binary: str, seconds: float, record: bool = True) -> dict[str, tuple[float, float, int]]:
    """wrk straight to web.1 and through the router (web=1: the same backend), 1 and 32 connections.
    ``record``: the router records each request for the memory diagnosis (the default)."""
    app = make_app(base, "router", {"web": f"exec {sys.executable} backend.py"})
    (app / "backend.py").write_text(FAST_BACKEND)
    token = uuid.uuid4().hex
    port = _free_port()
    results: dict[str, tuple[float, float, int]] = {}
    flags = ["--router", "-p", str(port)] + ([] if record else ["--no-router-record"])
    with open(base / "router.log", "wb") as out:
        proc = launch(runners(app)["procrun"] + flags, app, out, token)
        try:
            def ready() -> int | None:
                text = (base / "router.log").read_text()
                m = re.search(r"web\.1 is ready on port (\d+)", text)
                return int(m.group(1)) if m else None
            wait_for(lambda: ready() is not None)
            direct_port = ready()
            wrk(binary, port, 4, 1)  # warm up
            rss_before = rss_kib(proc.pid)
            served = 0
            for connections in (1, 32):
                for name, target in (("direct", direct_port), ("routed", port)):
                    results[f"{name}{connections}"] = wrk(binary, target, connections, seconds)
                    served += results[f"{name}{connections}"][2] if name == "routed" else 0
            results["rss"] = (rss_before, rss_kib(proc.pid), served)
        finally:
            kill_all(proc, token)
    return results


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


# A keep-alive HTTP/1.1 server that answers each GET in one write (no Nagle stalls).
FAST_BACKEND = r'''
import asyncio, itertools, os
BODY = ("hello from " + os.environ["PS"] + "\n").encode()
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
REFUSED = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\nno\n"
EVERY = int(os.environ.get("REFUSE_EVERY", "0"))  # the diagnosis bench: every Nth request a 401 (not replays)
COUNT = itertools.count(1)
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            refuse = EVERY and next(COUNT) % EVERY == 0 and b"x-procrun-replay" not in head.lower()
            writer.write(REFUSED if refuse else RESPONSE)
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(os.environ["PORT"]))
    await server.serve_forever()
asyncio.run(main())
'''


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- idle -----------------------------------------------------------------------

def idle(base: Path, who: str, n: int, seconds: float, extra: tuple[str, ...] = ()) -> tuple[float, float, int, float]:
    """CPU %, PSS MiB and process count of the supervisor, and its wakeups/s."""
    app = make_app(base, f"idle{n}{len(extra)}", {f"p{i}": "exec sleep 600" for i in range(n)})
    token = uuid.uuid4().hex
    with open(os.devnull, "wb") as out:
        proc = launch(runners(app)[who] + list(extra), app, out, token)
        try:
            deadline = time.monotonic() + 30
            while len([p for p in marked(token) if _comm(p) == "sleep"]) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError("not up")
                time.sleep(0.01)
            time.sleep(1.0)
            sups = supervisor_pids(proc.pid)
            cpu0, sw0 = sum(cpu_ticks(p) for p in sups), sum(switches(p) for p in sups)
            time.sleep(seconds)
            cpu1, sw1 = sum(cpu_ticks(p) for p in sups), sum(switches(p) for p in sups)
            pss = sum(pss_kib(p) for p in sups) / 1024
        finally:
            kill_all(proc, token)
    hz = os.sysconf("SC_CLK_TCK")
    return 100 * (cpu1 - cpu0) / hz / seconds, pss, len(sups), (sw1 - sw0) / seconds


def top_idle(base: Path, seconds: float) -> tuple[float, float]:
    """CPU % of `procrun top` on a terminal (a pty) watching an idle session of 10, and of the
    session meanwhile (it pushes the state while someone subscribes)."""
    import pty
    import threading

    app = make_app(base, "top10", {f"p{i}": "exec sleep 600" for i in range(10)})
    token = uuid.uuid4().hex
    with open(os.devnull, "wb") as out:
        proc = launch(runners(app)["procrun"] + ["--no-journal"], app, out, token)
        try:
            wait_for(lambda: len([p for p in marked(token) if _comm(p) == "sleep"]) == 10)
            master, slave = pty.openpty()
            top = subprocess.Popen([str(BIN / "procrun"), "top", "-d", str(app)], stdin=slave, stdout=slave,
                                   stderr=slave, env=dict(os.environ, TERM="xterm", LINES="24", COLUMNS="80"),
                                   start_new_session=True)
            os.close(slave)
            threading.Thread(target=lambda: _drain(master), daemon=True).start()
            time.sleep(1.0)  # drawn once
            hz = os.sysconf("SC_CLK_TCK")
            t0, c0, s0 = time.monotonic(), cpu_ticks(top.pid), cpu_ticks(proc.pid)
            time.sleep(seconds)
            elapsed = time.monotonic() - t0
            top_cpu = 100 * (cpu_ticks(top.pid) - c0) / hz / elapsed
            session_cpu = 100 * (cpu_ticks(proc.pid) - s0) / hz / elapsed
            top.kill()
            top.wait()
        finally:
            kill_all(proc, token)
    return top_cpu, session_cpu


SERVICE = r"""
import socket, sys, threading
def sink(c):
    n = int(c.recv(20).split(b"\n")[0]); got = 0
    while got < n:
        d = c.recv(1 << 20)
        if not d: break
        got += len(d)
    c.sendall(b"ok")
    c.close()
def echo(c):
    while d := c.recv(65536):
        c.sendall(d)
s = socket.create_server(("127.0.0.1", 0)); e = socket.create_server(("127.0.0.1", 0))
print(s.getsockname()[1], e.getsockname()[1], flush=True)
threading.Thread(target=lambda: [threading.Thread(target=echo, args=(e.accept()[0],)).start() for _ in iter(int, 1)],
                 daemon=True).start()
while True:
    threading.Thread(target=sink, args=(s.accept()[0],)).start()
"""


@contextlib.contextmanager
def proxied_services(base: Path, name: str):
    """The stand-in services (a sink and an echo) and a `--chaos-backing` session in front of them:
    yields ({"sink": port, "echo": port} straight, the same through the proxies, procrun's
    Popen, the app folder); both are gone afterwards."""
    server = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    direct = dict(zip(("sink", "echo"), map(int, server.stdout.readline().split())))
    app = make_app(base, name, {"w": "exec sleep 600"})
    (app / ".env").write_text("".join(f"{k.upper()}_URL=http://localhost:{port}\n" for k, port in direct.items()))
    token, out_path = uuid.uuid4().hex, base / f"{name}.out"
    try:
        with open(out_path, "w") as out:
            proc = launch(runners(app)["procrun"] + ["--chaos-backing", "--no-journal"], app, out, token)
            try:
                wait_for(lambda: out_path.read_text().count(" through 127.0.0.1:") == len(direct))
                text = out_path.read_text()
                proxied = {k: int(re.search(rf"{k.upper()}_URL \S+ through 127\.0\.0\.1:(\d+)", text)[1])
                           for k in direct}
                yield direct, proxied, proc, app
            finally:
                kill_all(proc, token)
    finally:
        server.kill()
        server.wait()
        server.stdout.close()


def backing_proxy(base: Path, gib: float = 1.0, trips: int = 5000) -> dict[str, float]:
    """A 1 GiB transfer and small round trips, straight to a service and through --chaos-backing's proxy."""
    with proxied_services(base, "backing") as (direct, proxied, _, _):
        size = int(gib * 2**30)
        return {"direct_rate": _transfer(direct["sink"], size), "proxied_rate": _transfer(proxied["sink"], size),
                "direct_p50": _round_trips(direct["echo"], trips), "proxied_p50": _round_trips(proxied["echo"], trips)}


def backing_churn(base: Path, seconds: float = 60.0, rate: int = 100) -> dict[str, float]:
    """Short connections through --chaos-backing's proxy at ``rate`` a second (connect, send,
    half-close, read the echo, close) on the port of instance w.1 (its ECHO_URL), no fault: how
    many complete, procrun's descriptors before and after, its CPU meanwhile, `procrun quit`."""
    with proxied_services(base, "churn") as (_, _, proc, app):
        ps = json.loads(subprocess.run([sys.executable, "-m", "procrun", "ps", "--json", "-d", str(app)],
                                       capture_output=True, text=True, timeout=30).stdout)
        with open(f"/proc/{ps[0]['pid']}/environ", "rb") as f:
            env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        port = int(env[b"ECHO_URL"].rsplit(b":", 1)[1].strip(b"/"))
        fds = lambda: len(os.listdir(f"/proc/{proc.pid}/fd"))  # noqa: E731
        before, ticks, started = fds(), cpu_ticks(proc.pid), time.monotonic()
        done = total = 0
        while time.monotonic() - started < seconds:
            total += 1
            done += _short_connection(port)
            time.sleep(max(0.0, started + total / rate - time.monotonic()))
        spent = time.monotonic() - started
        cpu = (cpu_ticks(proc.pid) - ticks) / os.sysconf("SC_CLK_TCK") / spent
        time.sleep(1.0)
        after = fds()
        quit_started = time.monotonic()
        subprocess.run([sys.executable, "-m", "procrun", "quit", "-d", str(app)], capture_output=True, timeout=60)
        proc.wait(timeout=60)
        return {"done": done, "total": total, "before": before, "after": after, "cpu": cpu,
                "quit": time.monotonic() - quit_started}


def backing_soak(base: Path, seconds: float = 300.0) -> tuple:
    """The 5-minute soak (tests/integration/test_backing_soak.py runs one minute of it):
    web=4 worker=4 --chaos --chaos-interval 0.3 --chaos-backing, 100 requests a second."""
    from tests.integration.helpers import Run
    from tests.integration.test_backing_soak import soak

    runs = []

    def start(*args, cwd):
        runs.append(Run(list(args), cwd))
        return runs[-1]

    try:
        got = soak(start, base / "soak", seconds, rate=100,
                   sample=lambda t, fds, rss, ps: print(f"  soak {t:5.0f} s: {fds} fds, {rss / 1024:.1f} MiB, "
                                                        f"ps {ps:.2f} s", flush=True))
    finally:
        for run in runs:
            run.cleanup()
    # per minute after the first, the median of its samples (a fault holding a hundred requests'
    # connections for a second is a moment, not a trend; a leak moves every minute's median)
    minutes = sorted({int(s[0] // 60) for s in got["samples"] if s[0] >= 60})
    fds = [statistics.median(s[1] for s in got["samples"] if int(s[0] // 60) == m) for m in minutes]
    rss = [statistics.median(s[2] for s in got["samples"] if int(s[0] // 60) == m) for m in minutes]
    flat = lambda xs: max(xs) <= 1.1 * xs[0] and min(xs) >= 0.9 * xs[0]  # noqa: E731
    ps_max, c = max(s[3] for s in got["samples"]), got["counts"]
    served = sum(n for status, n in got["answers"].items() if status == 200)
    ok = (flat(fds) and flat(rss) and c["fired"] + c["skipped"] == c["scheduled"] and ps_max <= 0.3
          and got["quit"] <= 2)
    print(f"backing soak: per-minute median fds {fds}, RSS {[round(r / 1024, 1) for r in rss]} MiB after the "
          f"first minute; faults {c}; ps max {ps_max:.2f} s; quit {got['quit']:.2f} s; {served:,} requests 200",
          flush=True)
    return (f"backing soak: web=4 worker=4 --chaos --chaos-interval 0.3 --chaos-backing, {seconds / 60:.0f} min, "
            "100 requests/s", {
                "procrun": f"per-minute medians after the first: descriptors {', '.join(f'{x:g}' for x in fds)}; "
                           f"RSS {', '.join(f'{x / 1024:.1f}' for x in rss)} MiB; {c['scheduled']} faults scheduled = {c['fired']} fired + "
                           f"{c['skipped']} skipped; ps ≤ {ps_max:.2f} s; quit {got['quit']:.2f} s; "
                           f"{served:,} answered 200", "honcho": "n/a", "shell": "n/a"},
            f"descriptors and RSS flat (±10 %) after the first minute, fired + skipped = scheduled, ps ≤ 0.3 s, "
            f"quit ≤ 2 s: {'met' if ok else 'NOT met'}")


def _short_connection(port: int) -> int:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"ping\n")
            c.shutdown(socket.SHUT_WR)
            return int(c.recv(64) == b"ping\n")
    except OSError:
        return 0


def _transfer(port: int, size: int) -> float:
    import socket

    chunk = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as c:
        t0 = time.perf_counter()
        c.sendall(f"{size}\n".encode().ljust(20))
        sent = 0
        while sent < size:
            c.sendall(chunk)
            sent += len(chunk)
        assert c.recv(2) == b"ok"
        return size / (time.perf_counter() - t0)


def _round_trips(port: int, n: int) -> float:
    import socket

    times = []
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            t0 = time.perf_counter()
            c.sendall(b"p" * 64)
            got = 0
            while got < 64:
                got += len(c.recv(64 - got))
            times.append(time.perf_counter() - t0)
    return median(times)


def portable(base: Path, args, rows) -> None:
    """Start, stop and idle again with PROCRUN_PLATFORM=portable (psutil, no subreaper), beside Linux's."""
    BACKEND["PROCRUN_PLATFORM"] = "portable"
    try:
        results = [start_stop(base, "procrun", 50) for _ in range(args.runs)]
        cpu, pss, nsup, wake = idle(base, "procrun", 20, args.idle_seconds)
    finally:
        BACKEND.clear()
    start = median([r[0] + r[1] for r in results])
    stop = median([r[2] for r in results])
    print(f"portable backend: start 50 {start:.3f} s, stop {stop:.3f} s; idle 20: {cpu:.2f}% CPU, {pss:.1f} MiB "
          f"PSS, {nsup} proc, {wake:.1f} wakeups/s", flush=True)
    rows.append(("portable backend (`PROCRUN_PLATFORM=portable`): start 50 / stop 50 / idle with 20",
                 {"procrun": f"start {start:.3f} s, stop {stop:.3f} s; idle {cpu:.2f}% CPU, {pss:.1f} MiB PSS, "
                             f"{nsup} proc, {wake:.1f} wakeups/s", "honcho": "n/a", "shell": "n/a"},
                 f"same targets as Linux (< 0.2 s, < 0.2 s, < 25 MiB, ≤ 2 proc, < 1 wakeup/s): "
                 f"{'met' if start < 0.2 and stop < 0.2 and pss < 25 and nsup <= 2 and wake < 1 else 'NOT met'}"))


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def supervisor_pids(root: int) -> list[int]:
    """The runner and its helpers: every descendant that is not an app process (sleep)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, queue = [root], [root]
    while queue:
        for pid in children.get(queue.pop(), []):
            if _comm(pid) not in ("sleep", "sh") or b"procrun-guardian" in _cmdline(pid):
                found.append(pid)
                queue.append(pid)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def switches(pid: int) -> int:
    total = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


# -- report ---------------------------------------------------------------------

def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--wrk-seconds", type=float, default=8.0)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    who_all = ["procrun", "honcho", "shell"]
    # as installed for a user: bytecode compiled once (this machine may set PYTHONDONTWRITEBYTECODE)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "procrun")], check=True,
                   stdout=subprocess.DEVNULL)
    rows: list[tuple[str, dict[str, str], str]] = []
    with tempfile.TemporaryDirectory(prefix="procrun-bench-") as tmp:
        base = Path(tmp)
        for nproc in (1, 4):
            cells, verdict_ok = {}, True
            for who in who_all:
                results = [relay(base, who, nproc, args.lines) for _ in range(args.runs)]
                rate = median([r[0] for r in results])
                lost, split = max(r[1] for r in results), max(r[2] for r in results)
                cells[who] = f"{rate:,.0f} lines/s, lost {lost}, split {split}"
                if who == "procrun":
                    procrun_rate = rate
                    verdict_ok = lost == 0 and split == 0
                if who == "honcho":
                    honcho_rate = rate
                print(f"relay {nproc}x{args.lines} {who}: {cells[who]}", flush=True)
            target = "≥ 1M lines/s, ≥ 15× honcho, 0 lost/split" if nproc == 4 else "0 lost/split"
            ok = verdict_ok and (nproc == 1 or (procrun_rate >= 1e6 and procrun_rate >= 15 * honcho_rate))
            rows.append((f"log relay, {nproc} × {args.lines:,} lines of {LINE_BYTES} B", cells,
                         f"{target}: {'met' if ok else 'NOT met'} ({procrun_rate / honcho_rate:.1f}× honcho)"))
        bare = [relay(base, "procrun", 4, args.lines, ("--no-journal",)) for _ in range(args.runs)]
        bare_rate = median([r[0] for r in bare])
        rows.append((f"log relay, 4 × {args.lines:,} lines, procrun without its journal (`--no-journal`)",
                     {"procrun": f"{bare_rate:,.0f} lines/s, lost {max(r[1] for r in bare)}", "honcho": "n/a",
                      "shell": "n/a"},
                     f"journal on (row above) ≥ 1M lines/s: {'met' if procrun_rate >= 1e6 else 'NOT met'} "
                     f"(the journal costs {100 * (1 - procrun_rate / bare_rate):.0f}%)"))
        print(f"relay 4x{args.lines} procrun --no-journal: {bare_rate:,.0f} lines/s", flush=True)
        start_cells, stop_cells = {}, {}
        for who in who_all:
            results = [start_stop(base, who, 50) for _ in range(args.runs)]
            first, span, stop = (median([r[k] for r in results]) for k in range(3))
            launch_to_all = median([r[0] + r[1] for r in results])
            start_cells[who] = f"{launch_to_all:.3f} s (first up after {first:.3f} s, then {span:.3f} s to all 50)"
            stop_cells[who] = f"{stop:.3f} s"
            if who == "procrun":
                p_start, p_stop = launch_to_all, stop
            print(f"start/stop 50 {who}: {start_cells[who]} / {stop_cells[who]}", flush=True)
        rows.append(("start 50 processes (exec of the runner → 50th child exists, polled every 10 ms)", start_cells,
                     f"< 0.2 s: {'met' if p_start < 0.2 else 'NOT met'}"))
        rows.append(("stop 50 after SIGINT (signal → runner exited)", stop_cells,
                     f"< 0.2 s: {'met' if p_stop < 0.2 else 'NOT met'}"))
        ps_time, bare = cli_round_trip(base)
        ratio = ps_time / bare
        print(f"procrun ps {ps_time * 1000:.1f} ms, python -c pass {bare * 1000:.1f} ms ({ratio:.2f}x)", flush=True)
        rows.append(("CLI round trip: `procrun ps` on a live session vs `python -c pass` (same venv)",
                     {"procrun": f"{ps_time * 1000:.1f} ms vs {bare * 1000:.1f} ms ({ratio:.2f}×)", "honcho": "n/a",
                      "shell": "n/a"}, f"≤ 2.5× a bare interpreter: {'met' if ratio <= 2.5 else 'NOT met'}"))
        results = [scale_and_restart(base) for _ in range(args.runs)]
        scaled, restarted = median([r[0] for r in results]), median([r[1] for r in results])
        print(f"scale to 20: {scaled:.3f} s; restart after kill: {restarted * 1000:.1f} ms", flush=True)
        rows.append(("`procrun scale p=20` (client start included) → 20 running",
                     {"procrun": f"{scaled:.3f} s", "honcho": "n/a", "shell": "n/a"}, "no target"))
        rows.append(("restart after a kill (SIGKILL → replacement running, polled)",
                     {"procrun": f"{restarted * 1000:.1f} ms", "honcho": "n/a", "shell": "n/a"},
                     f"< 20 ms after reaping: {'met' if restarted < 0.02 else 'NOT met'} (this includes the kill and reaping)"))
        fresh_rows(base, rows)
        binary = ensure_wrk()
        if binary is None:
            rows.append(("router (wrk)", {"procrun": "wrk is not installed", "honcho": "n/a", "shell": "n/a"},
                         "not measured"))
        else:
            r = router(base, binary, args.wrk_seconds)
            added = r["routed1"][1] - r["direct1"][1]
            share = r["routed32"][0] / r["direct32"][0]
            before, after, served = r["rss"]
            for c in (1, 32):
                print(f"router {c} conn: direct {r[f'direct{c}'][0]:,.0f} req/s p50 {r[f'direct{c}'][1] * 1e3:.3f} ms, "
                      f"routed {r[f'routed{c}'][0]:,.0f} req/s p50 {r[f'routed{c}'][1] * 1e3:.3f} ms", flush=True)
            for c, verdict in ((1, f"≤ 0.15 ms added at p50: {'met' if added <= 0.00015 else 'NOT met'} "
                                   f"(+{added * 1e3:.3f} ms)"),
                               (32, f"≥ 25 % of direct throughput: {'met' if share >= 0.25 else 'NOT met'} "
                                    f"({share:.0%})")):
                d, t = r[f"direct{c}"], r[f"routed{c}"]
                rows.append((f"router, wrk, {c} keep-alive connection{'s' if c > 1 else ''} (web=1, same backend)",
                             {"procrun": f"routed {t[0]:,.0f} req/s, p50 {t[1] * 1e3:.3f} ms; direct {d[0]:,.0f} "
                                         f"req/s, p50 {d[1] * 1e3:.3f} ms", "honcho": "n/a", "shell": "n/a"}, verdict))
            plain = router(base, binary, args.wrk_seconds, record=False)
            cost = r["routed1"][1] - plain["routed1"][1]
            print(f"router recording: p50 {r['routed1'][1] * 1e3:.3f} ms on, {plain['routed1'][1] * 1e3:.3f} ms off",
                  flush=True)
            rows.append(("router request recording (memory diagnosis), wrk 1 connection", {
                "procrun": f"p50 {r['routed1'][1] * 1e3:.3f} ms recording, {plain['routed1'][1] * 1e3:.3f} ms not "
                           f"({r['routed1'][0]:,.0f} vs {plain['routed1'][0]:,.0f} req/s)", "honcho": "n/a",
                "shell": "n/a"}, f"≤ 0.05 ms added at p50: {'met' if cost <= 0.00005 else 'NOT met'} "
                                 f"({cost * 1e3:+.3f} ms)"))
            rows += diagnosis_rows(base, binary, args.wrk_seconds)
            rows.append((f"router memory over {served:,} requests", {
                "procrun": f"RSS {before / 1024:.1f} → {after / 1024:.1f} MiB", "honcho": "n/a", "shell": "n/a"},
                f"within 5 MiB after ≥ 100k requests: "
                f"{'met' if served >= 100_000 and after - before <= 5 * 1024 else 'NOT met'}"))
        idle_cells = {}
        for who in who_all:
            cpu, pss, nsup, wake = idle(base, who, 20, args.idle_seconds)
            idle_cells[who] = f"{cpu:.2f}% CPU, {pss:.1f} MiB PSS, {nsup} proc, {wake:.1f} wakeups/s"
            if who == "procrun":
                p_idle = (pss, nsup, wake)
            print(f"idle 20 {who}: {idle_cells[who]}", flush=True)
        ok = p_idle[0] < 25 and p_idle[1] <= 2 and p_idle[2] < 1
        rows.append(("idle with 20 processes (supervisor processes only)", idle_cells,
                     f"< 25 MiB PSS, ≤ 2 proc, < 1 wakeup/s: {'met' if ok else 'NOT met'}"))
        cpu, pss, nsup, wake = idle(base, "procrun", 20, args.idle_seconds, ("--fresh",))
        print(f"idle 20 fresh: {cpu:.2f}% CPU, {pss:.1f} MiB PSS, {nsup} proc, {wake:.1f} wakeups/s", flush=True)
        rows.append(("idle with 20 processes in watched fresh directories (--fresh)", {
            "procrun": f"{cpu:.2f}% CPU, {pss:.1f} MiB PSS, {nsup} proc, {wake:.1f} wakeups/s", "honcho": "n/a",
            "shell": "n/a"}, f"< 1 wakeup/s: {'met' if wake < 1 else 'NOT met'}"))
        portable(base, args, rows)
        b = backing_proxy(base)
        share, added = b["proxied_rate"] / b["direct_rate"], b["proxied_p50"] - b["direct_p50"]
        print(f"backing proxy: 1 GiB {b['proxied_rate'] / 2**20:,.0f} MiB/s vs direct {b['direct_rate'] / 2**20:,.0f}; "
              f"round trip p50 {b['proxied_p50'] * 1e3:.3f} vs {b['direct_p50'] * 1e3:.3f} ms", flush=True)
        rows.append(("backing-service proxy (`--chaos-backing`), 1 GiB transfer and 64-byte round trips", {
            "procrun": f"{b['proxied_rate'] / 2**20:,.0f} MiB/s vs {b['direct_rate'] / 2**20:,.0f} direct ({share:.0%}); "
                       f"p50 {b['proxied_p50'] * 1e3:.3f} ms vs {b['direct_p50'] * 1e3:.3f} ms direct",
            "honcho": "n/a", "shell": "n/a"},
            f"≥ 40 % of direct, ≤ 0.2 ms added at p50: {'met' if share >= 0.4 and added <= 0.0002 else 'NOT met'} "
            f"(+{added * 1e3:.3f} ms)"))
        c = backing_churn(base)
        print(f"backing churn: {c['done']} of {c['total']} complete; fds {c['before']} -> {c['after']}; "
              f"cpu {c['cpu']:.0%}; quit {c['quit']:.2f} s", flush=True)
        ok = c["done"] == c["total"] and abs(c["after"] - c["before"]) <= 5 and c["cpu"] <= 0.2 and c["quit"] <= 1
        rows.append(("backing proxy under 100 short connections a second for 60 s from an instance (no fault)", {
            "procrun": f"{c['done']:,} of {c['total']:,} complete; descriptors {c['before']} -> {c['after']}; "
                       f"{c['cpu']:.0%} of a core; quit {c['quit']:.2f} s", "honcho": "n/a", "shell": "n/a"},
            f"all complete, descriptors ±5, ≤ 20 % of a core, quit ≤ 1 s: {'met' if ok else 'NOT met'}"))
        rows.append(backing_soak(base))
        top_cpu, watched = top_idle(base, 2 * args.idle_seconds)
        print(f"procrun top idle: {top_cpu:.2f}% CPU (session meanwhile {watched:.2f}%)", flush=True)
        rows.append(("`procrun top` watching an idle session of 10 (on a terminal)", {
            "procrun": f"{top_cpu:.2f}% CPU (the session meanwhile: {watched:.2f}%)", "honcho": "n/a",
            "shell": "n/a"}, f"< 1 % CPU: {'met' if top_cpu < 1 else 'NOT met'}"))
    write_report(Path(args.output), rows, args)
    return 0


def diagnosis_rows(base: Path, binary: str, seconds: float) -> list:
    """The router with replay on beside off, on a workload where a fifth of the answers are 401s; the
    real-framework matrix (written to docs/diagnosis.md)."""
    import bench_diagnosis as diag
    from tests.integration.helpers import free_base

    c = diag.replay_cost(base, binary, seconds, _free_port, launch, kill_all, runners, make_app, wait_for, FAST_BACKEND)
    added = c["on1"][1] - c["off1"][1]
    share = c["on32"][0] / c["off32"][0]
    print(f"router replay: p50 {c['on1'][1] * 1e3:.3f} ms on, {c['off1'][1] * 1e3:.3f} ms off; 32 conn "
          f"{c['on32'][0]:,.0f} vs {c['off32'][0]:,.0f} req/s", flush=True)
    rows = [("router with replay (web=2, a fifth of the answers 401 to a session), wrk 1 and 32 connections", {
        "procrun": f"p50 {c['on1'][1] * 1e3:.3f} ms on, {c['off1'][1] * 1e3:.3f} ms off; 32 connections "
                   f"{c['on32'][0]:,.0f} req/s on, {c['off32'][0]:,.0f} off", "honcho": "n/a", "shell": "n/a"},
        f"router targets hold (≤ 0.05 ms added at p50 by replay, ≥ 90 % of the throughput): "
        f"{'met' if added <= 0.00005 and share >= 0.9 else 'NOT met'} ({added * 1e3:+.3f} ms, {share:.0%})")]
    k = diag.compare_cost(base, binary, seconds, _free_port, launch, kill_all, runners, make_app, wait_for, FAST_BACKEND)
    added = k["on1"][1] - k["off1"][1]
    share = k["on32"][0] / k["off32"][0]
    print(f"router compare: p50 {k['on1'][1] * 1e3:.3f} ms at 0.05, {k['off1'][1] * 1e3:.3f} ms off; 32 conn "
          f"{k['on32'][0]:,.0f} vs {k['off32'][0]:,.0f} req/s", flush=True)
    rows.append(("router.compare at its default (0.05) beside off (web=3, JSON answers naming their instance), "
                 "wrk 1 and 32 connections", {
                     "procrun": f"p50 {k['on1'][1] * 1e3:.3f} ms at 0.05, {k['off1'][1] * 1e3:.3f} ms off; 32 connections "
                                f"{k['on32'][0]:,.0f} req/s at 0.05, {k['off32'][0]:,.0f} off; no finding",
                     "honcho": "n/a", "shell": "n/a"},
                 f"router targets hold (≤ 0.05 ms added at p50, ≥ 90 % of the throughput): "
                 f"{'met' if added <= 0.00005 and share >= 0.9 else 'NOT met'} ({added * 1e3:+.3f} ms, {share:.0%})"))
    found = diag.matrix(base, free_base)
    diag.write_matrix(found)
    right = sum(1 for _, _, expected, named, _, _ in found if named == expected)
    slowest = max((after for *_, after, _ in found if after is not None), default=0.0)
    print(f"diagnosis matrix: {right} of {len(found)} right, slowest finding {slowest:.1f} s", flush=True)
    rows.append((f"diagnosis on real frameworks (Django, Flask, FastAPI, Express; {len(found)} apps, "
                 "docs/diagnosis.md), `--router -c web=3` alone", {
                     "procrun": f"{right} of {len(found)} named with the right cause (twins: nothing); "
                                f"slowest first confirmed finding {slowest:.1f} s", "honcho": "n/a", "shell": "n/a"},
                 f"every cause right within 30 s, 0 on twins: {'met' if right == len(found) and slowest <= 30 else 'NOT met'}"))
    return rows


def write_report(path: Path, rows, args) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `scripts/bench` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.machine()}; median of {args.runs} runs.",
        "`shell` is a plain bash script that starts every command with `&` and waits.",
        "",
        "| what | procrun | honcho | shell | target |",
        "|---|---|---|---|---|",
    ]
    for what, cells, verdict in rows:
        lines.append(f"| {what} | {cells['procrun']} | {cells['honcho']} | {cells['shell']} | {verdict} |")
    lines += ["", "Lost: lines missing or out of order; split: lines cut or merged with another.",
              "Output goes through a pipe into `cat > file`, as it would into a terminal or `| tee`.",
              "procrun runs the relay with `--restart on-failure` so every process writes all its lines",
              "(by default the first exit ends the session, as in honcho), and with its journal on (the",
              "default: every chunk relayed is also written to .procrun/sessions/<id>/) unless the row says not.",
              "Start: from the exec of the runner to the 50th `sleep` process existing, polled from outside",
              "every 10 ms; procrun's bytecode is compiled first, as an installed package's is.",
              "Router: wrk against a minimal asyncio backend (web=1), straight to web.1 and through the",
              "router in the same run; the memory row is procrun's RSS before and after those requests.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    sys.exit(main())
