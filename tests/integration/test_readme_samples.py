"""The README's sample outputs, produced by running the commands they follow: every line of a
sample must appear in the output, in the sample's order among the lines of the same source
(client.1, finding, report...: lines of different processes race each other). What depends on
timing is matched by pattern: which instance (web.N), ids, numbers and lists of counts by
kind ("(1 kill, 2 pause)"); `...` stands for
anything; `<- ...` is a comment. Everything else must be exact."""

import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import free_base, write_app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PY = sys.executable


def sample_after(command: str) -> list[str]:
    """The output block that follows the ```sh block holding ``command``."""
    start = README.index(command)
    block = README[README.index("```\n", README.index("```", start) + 3) + 4:]
    return [line for line in block[:block.index("```")].splitlines() if line.strip()]


def pattern(line: str) -> re.Pattern[str]:
    source, _, text = line.partition(" | ")
    text = text.split("  <- ")[0].rstrip()
    parts = []
    for piece in re.split(r"(\(\d+ [a-z]+(?:, \d+ [a-z]+)*\)|\.\.\.|\b(?:web|worker|client)\.\d+\b|\b[0-9a-f]{8}\b|\d+(?:\.\d+)?)", text):
        if piece == "...":
            parts.append(".*")
        elif re.fullmatch(r"\(\d+ [a-z]+(?:, \d+ [a-z]+)*\)", piece or ""):  # counts by kind: which kinds vary
            parts.append(r"\(\d+ [a-z]+(?:, \d+ [a-z]+)*\)")
        elif re.fullmatch(r"(web|worker|client)\.\d+", piece or ""):
            parts.append(piece.split(".")[0] + r"\.\d+")
        elif re.fullmatch(r"[0-9a-f]{8}", piece or "") and re.search(r"\d", piece):
            parts.append("[0-9a-f]{8}")
        elif re.fullmatch(r"\d+(?:\.\d+)?", piece or ""):
            parts.append(r"\d+(?:\.\d+)?")
        else:
            parts.append(re.escape(piece))
    return re.compile(rf"^\d\d:\d\d:\d\d {re.escape(source.strip())} +\| {''.join(parts)}$")


def check(sample: list[str], output: str) -> None:
    lines = output.splitlines()
    at: dict[str, int] = {}  # per source: how far its lines were matched
    for line in sample:
        if line.strip() in ("...", "^C") or " | " not in line:
            continue
        source = line.split(" | ")[0].strip()
        want = pattern(line)
        start = at.get(source, 0)
        found = next((i for i in range(start, len(lines)) if want.match(lines[i])), None)
        assert found is not None, f"README line not produced (in order):\n{line}\n{want.pattern}\n\n{output}"
        at[source] = found + 1


@pytest.fixture
def demo(tmp_path):
    """The demo app, copied: scripts/demo runs `procrun start -f Procfile.example ARGS` in the repo."""
    for name in ("Procfile.example", "Procfile.stateless", ".env.stateless"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def demo_args(command: str) -> list[str]:
    return command.split()[1:]  # scripts/demo ARGS


@pytest.mark.timeout(120)
def test_the_chaos_sample(procrun, demo):
    command = "scripts/demo --chaos --chaos-interval 1.5 --chaos-types web --chaos-seed 27 -c web=3"
    run = procrun("start", "-f", "Procfile.example", *demo_args(command), "-p", str(free_base()), "--no-color",
                  cwd=demo)
    run.wait_for(r"client\.1 +\| client done", timeout=60)
    run.signal(signal.SIGINT)  # the sample's ^C
    run.wait(timeout=30)
    check(sample_after(command), run.text())


@pytest.mark.timeout(120)
def test_the_stateless_twin_gives_no_finding_under_the_same_chaos(procrun, demo):
    run = procrun("start", "-f", "Procfile.stateless", "-e", ".env.stateless", "--chaos", "--chaos-interval", "1.5",
                  "--chaos-types", "web", "--chaos-seed", "27", "-c", "web=3", "-p", str(free_base()), "--no-color",
                  cwd=demo, env={"TMPDIR": str(demo)})
    run.wait_for(r"client\.1 +\| client done", timeout=60)
    run.signal(signal.SIGINT)
    run.wait(timeout=30)
    out = run.text()
    assert re.search(r"report +\| hidden local state: none found in \d+ fresh directories and the requests through "
                     r"the router", out), out
    assert "finding  |" not in out and "warning  |" not in out


def test_the_router_sample(procrun, demo):
    command = "scripts/demo --router -c web=3"
    run = procrun("start", "-f", "Procfile.example", *demo_args(command), "-p", str(free_base()), "--no-color",
                  cwd=demo)
    assert run.wait(timeout=40) == 0  # the demo ends by itself
    check(sample_after(command), run.text())


def test_the_backing_sample(procrun, tmp_path):
    block = README[README.index("```\nbacking  | REDIS_URL"):]
    sample = [line for line in block[4:block.index("```", 4)].splitlines() if line.strip()]
    write_app(tmp_path, "worker: sleep 100\n",
              __env="REDIS_URL=redis://localhost:6379\nCACHE_URL=rediss://localhost:6380\n")
    run = procrun("start", "--chaos-backing", "-p", str(free_base()), "--no-color")
    run.wait_for(r"backing +\| CACHE_URL not proxied")
    run.signal(signal.SIGINT)
    run.wait()
    check(sample, run.text())
