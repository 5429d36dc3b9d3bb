"""--watch with real file edits."""

import sys

from tests.integration.helpers import free_base, write_app

PY = sys.executable
WEB = (f"exec {PY} -c \"import http.server,os; print('web', open('version.txt').read().strip(), "
       "os.environ.get('GREETING'), flush=True); "
       "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.BaseHTTPRequestHandler).serve_forever()\"")
WORKER = "echo worker $GREETING; exec sleep 600"
CONFIG = """
watch:
  debounce: 0.1
types:
  web: {watch: ["*.py", version.txt]}
  worker: {watch: ["jobs/"]}
"""


def app(tmp_path):
    return write_app(tmp_path, f"web: {WEB}\nworker: {WORKER}\n", __env="GREETING=hi\n",
                     procrun__yaml=CONFIG, version__txt="1\n", app__py="x = 1\n")


def start(procrun, tmp_path, *args):
    run = procrun("start", "--watch", "-t", "1", "-p", str(free_base()), *args)
    run.wait_for(r"watch +\| watching \. for changes")
    run.wait_for(r"web\.1 is ready")
    run.wait_for(r"worker\.1 +\| worker hi")
    return run


def test_code_change_restarts_only_the_affected_type(procrun, tmp_path):
    app(tmp_path)
    run = start(procrun, tmp_path, "--router")
    (tmp_path / "version.txt").write_text("2\n")
    run.wait_for(r"watch +\| rolling restart of web: web\.2 first, then web\.1 one by one")
    run.wait_count(r"web\.\d +\| web 2 hi", 2)  # the surge instance, then web.1 again
    run.wait_for(r"web\.2 stopped")  # surge removed once web.1 is back
    assert "worker.1 stopped" not in run.text()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "task.sh").write_text("echo\n")
    run.wait_for(r"watch +\| restarting worker\.1")
    run.wait_count(r"worker\.1 +\| worker hi", 2)
    assert run.text().count("web.1 started") == 2  # web untouched by the worker's change
    assert run.proc.poll() is None


def test_procfile_edits_add_types_and_broken_edits_keep_the_formation(procrun, tmp_path):
    app(tmp_path)
    run = start(procrun, tmp_path)
    (tmp_path / "Procfile").write_text(f"web: {WEB}\nworker: {WORKER}\nclock: echo tick; exec sleep 600\n")
    run.wait_for(r"watch +\| Procfile: clock added; starting it")
    run.wait_for(r"clock\.1 +\| tick")
    (tmp_path / "Procfile").write_text(f"web: {WEB}\nthis is not a process line\n")
    run.wait_for(r"watch +\| Procfile:2: expected 'name: command'.*\(keeping the running formation\)")
    (tmp_path / "Procfile").write_text(f"web: {WEB}\nclock: echo tock; exec sleep 600\n")
    run.wait_for(r"watch +\| Procfile: worker removed; stopping it")
    run.wait_for(r"clock\.1 +\| tock")
    assert run.proc.poll() is None


def test_env_change_restarts_all_with_the_new_value(procrun, tmp_path):
    app(tmp_path)
    run = start(procrun, tmp_path)  # no router: web restarts in place on its fixed port
    (tmp_path / ".env").write_text("GREETING=hello\n")
    run.wait_for(r"worker\.1 +\| worker hello")
    run.wait_for(r"web\.1 +\| web 1 hello")
    assert "rolling" not in run.text() and "web.2" not in run.text()


def test_watch_never_reacts_to_procrun_output_redirected_into_the_app_root(tmp_path):
    """Regression: `procrun start --watch > out.txt` restarted at every line it wrote."""
    import os
    import signal
    import subprocess

    from tests.integration.helpers import TOKEN_VAR, marked, wait_until

    write_app(tmp_path, "ticker: while true; do echo tick; sleep 0.1; done\n",
              procrun__yaml="watch:\n  debounce: 0.05\n")
    token = "own-" + tmp_path.name
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        proc = subprocess.Popen([PY, "-m", "procrun", "start", "--watch", "-t", "0.5"], cwd=tmp_path, stdout=f,
                                stderr=subprocess.STDOUT, env=dict(os.environ, **{TOKEN_VAR: token}),
                                start_new_session=True)
    try:
        wait_until(lambda: out.read_text().count("| tick") >= 30, timeout=20)  # 3 s of lines, 60 debounce windows
        text = out.read_text()
        assert "changed:" not in text and "restarting" not in text, text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        for pid in marked(token):
            os.kill(pid, signal.SIGKILL)


def test_a_file_rewritten_at_every_start_suspends_watch_restarts_of_that_type(procrun, tmp_path):
    # the write comes a second after each start: the session starts its processes before its watcher
    write_app(tmp_path, f"stamper: {PY} -c \"import time; time.sleep(1); open('stamp.txt', 'w').write(str(time.time()))\"; "
                        "exec sleep 600\nother: exec sleep 600\n",
              procrun__yaml="watch:\n  debounce: 0.05\ntypes:\n  stamper: {watch: [stamp.txt]}\n  other: {watch: [x]}\n")
    run = procrun("start", "--watch", "-t", "0.5")
    run.wait_for(r"watch +\| stamper restarted 5 times in 60s for changes to stamp\.txt, which keeps changing; "
                 r"watch restarts of stamper are suspended until another file changes or 'procrun restart stamper'",
                 timeout=30)
    assert "restarting other" not in run.text()
