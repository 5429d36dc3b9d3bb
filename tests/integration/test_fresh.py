"""Fresh directories on real trees, with each way of making them: copy-on-write views (overlay,
the default on Linux), copies (forced with PROCRUN_FRESH=copy, what a system without user
namespaces gets) and the portable backend (copies). Odd trees, SIGKILL at any moment,
restart versus relocate, live writes, edits made while a session runs, and the
copy-on-write path run as an unprivileged user."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, marked, wait_until, write_app

PY = sys.executable
METHODS = {"overlay": {}, "copy": {"PROCRUN_FRESH": "copy"}, "portable": {"PROCRUN_PLATFORM": "portable"}}
# Prints what the instance sees, then idles.
LOOK = """import json, os, sqlite3, sys, time
seen = {"uid": os.getuid(), "tmp": os.environ["TMPDIR"], "cwd": os.getcwd(),
        "fifo": os.path.lexists("fifo"), "sock": os.path.lexists("sock"), "zero": os.path.lexists("zero"),
        "secret": os.path.lexists("secret"), "nested_link": os.path.islink("packages/a/node_modules"),
        "nested_code": open("packages/a/node_modules/dep/index.js").read(),
        "here_before": os.path.exists("marker"), "tmp_before": os.path.exists(os.path.join(os.environ["TMPDIR"], "m"))}
open("marker", "w").write("x")
open(os.path.join(os.environ["TMPDIR"], "m"), "w").write("x")
db = sqlite3.connect("app.db")  # opened read-write, only read: no change
seen["rows"] = db.execute("select count(*) from t").fetchone()[0]
db.close()
print("seen", json.dumps(seen), flush=True)
if sys.argv[1:] == ["move"]:  # a folder of the slug renamed (an overlay refuses; mv copies then)
    os.system("mv assets assets2")
    print("moved", flush=True)  # (the copy and the removal done: a test may stop it now)
time.sleep(600)
"""


def odd_tree(root, procfile):
    write_app(root, procfile, look__py=LOOK)
    os.mkfifo(root / "fifo")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "sock"))
    if os.geteuid() == 0:
        os.mknod(root / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # reading it never ends
    dep = root / "packages" / "a" / "node_modules" / "dep"
    dep.mkdir(parents=True)
    (dep / "index.js").write_text("module.exports = 1\n")
    (root / "assets").mkdir()
    (root / "assets" / "logo.svg").write_text("<svg/>")
    with sqlite3.connect(root / "app.db") as db:
        db.execute("create table t (x)")
        db.execute("insert into t values (1)")
    db.close()
    return root


def seen(run, name, count=1):
    run.wait_count(rf"{name} +\| seen ", count, timeout=20)
    lines = [l for l in run.text().splitlines() if f"{name} " in l and "| seen " in l]
    return json.loads(lines[count - 1].split("| seen ", 1)[1])


@pytest.fixture(params=list(METHODS))
def fresh(request, procrun, tmp_path):
    """Start a --fresh session with one method; its TMPDIR (where the temporary root goes) is checked empty after."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()

    def start(root, *args, env=None, python=None):
        return procrun("start", *args, cwd=root, python=python,
                       env={"TMPDIR": str(scratch), **METHODS[request.param], **(env or {})})

    start.method, start.scratch = request.param, scratch
    return start


def test_odd_trees_special_files_nested_dependencies_sqlite_and_a_moved_folder(fresh, tmp_path):
    root = odd_tree(tmp_path / "app", f"web: {PY} look.py move\n")
    run = fresh(root, "--fresh", "-t", "1")
    devices = "1 device \\(zero\\); " if os.geteuid() == 0 else ""
    run.wait_for(rf"warning +\| fresh directories leave out 1 FIFO \(fifo\); {devices}1 socket \(sock\): FIFOs, "
                 "sockets and devices are not copied")
    view = seen(run, "web.1")
    assert not view["fifo"] and not view["sock"] and not view["zero"]
    assert view["nested_link"] and view["nested_code"] == "module.exports = 1\n"  # linked at any depth
    assert view["rows"] == 1 and view["cwd"].startswith(str(fresh.scratch))
    run.wait_for(r"warning +\| web\.1 wrote assets2/logo\.svg")
    run.wait_for(r"web\.1 +\| moved", timeout=20)  # mv removed assets/ too (a stop mid-mv leaves it)
    assert ("fresh directories are copies" in run.text()) == (fresh.method == "portable")  # (forced: no line)
    run.signal(signal.SIGINT)
    assert run.wait() == 130
    text = run.text()
    assert text.count("fresh directories leave out") == 1  # named once
    report = text.split("report ", 1)[1]
    assert "created assets2/logo.svg" in report and "deleted assets/logo.svg" in report
    assert "app.db" not in report  # opened read-write, nothing written
    assert "marker" in report
    assert "Traceback" not in text + run.stderr.decode()
    assert os.listdir(fresh.scratch) == []  # nothing left: views, slug, TMPDIRs


def test_restart_keeps_tmpdir_relocate_replaces_it(fresh, tmp_path):
    root = odd_tree(tmp_path / "app", f"web: {PY} look.py\n")
    run = fresh(root, "--chaos", "--chaos-interval", "100000", "-t", "1")
    first = seen(run, "web.1")
    assert not first["here_before"] and not first["tmp_before"]
    assert ctl(root, "chaos", "now", "web.1", "--action", "restart").stdout.strip() == "restart web.1"
    second = seen(run, "web.1", 2)
    assert second["tmp"] == first["tmp"] and second["tmp_before"]  # a container restarted in its pod
    assert second["cwd"] != first["cwd"] and not second["here_before"]  # its app directory is fresh
    assert ctl(root, "chaos", "now", "web.1", "--action", "relocate").stdout.strip() == "relocate web.1"
    third = seen(run, "web.1", 3)
    assert third["tmp"] != second["tmp"] and not third["tmp_before"] and not third["here_before"]  # another machine
    assert not os.path.exists(second["tmp"])  # the old TMPDIR is gone
    ctl(root, "restart", "web.1")  # procrun restart, too, keeps it
    fourth = seen(run, "web.1", 4)
    assert fourth["tmp"] == third["tmp"] and fourth["tmp_before"]
    ctl(root, "quit")
    assert run.wait() == 0
    assert os.listdir(fresh.scratch) == []


def test_sigkill_during_the_snapshot_and_sigint_answered_during_it(fresh, tmp_path):
    root = odd_tree(tmp_path / "app", f"web: {PY} look.py\n")
    run = fresh(root, "--fresh", env={"PROCRUN_TEST_HOLD_SNAPSHOT": "60"})
    partial = lambda: [p for p in fresh.scratch.glob("procrun-*/slug-*.partial")]  # noqa: E731
    wait_until(partial, timeout=10)
    rows = json.loads(ctl(root, "ps", "--json").stdout)  # the session answers while the slug is made
    assert [(r["name"], r["state"]) for r in rows] == [("web.1", "starting")]
    run.signal(signal.SIGKILL)
    run.wait()
    wait_until(lambda: os.listdir(fresh.scratch) == [] and marked(run.token) == [], timeout=10)

    run = fresh(root, "--fresh", env={"PROCRUN_TEST_HOLD_SNAPSHOT": "60"})
    wait_until(partial, timeout=10)
    run.signal(signal.SIGINT)  # acted on at once, the snapshot abandoned
    assert run.wait(timeout=10) == 130
    assert os.listdir(fresh.scratch) == [] and "web.1 started" not in run.text()


def test_sigkill_of_procrun_while_instances_run_leaves_no_files_mounts_or_processes(fresh, tmp_path):
    root = odd_tree(tmp_path / "app", f"web: {PY} look.py\n")
    run = fresh(root, "--fresh", "-c", "web=2")
    seen(run, "web.1"), seen(run, "web.2")
    run.signal(signal.SIGKILL)
    run.wait()
    wait_until(lambda: os.listdir(fresh.scratch) == [] and marked(run.token) == [], timeout=10)
    with open("/proc/self/mountinfo") as f:
        assert str(fresh.scratch) not in f.read()


def test_a_file_written_right_after_its_folder_is_named_live_every_time(fresh, tmp_path):
    writer = (f"{PY} -c \"import os,time; os.makedirs('cache/deep'); open('cache/deep/state.bin','w').write('x'); "
              "print('done', flush=True); time.sleep(600)\"")
    root = write_app(tmp_path / "app", "".join(f"t{i}: {writer}\n" for i in range(20)))
    run = fresh(root, "--fresh", "-t", "1")
    run.wait_count(r"t\d+\.1 +\| done", 20, timeout=30)
    run.wait_count(r"warning +\| t\d+\.1 wrote cache/deep/state\.bin; ", 20, timeout=10)  # live, before any stop
    run.signal(signal.SIGINT)
    assert run.wait() == 130


def test_writes_through_symlinked_folders_are_named_by_the_link(fresh, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "shared"
    elsewhere.mkdir(parents=True)
    (tmp_path / "elsewhere" / "uploads").mkdir()
    cmd = (f"{PY} -c \"import time; open('data/x.json','w').write('1'); open('lib/up/y.bin','w').write('2'); "
           "print('done', flush=True); time.sleep(600)\"")
    root = write_app(tmp_path / "app", f"web: {cmd}\n")
    os.symlink(elsewhere, root / "data")  # a name other than its target's
    (root / "lib").mkdir()
    os.symlink("../../elsewhere/uploads", root / "lib" / "up")  # relative, at depth, out of the app root
    run = fresh(root, "--fresh", "-t", "1")
    run.wait_for(r"web\.1 +\| done", timeout=20)
    run.wait_for(rf"warning +\| an instance wrote data/x\.json through the linked data/ \({elsewhere}\)")
    run.wait_for(r"warning +\| an instance wrote lib/up/y\.bin through the linked lib/up/ ")
    run.signal(signal.SIGINT)
    assert run.wait() == 130


def test_edits_made_while_a_session_runs(fresh, tmp_path):
    """The slug is the app as the session started: a save by rename (most editors) is not seen
    by the next start; a save in place (the links' caveat) is, as the README says."""
    show = f"{PY} -c \"print('code', open('a.txt').read(), open('b.txt').read(), flush=True); import time; time.sleep(600)\""
    root = write_app(tmp_path / "app", f"web: {show}\n", a__txt="a1", b__txt="b1")
    run = fresh(root, "--fresh", "-t", "1")
    run.wait_for(r"web\.1 +\| code a1 b1", timeout=20)
    (root / "a.new").write_text("a2")
    os.replace(root / "a.new", root / "a.txt")  # save by rename
    with open(root / "b.txt", "r+") as f:  # save in place
        f.write("b2")
    ctl(root, "restart", "web.1")
    run.wait_for(r"web\.1 +\| code a1 b2", timeout=20)
    ctl(root, "quit")
    assert run.wait() == 0
    assert (root / "a.txt").read_text() == "a2" and (root / "b.txt").read_text() == "b2"


# -- the copy-on-write path as an unprivileged user (CI runs as root, which needs no user namespace)

def _interpreter_for(uid):
    """A Python 3.11 the user can run (root's own may sit in /root)."""
    for candidate in (os.path.realpath(PY), "/usr/bin/python3.11", "/usr/bin/python3"):
        probe = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/bin/sh", "-c",
                                '"$0" -c "import sys; assert sys.version_info[:2] == (3, 11)"', candidate],
                               capture_output=True)
        if probe.returncode == 0:
            return candidate
    raise AssertionError("no Python 3.11 this user can run (install python3.11 from the distribution)")


@pytest.fixture
def unprivileged():
    """A world-readable copy of procrun and its start-time dependencies, an app root owned by
    ``nobody``, and how to run procrun as that user."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to become another user (CI runs as root)")
    base = tempfile.mkdtemp(prefix="procrun-test-", dir="/tmp")
    os.chmod(base, 0o755)
    lib = os.path.join(base, "lib")
    import procrun, psutil, yaml  # noqa: E401

    for module in (procrun, psutil, yaml):
        shutil.copytree(os.path.dirname(module.__file__), os.path.join(lib, module.__name__),
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", lib], check=True)
    uid = 65534
    python = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", _interpreter_for(uid)]
    yield base, uid, python, {"PYTHONPATH": lib, "HOME": base}
    subprocess.run(["rm", "-rf", base])


def test_copy_on_write_as_an_unprivileged_user(procrun, unprivileged):
    base, uid, python, env = unprivileged
    root = odd_tree(Path(base) / "app", f"web: {python[-1]} look.py move\n")
    (root / "secret").write_text("s")
    os.chmod(root / "secret", 0)
    scratch = os.path.join(base, "tmp")
    os.mkdir(scratch)
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(root), scratch], check=True)
    run = procrun("start", "--fresh", "-t", "1", cwd=root, python=python, env={**env, "TMPDIR": scratch})
    run.wait_for(r"fresh directories leave out .*1 unreadable \(secret\)", timeout=30)
    view = seen(run, "web.1")
    assert view["uid"] == uid  # the app sees its own uid, never namespace-root
    assert view["rows"] == 1 and not view["secret"]
    assert "fresh directories are copies" not in run.text()  # the copy-on-write path
    run.wait_for(r"warning +\| web\.1 wrote assets2/logo\.svg", timeout=20)
    run.wait_for(r"web\.1 +\| moved", timeout=20)  # mv removed assets/ too (a stop mid-mv leaves it)
    run.signal(signal.SIGINT)
    assert run.wait() == 130
    report = run.text().split("report ", 1)[1]
    assert "created assets2/logo.svg" in report and "deleted assets/logo.svg" in report and "app.db" not in report
    assert os.listdir(scratch) == []
    assert "Traceback" not in run.text() + run.stderr.decode()


def test_a_tmpdir_inside_the_app_root_is_not_copied_into_the_slug(procrun, tmp_path):
    """Found writing the README sample tests: with TMPDIR inside the app root, the fresh
    directories' temporary root was made there, and the slug copied itself ('File name too
    long' for every instance). The temporary root now goes outside the app root."""
    root = tmp_path / "app"
    write_app(root, "web: echo started in $PWD; sleep 100\n")
    (root / "tmp").mkdir()
    run = procrun("start", "--fresh", "--no-color", cwd=root, env={"TMPDIR": str(root / "tmp")})
    line = run.wait_for(r"web\.1 +\| started in (\S+)", timeout=20)
    assert not line[1].startswith(str(root)) and "File name too long" not in run.text()
    run.signal(signal.SIGINT)
    run.wait()
    assert os.listdir(root / "tmp") == []
