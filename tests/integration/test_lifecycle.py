"""#28 with real processes: probes (http against a server that becomes healthy late, exec with
redis-cli against redis-server, log), liveness (a restart; a stopped instance spared), one-shot
types and start-order conditions, the release phase (fails, succeeds, under --chaos and --watch),
and a monorepo type with cwd (in the app root and in fresh directories)."""

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import ctl, free_base, marked, wait_until, write_app

PY = sys.executable
LATE = Path(__file__).parent / "lifecycle" / "late.py"


def test_an_http_probe_waits_for_a_server_that_becomes_healthy_late_and_gates_its_dependents(procrun, tmp_path):
    flag = tmp_path / "healthy"
    write_app(tmp_path, f"web: exec {PY} {LATE} {flag}\nworker: echo worker starts; exec sleep 600\n",
              procrun__yaml="types:\n  web: {ready: {http: /health, interval: 0.2}}\n  worker: {after: [web]}\n")
    run = procrun("start", "-p", str(free_base()))
    run.wait_count(r"web\.1 +\| GET /health 503", 3, timeout=20)  # answering, but not healthy: not ready
    assert "web.1 is ready" not in run.text() and "worker starts" not in run.text()
    assert "waiting" in ctl(tmp_path, "ps").stdout  # the worker waits
    flag.touch()
    run.wait_for(r"web\.1 is ready \(http GET /health passed\)", timeout=10)
    run.wait_for(r"web ready; starting worker")
    run.wait_for(r"worker starts")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_an_exec_probe_runs_redis_cli_ping_against_redis_server(procrun, tmp_path):
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("no redis-server here (scripts/test installs Debian's under CI)")
    write_app(tmp_path, "redis: sleep 1; exec redis-server --port $PORT --save '' --appendonly no\n"
                        "worker: echo redis answered; exec sleep 600\n",
              procrun__yaml="types:\n  redis:\n    ready: {exec: 'redis-cli -p $PORT ping | grep -q PONG', interval: 0.2}\n"
                            "  worker: {after: [redis]}\n")
    run = procrun("start", "-p", str(free_base()))
    run.wait_for(r"redis\.1 is ready \(exec 'redis-cli -p \$PORT ping \| grep -q PONG' passed\) after (1|2)\.", timeout=20)
    run.wait_for("redis answered")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_a_log_probe_is_ready_on_the_instance_s_own_line_and_exec_probes_never_outlive_their_timeout(procrun, tmp_path):
    write_app(tmp_path, "worker: sleep 1; printf '\\033[32mconsumer ready\\033[0m\\n'; exec sleep 600\n"
                        "slow: exec sleep 600\nother: echo consumer ready elsewhere; exec sleep 600\n",
              procrun__yaml="types:\n  worker: {ready: {log: '^consumer ready$'}}\n"
                            "  slow: {ready: {exec: 'echo probe-$$ >> probes.txt; exec sleep 30', timeout: 0.3, interval: 0.2}}\n")
    run = procrun("start", "-p", str(free_base()))
    run.wait_for(r"worker\.1 is ready \(log '\^consumer ready\$' passed\) after 1\.", timeout=10)
    wait_until(lambda: (tmp_path / "probes.txt").exists() and len((tmp_path / "probes.txt").read_text().split()) >= 3,
               timeout=10)
    time.sleep(0.5)
    sleepers = [pid for pid in marked(run.token) if b"sleep\x0030" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(sleepers) <= 1, sleepers  # each probe killed at its timeout (at most the one running now)
    with pytest.raises(AssertionError, match="no line matching"):
        run.wait_for(r"slow\.1 is ready", timeout=0.5)
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    wait_until(lambda: marked(run.token) == [], timeout=5)


def test_liveness_restarts_an_instance_that_fails_and_spares_one_that_is_stopped(procrun, tmp_path):
    flag = tmp_path / "healthy"
    flag.touch()
    write_app(tmp_path, f"web: exec {PY} {LATE} {flag}\n",
              procrun__yaml="types:\n  web: {health: {http: /health, interval: 0.2, timeout: 0.3, failures: 3}}\n")
    run = procrun("start", "-p", str(free_base()))
    run.wait_for(r"web\.1 is ready on port")
    first = int(run.wait_for(r"web\.1 started \(pid=(\d+)\)").group(1))
    os.kill(first, signal.SIGSTOP)  # a debugger's breakpoint: not answering, not dead
    with pytest.raises(AssertionError, match="no line matching"):  # (3 tries of 0.5 s would fail by then)
        run.wait_for("unhealthy", timeout=2.5)
    os.kill(first, signal.SIGCONT)
    flag.unlink()
    run.wait_for(r"web\.1 is unhealthy: http GET /health failed 3 times in a row \(last: status 503\); restarting it",
                 timeout=10)
    run.wait_count(r"web\.1 started \(pid=", 2, timeout=10)  # restarted (on-failure: a health probe implies it)
    assert f"pid={first})" in run.text() and run.text().count("web.1 started") == 2
    flag.touch()
    run.wait_count(r"web\.1 is ready on port", 2, timeout=10)
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_a_one_shot_completes_gates_its_dependents_and_shows_completed(procrun, tmp_path):
    write_app(tmp_path, "migrate: sleep 0.5; echo migrated\nworker: echo worker after migrate; exec sleep 600\n",
              procrun__yaml="types:\n  migrate: {oneshot: true}\n  worker: {after: {migrate: completed}}\n")
    run = procrun("start", "-p", str(free_base()))
    run.wait_for("worker waits for migrate to complete before it starts")
    run.wait_for(r"migrate\.1 completed")
    run.wait_for("migrate completed; starting worker")
    run.wait_for("worker after migrate")
    ps = ctl(tmp_path, "ps").stdout
    assert [l.split()[2] for l in ps.splitlines() if l.startswith("migrate.1")] == ["completed"], ps
    time.sleep(0.5)
    assert run.proc.poll() is None  # a one-shot's exit 0 never ends the session (honcho#253)
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


RELEASE = ("release: echo release of $(cat version.txt) in $(pwd); echo migrated > release-wrote.txt;"
           " test \"$(cat version.txt)\" != bad\n"
           "web: echo web runs $(cat version.txt); exec sleep 600\n")


def test_a_release_that_fails_ends_the_start_with_its_code_and_starts_nothing(procrun, tmp_path):
    write_app(tmp_path, RELEASE, version__txt="bad\n")
    run = procrun("start", "-p", str(free_base()))
    assert run.wait() == 1
    assert "release.1 failed (exit code 1); the formation does not start" in run.text()
    assert "web runs" not in run.text() and not (tmp_path / "release-wrote.txt").exists()


def test_a_release_runs_in_a_directory_thrown_away_before_the_formation_and_never_as_a_type(procrun, tmp_path):
    write_app(tmp_path, RELEASE, version__txt="v1\n")
    run = procrun("start", "web", "-p", str(free_base()))  # naming the types still runs release
    run.wait_for("release runs first; web starts once it completes")
    where = run.wait_for(r"release of v1 in (\S+)").group(1)
    assert where != str(tmp_path) and not where.startswith(str(tmp_path))
    run.wait_for(r"release\.1 completed")
    run.wait_for("web runs v1")
    run.wait_for(r"release\.1 wrote release-wrote\.txt")  # what it wrote is named, and gone
    assert not (tmp_path / "release-wrote.txt").exists()
    assert "is not a process type" in ctl(tmp_path, "scale", "release=2", check=False).stderr or \
        "cannot be scaled" in ctl(tmp_path, "scale", "release=2", check=False).stderr
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    skipped = procrun("start", "--no-release", "-p", str(free_base()))
    skipped.wait_for("web runs v1")
    assert "release" not in skipped.text()
    skipped.signal(signal.SIGTERM)
    assert skipped.wait() == 143


def test_release_under_chaos_is_never_disrupted_and_under_watch_runs_again_before_the_restarts(procrun, tmp_path):
    write_app(tmp_path, RELEASE, version__txt="v1\n")
    run = procrun("start", "--chaos", "--chaos-interval", "0.2", "--chaos-seed", "3", "--no-router",
                  "--watch", ".", "-p", str(free_base()))
    run.wait_for("web runs v1", timeout=20)
    assert "release.1" not in "".join(l for l in run.text().splitlines() if "chaos" in l.split("|")[0])
    (tmp_path / "version.txt").write_text("v2\n")
    run.wait_for(r"running release\.1 before restarting web", timeout=15)
    run.wait_for("release of v2", timeout=15)
    run.wait_for("web runs v2", timeout=15)
    assert run.text().index("release of v2") < run.text().index("web runs v2")
    (tmp_path / "version.txt").write_text("bad\n")
    run.wait_for(r"release\.1 failed \(exit code 1\); the running formation is kept", timeout=15)
    run.wait_for(r"not restarting web: release\.1 did not complete")
    assert "web runs bad" not in run.text() and run.proc.poll() is None
    run.signal(signal.SIGTERM)
    run.wait()


@pytest.mark.parametrize("fresh", [False, True])
def test_a_monorepo_type_runs_in_its_folder_with_its_own_env(procrun, tmp_path, fresh):
    (tmp_path / "services" / "api").mkdir(parents=True)
    (tmp_path / "services" / "api" / "marker.txt").write_text("api code\n")
    write_app(tmp_path, "api: echo \"in $(basename $(pwd)) $(cat marker.txt) LEVEL=$LEVEL FROM=$FROM\"; exec sleep 600\n",
              __env="LEVEL=dotenv\nFROM=dotenv\n", api__env="FROM=env_file\n",
              procrun__yaml="types:\n  api: {cwd: services/api, env: {LEVEL: yaml}, env_file: [api.env]}\n")
    run = procrun("start", *(["--fresh"] if fresh else []), "-p", str(free_base()))
    run.wait_for(r"in api api code LEVEL=yaml FROM=env_file", timeout=15)
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_bad_per_type_settings_are_one_line_at_their_place(tmp_path):
    import subprocess

    write_app(tmp_path, "api: true\n", procrun__yaml="types:\n  api:\n    cwd: services/none\n")
    result = subprocess.run([PY, "-m", "procrun", "start"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("procrun: procrun.yaml:3:10: types.api.cwd: services/none is not a folder"), result.stderr
    (tmp_path / "procrun.yaml").write_text("types:\n  api: {env_file: [missing.env]}\n")
    result = subprocess.run([PY, "-m", "procrun", "check"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "procrun.yaml:2:19: types.api.env_file: missing.env: env file not found" in result.stderr


def test_under_watch_a_code_change_runs_a_completed_one_shot_again(procrun, tmp_path):
    write_app(tmp_path, "migrate: echo migrating to $(cat version.txt)\nworker: echo worker on $(cat version.txt); exec sleep 600\n",
              version__txt="v1\n", procrun__yaml="types:\n  migrate: {oneshot: true}\n  worker: {after: {migrate: completed}}\n")
    run = procrun("start", "--watch", ".", "-p", str(free_base()))
    run.wait_for(r"migrate\.1 completed")
    run.wait_for("worker on v1")
    (tmp_path / "version.txt").write_text("v2\n")
    run.wait_for("migrating to v2", timeout=15)  # as a deploy runs its migrations
    run.wait_count(r"migrate\.1 completed", 2, timeout=10)
    run.wait_for("worker on v2", timeout=10)
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
