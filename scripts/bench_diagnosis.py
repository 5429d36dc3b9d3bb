"""scripts/bench's diagnosis part: the router's cost with replay on, and the real-framework
matrix (cause named, time to the first confirmed finding, replays), written to docs/diagnosis.md.

Run alone with `.venv/bin/python scripts/bench_diagnosis.py` (the matrix only)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_frameworks import CASES, EXPRESS, HERE, MODULE, READS, SERVE, Browser  # noqa: E402

def replay_cost(base: Path, wrk: str, seconds: float, free_port, launch, kill_all, runners, make_app, wait_for,
                backend: str) -> dict[str, tuple[float, float]]:
    """(req/s, p50 s) through the router at 1 and 32 connections, replay on and off, on a workload
    where a fifth of the answers are 401s to a client with a session cookie (web=2: the memory
    rules see a success on one instance and a refusal on the other, so replays are made, one a
    second per path at most, while wrk measures)."""
    import uuid

    out: dict[str, tuple[float, float]] = {}
    for replay in (True, False):
        app = make_app(base, f"replay-{replay}", {"web": f"REFUSE_EVERY=5 exec {sys.executable} backend.py"})
        (app / "backend.py").write_text(backend)
        port, token = free_port(), uuid.uuid4().hex
        flags = ["--router", "-c", "web=2", "-p", str(port), "--router-replay" if replay else "--no-router-replay"]
        log = base / f"replay-{replay}.log"
        with open(log, "wb") as sink:
            proc = launch(runners(app)["procrun"] + flags, app, sink, token)
            try:
                wait_for(lambda: len(re.findall(r"web\.\d is ready on port", log.read_text())) >= 2)
                for connections in (1, 32):
                    out[f"{'on' if replay else 'off'}{connections}"] = _wrk(wrk, port, connections, seconds)
            finally:
                kill_all(proc, token)
    return out


def compare_cost(base: Path, wrk: str, seconds: float, free_port, launch, kill_all, runners, make_app, wait_for,
                 backend: str) -> dict[str, tuple[float, float]]:
    """(req/s, p50 s) through the router at 1 and 32 connections with router.compare at its default
    and off (web=3, JSON answers naming their instance: every one eligible, none a finding; at most
    one comparison a second per path, each four more requests)."""
    import uuid

    json_backend = backend.replace('b"HTTP/1.1 200 OK\\r\\nContent-Length:',
                                   'b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length:')
    json_backend = json_backend.replace('BODY = ("hello from " + os.environ["PS"] + "\\n").encode()',
                                        'BODY = (\'{"hello": "from", "instance": "\' + os.environ["PS"] + \'"}\').encode()')
    assert "application/json" in json_backend and '"instance"' in json_backend
    runs: dict[str, list[tuple[float, float]]] = {}
    for rate in ("0", "0.05", "0", "0.05"):  # alternated, the better of two each: this machine's noise is larger
        app = make_app(base, f"compare-{rate}", {"web": f"exec {sys.executable} backend.py"})
        (app / "backend.py").write_text(json_backend)
        port, token = free_port(), uuid.uuid4().hex
        log = base / f"compare-{rate}.log"
        with open(log, "wb") as sink:
            proc = launch(runners(app)["procrun"] + ["--router", "-c", "web=3", "-p", str(port), "--router-compare",
                                                     rate], app, sink, token)
            try:
                wait_for(lambda: len(re.findall(r"web\.\d is ready on port", log.read_text())) >= 3)
                for connections in (1, 32):
                    runs.setdefault(f"{'on' if rate != '0' else 'off'}{connections}", []).append(
                        _wrk(wrk, port, connections, seconds, "/"))
            finally:
                kill_all(proc, token)
        if "finding" in log.read_text():
            raise RuntimeError(f"router.compare found a difference in answers that differ only by instance:\n"
                               f"{log.read_text()[-2000:]}")
    return {k: (max(r for r, _ in v), min(p for _, p in v)) for k, v in runs.items()}


def _wrk(binary: str, port: int, connections: int, seconds: float, path: str = "/me") -> tuple[float, float]:
    result = subprocess.run([binary, "-t", "1" if connections == 1 else "2", "-c", str(connections), "-d",
                             f"{seconds:g}s", "--latency", "-H", "Cookie: sid=bench-session",
                             f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=seconds + 30)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))
    value, unit = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", result.stdout, re.M).groups()
    return rate, float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def matrix(base: Path, free_base) -> list[tuple[str, str, str, str, float | None, int]]:
    """Each framework case under `--router -c web=3` with a user logging in and reading back:
    (framework, mode, expected cause, named causes, seconds to the first confirmed finding, replays)."""
    rows = []
    for framework, mode, cause in CASES:
        if framework == "express" and not _npm_ready():
            continue
        rows.append(_case(base, framework, mode, cause, free_base))
    return rows


def _npm_ready() -> bool:
    if shutil.which("npm") is None:
        return False
    if not (EXPRESS / "node_modules" / "express-session").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS, capture_output=True, timeout=300)
    return (EXPRESS / "node_modules" / "express-session").is_dir()


def _case(base: Path, framework: str, mode: str, cause: str | None, free_base):
    root = base / f"{framework}-{mode}"
    root.mkdir()
    shutil.copy(HERE / MODULE[framework], root)
    if framework == "express":
        (root / "node_modules").symlink_to(EXPRESS / "node_modules")
    (root / "Procfile").write_text(f"web: exec {SERVE[framework]}\n")
    (root / ".env").write_text(f"MODE={mode}\nSECRET_KEY=twelve-factor-shared\n")
    port = free_base()
    log = root / "procrun.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "procrun", "start", "--router", "-c", "web=3", "-p", str(port),
                                 "-t", "1", "--no-color"], cwd=root, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 40
            while len(re.findall(r"web\.\d is ready on port", log.read_text())) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            browser, started, found_after = Browser(port, framework), time.monotonic(), None
            while time.monotonic() - started < 10:
                browser.use(READS[framework], 0.2)
                if found_after is None and "[confirmed]" in log.read_text():
                    found_after = time.monotonic() - started
                    break
            browser.close()
            report = json.loads(subprocess.run([sys.executable, "-m", "procrun", "report", "--json", "-d", str(root)],
                                               capture_output=True, text=True, timeout=30).stdout)
        finally:
            subprocess.run([sys.executable, "-m", "procrun", "quit", "-d", str(root)], capture_output=True, timeout=30)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    named = ", ".join(sorted({f["kind"] for f in report["state"] if f["status"] == "confirmed"})) or "nothing"
    replays = sum(f.get("replays", 0) for f in report["state"])
    return framework, mode, cause or "nothing", named, found_after, replays


def write_matrix(rows, path: Path = ROOT / "docs" / "diagnosis.md") -> None:
    """The generated table between its markers in docs/diagnosis.md."""
    table = ["| framework | app | expected | named | first confirmed finding | replays |", "|---|---|---|---|---|---|"]
    for framework, mode, expected, named, after, replays in rows:
        verdict = "yes" if named == expected else "NO"
        table.append(f"| {framework} | {mode} | {expected} | {named} ({verdict}) | "
                     f"{f'{after:.1f} s' if after is not None else '—'} | {replays} |")
    text = path.read_text()
    start, end = "<!-- matrix: written by scripts/bench -->", "<!-- end of matrix -->"
    block = f"{start}\n\nMeasured {time.strftime('%Y-%m-%d')} under `procrun start --router -c web=3` alone:\n\n" \
            + "\n".join(table) + f"\n\n{end}"
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: block, text, flags=re.S) \
        if start in text else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "scripts"))
    from tests.integration.helpers import free_base

    with tempfile.TemporaryDirectory(prefix="procrun-diag-") as tmp:
        found = matrix(Path(tmp), free_base)
    for row in found:
        print(row, flush=True)
    write_matrix(found)
