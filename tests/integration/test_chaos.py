"""Chaos mode, fresh working directories and hidden-state findings, for real."""

import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.integration.helpers import ctl, marked, wait_until, write_app

PY = sys.executable
# Writes a file next to its code (hidden local state) and one in TMPDIR (fine), then idles.
STATEFUL = (f"{PY} -c \"import os,time; os.makedirs('uploads', exist_ok=True); "
            "open('uploads/%d.png' % os.getpid(), 'w').write('x'); "
            "open(os.path.join(os.environ['TMPDIR'], 'scratch'), 'w').write('y'); "
            "print('wrote', flush=True); time.sleep(600)\"")
STATELESS = f"{PY} -c \"import time; print('idle', flush=True); time.sleep(600)\""


def tree_hash(root):
    h = hashlib.sha256()
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".procrun")
        for name in sorted(files):
            path = os.path.join(base, name)
            st = os.lstat(path)
            h.update(f"{os.path.relpath(path, root)}:{st.st_mode}:{st.st_mtime_ns}".encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


@pytest.fixture
def app(tmp_path):
    root = tmp_path / "app"
    write_app(root, f"stateful: {STATEFUL}\nstateless: {STATELESS}\n")
    (root / "code.py").write_text("print('hi')\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: x\n")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "dep.js").write_text("module.exports = 1\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    return root, scratch


def test_relocation_reports_files_written_next_to_the_code(procrun, app):
    root, scratch = app
    before = tree_hash(root)
    run = procrun("start", "--fresh", "--chaos", "--chaos-interval", "100000", "-t", "1", cwd=root,
                  env={"TMPDIR": str(scratch)})
    run.wait_for(r"stateful\.1 +\| wrote")
    run.wait_for(r"stateless\.1 +\| idle")
    rows = {p["name"]: p for p in json.loads(ctl(root, "ps", "--json").stdout)}
    assert rows["stateful.1"]["cwd"].startswith(str(scratch))
    seen = f"/proc/{rows['stateful.1']['pid']}/cwd"  # the instance's own view (a copy-on-write one is its own)
    assert os.path.exists(f"{seen}/code.py") and not os.path.exists(f"{seen}/.git")
    assert os.path.islink(f"{seen}/node_modules")

    assert ctl(root, "chaos", "now", "stateful.1", "--action", "relocate").stdout.strip() == "relocate stateful.1"
    run.wait_for(r"warning +\| (stateful\.1 wrote uploads/\d+\.png during its \d+s life; "
                        r"the next instance will not see it)")
    run.wait_for(r"stateful\.1 +\| wrote")  # relocated instance is running again
    ctl(root, "chaos", "now", "stateless.1", "--action", "relocate")
    run.wait_count(r"stateless\.1 +\| idle", 2)

    report = json.loads(ctl(root, "report", "--json").stdout)
    assert [f["instance"] for f in report["findings"]] == ["stateful.1"]
    assert report["by_type"]["stateful"]["instances"] == 1
    assert report["scratch"] == {"stateful": 1}
    assert [e["action"] for e in report["events"]] == ["relocate", "relocate"]

    run.signal(signal.SIGINT)
    assert run.wait() == 130
    assert "files: 2 instance stop(s) left files behind" in run.text()
    assert tree_hash(root) == before  # the app root is never written
    assert os.listdir(scratch) == []  # temporary roots removed
    saved = json.loads(ctl(root, "report", "--json").stdout)  # the last session's report
    assert len(saved["findings"]) == 2 and saved["seed"] == report["seed"]


def test_random_chaos_with_seed_keeps_formation_and_app_root(procrun, app):
    root, scratch = app
    before = tree_hash(root)
    run = procrun("start", "--fresh", "--chaos", "--chaos-interval", "0.2", "--chaos-seed", "11", "-t", "0.5",
                  "-c", "stateful=2,stateless=2", cwd=root, env={"TMPDIR": str(scratch)})
    run.wait_for(r"chaos +\| seed 11 \(replay with --chaos-seed 11\)")
    run.wait_count(r"chaos +\| (restart|kill|relocate|pause) ", 12, timeout=30)
    assert ctl(root, "chaos", "off").returncode == 0
    wait_until(lambda: all(p["state"] == "running" for p in json.loads(ctl(root, "ps", "--json").stdout)), timeout=15)
    status = ctl(root, "chaos", "status").stdout
    assert "chaos off: seed 11" in status
    ctl(root, "quit")
    assert run.wait() == 0
    assert tree_hash(root) == before
    assert os.listdir(scratch) == []
    assert marked(run.token) == []


def test_sigkill_of_procrun_removes_fresh_dirs_too(procrun, app):
    root, scratch = app
    run = procrun("start", "--fresh", cwd=root, env={"TMPDIR": str(scratch)})
    run.wait_for(r"stateful\.1 +\| wrote")
    assert os.listdir(scratch)
    run.signal(signal.SIGKILL)
    run.wait()
    wait_until(lambda: os.listdir(scratch) == [] and marked(run.token) == [], timeout=5)


def test_keep_dirs(procrun, app):
    root, scratch = app
    run = procrun("start", "--fresh", "--keep-dirs", "stateless", cwd=root, env={"TMPDIR": str(scratch)})
    run.wait_for(r"stateless\.1 +\| idle")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    kept = os.listdir(scratch)
    assert len(kept) == 1 and kept[0].startswith("procrun-")
    import shutil
    shutil.rmtree(scratch / kept[0])


def test_bad_chaos_flags(tmp_path):
    write_app(tmp_path, "web: x\n")
    for args, words in [(["--chaos-actions", "explode"], "unknown chaos action 'explode'"),
                        (["--chaos-types", "api"], "no process type 'api'"),
                        (["--chaos-interval", "0"], "more than 0"),
                        (["--chaos-seed", "abc"], "not an integer seed"),
                        (["--chaos-interval", "inf"], "must be a finite number of seconds, more than 0"),
                        (["--chaos-seed", "-1"], "must be an integer from 0 to 18446744073709551615"),
                        (["--router-timeout", "0"], "more than 0")]:
        result = subprocess.run([sys.executable, "-m", "procrun", "start", "--chaos", *args], cwd=tmp_path,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and words in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_soak_60s_disruption_every_half_second(procrun, app):
    root, scratch = app
    run = procrun("start", "--fresh", "--chaos", "--chaos-interval", "0.5", "--chaos-seed", "3", "-t", "0.5",
                  "-c", "stateful=3,stateless=3", cwd=root, env={"TMPDIR": str(scratch)})
    run.wait_for(r"chaos +\| seed 3 ")
    wait_until(lambda: len(json.loads(ctl(root, "ps", "--json").stdout)) == 6)
    pid = run.proc.pid

    def fds():
        return len(os.listdir(f"/proc/{pid}/fd"))

    def zombies():
        out = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                    if int(fields[1]) == pid and fields[0] == b"Z":
                        out += 1
                except OSError:
                    pass
        return out

    import time
    time.sleep(5)  # warm up: first relocations create the slug
    fd_start = fds()
    deadline = time.monotonic() + 55
    while time.monotonic() < deadline:
        time.sleep(1)
    run.wait_count(r"chaos +\| (restart|kill|relocate|pause) ", 60, timeout=5)
    ctl(root, "chaos", "off")
    rows = wait_until(lambda: (r := json.loads(ctl(root, "ps", "--json").stdout))
                      and all(p["state"] == "running" for p in r) and r, timeout=20)
    assert sorted(p["name"] for p in rows) == ["stateful.1", "stateful.2", "stateful.3",
                                               "stateless.1", "stateless.2", "stateless.3"]
    assert zombies() == 0
    assert fds() <= fd_start + 2
    ctl(root, "quit")
    assert run.wait() == 0
    assert os.listdir(scratch) == [] and marked(run.token) == []
