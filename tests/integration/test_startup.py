"""What a command imports before it does its work decides its start-up (scripts/bench measures the
times): a client imports nothing of the supervisor, and a start launches its processes before it
imports argparse, dataclasses (Python 3.11 compiles every method of every dataclass at import),
asyncio or its services."""

import subprocess
import sys

from tests.integration.helpers import write_app

# Runs procrun's main and writes the names in sys.modules at the first spawn, or at exit.
PROBE = r"""
import atexit, subprocess, sys
out = sys.argv.pop(1)
def write():
    if not hasattr(write, "done"):
        write.done = True
        with open(out, "w") as f:
            f.write("\n".join(sorted(sys.modules)))
sys.addaudithook(lambda event, args: event == "subprocess.Popen" and write())
atexit.register(write)
from procrun.cli import main
raise SystemExit(main())
"""
HEAVY = {"argparse", "dataclasses", "inspect", "asyncio", "typing"}
SERVICES = {"procrun.router.service", "procrun.control.service", "procrun.chaos.service", "procrun.watch.service"}


def imported(tmp_path, *args: str) -> tuple[int, set[str]]:
    out = tmp_path / "modules.txt"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=tmp_path, capture_output=True,
                            timeout=30)
    return result.returncode, set(out.read_text().split())


def test_a_start_launches_its_processes_before_the_heavy_imports(tmp_path):
    write_app(tmp_path, "web: echo up\n")
    code, modules = imported(tmp_path, "start", "--no-color")
    assert code == 0
    assert {"procrun.supervise.session", "procrun.project.settings"} <= modules  # seen at the launch
    assert modules & (HEAVY - {"typing"} | SERVICES) == set()


def test_a_start_with_unusual_flags_still_parses_them(tmp_path):
    """argparse takes what the quick path leaves (an abbreviation here), and the start goes on."""
    write_app(tmp_path, "web: echo up\n")
    code, modules = imported(tmp_path, "start", "--time", "3")
    assert code == 0
    assert "argparse" in modules


def test_a_client_imports_nothing_of_the_supervisor(tmp_path):
    write_app(tmp_path, "web: echo up\n")
    code, modules = imported(tmp_path, "ps")
    assert code == 1  # no session is running here
    assert "procrun.control.client" in modules
    assert {m for m in modules if m.startswith(("procrun.supervise", "procrun.project"))} == set()
    assert modules & HEAVY == set()


def test_old_sessions_are_pruned_once_the_processes_are_up(tmp_path):
    write_app(tmp_path, "web: echo up\n", procrun__yaml="journal:\n  keep: 2\n")
    sessions = tmp_path / ".procrun" / "sessions"
    for day in (1, 2, 3):
        (sessions / f"2020010{day}-000000-1").mkdir(parents=True)
    code, modules = imported(tmp_path, "start")
    assert code == 0
    assert "shutil" not in modules  # removing them imports it, after the launch
    kept = sorted(p.name for p in sessions.iterdir())
    assert len(kept) == 2 and kept[0] == "20200103-000000-1"  # the newest old one and this session's
