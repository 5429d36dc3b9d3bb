"""Shell completion, driven as the shells drive it: bash's completion function called with
COMP_WORDS and COMP_CWORD set (COMPREPLY read back), zsh's through zpty (typing a Tab).
Verbs, flags and choices come from the command line's declaration; instances and types from
the running session."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.helpers import write_app

PY = sys.executable
BIN = str(Path(PY).parent)


def bash_complete(*words, cwd="."):
    """COMPREPLY for the command line ``words`` (the last one being completed)."""
    script = subprocess.run([PY, "-m", "procrun", "completion", "bash"], capture_output=True, text=True,
                            check=True).stdout
    quoted = " ".join(f"'{w}'" for w in words)
    program = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _procrun; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}, timeout=60)
    assert result.returncode == 0, result
    return sorted(line for line in result.stdout.splitlines() if line)


def test_bash_completes_verbs_flags_and_choices(tmp_path):
    assert bash_complete("procrun", "st") == ["start", "stop"]
    assert bash_complete("procrun", "start", "--chaos-b") == ["--chaos-backing", "--chaos-backing-faults"]
    assert bash_complete("procrun", "start", "--restart", "") == ["always", "never", "on-failure"]
    assert bash_complete("procrun", "-f", "Procfile", "chaos", "--action", "sl") == ["slicer", "slow_close"]
    assert bash_complete("procrun", "export", "--no-c") == []  # export takes no output flags
    assert bash_complete("procrun", "completion", "") == ["bash", "zsh"]


def test_bash_completes_the_running_session_s_instances_and_types(procrun, tmp_path):
    write_app(tmp_path, "web: sleep 300\nworker: sleep 300\n")
    run = procrun("start", "-c", "web=2")
    run.wait_for(r"worker\.1 started")
    assert bash_complete("procrun", "restart", "w", cwd=tmp_path) == ["web", "web.1", "web.2", "worker",
                                                                        "worker.1"]
    assert bash_complete("procrun", "attach", "web.", cwd=tmp_path) == ["web.1", "web.2"]
    assert bash_complete("procrun", "-d", str(tmp_path), "scale", "wo") == ["worker="]
    assert bash_complete("procrun", "stop", "w", cwd="/") == []  # no session there: nothing offered


def test_zsh_completes_through_its_completion_system(procrun, tmp_path):
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (scripts/test installs Debian's under CI)")
    write_app(tmp_path, "web: sleep 300\n")
    run = procrun("start")
    run.wait_for(r"web\.1 started")
    script = subprocess.run([PY, "-m", "procrun", "completion", "zsh"], capture_output=True, text=True,
                            check=True).stdout
    (tmp_path / "completion.zsh").write_text(script)
    driver = f"""
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PS1='> '; PATH={BIN}:\\$PATH; autoload -U compinit && compinit -u; source {tmp_path}/completion.zsh; cd {tmp_path}"
sleep 1
zpty -w -n z $'procrun resta\\t'
sleep 2
zpty -w -n z $'web.\\t'
sleep 2
out=""
while zpty -r -t z chunk; do out+=$chunk; done
print -r -- "$out"
zpty -d z
"""
    result = subprocess.run(["zsh", "-f", "-c", driver], capture_output=True, text=True, timeout=60)
    import re

    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)  # what the terminal shows, colours aside
    typed = screen.rsplit("procrun rest", 1)[-1]
    assert typed.startswith("art") and "web.1" in typed, result.stdout + result.stderr  # both Tabs completed
