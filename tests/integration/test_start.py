"""`procrun start` against real children: output, env, exit codes, restarts."""

import re
import signal
import sys

from tests.integration.helpers import marked, write_app

PY = sys.executable


def test_env_ports_and_names(procrun, tmp_path):
    write_app(tmp_path, "web: echo \"$PORT $PS $DYNO $HONCHO_PROCESS_NAME $FROM\"; sleep 30\n"
                        "worker: echo \"$PORT $PS $FROM\"; sleep 30\n", __env="FROM=dotenv\n")
    run = procrun("start", "-c", "web=2,worker=1", "-p", "6000", env={"FROM": "os"})
    run.wait_for(r"worker\.1 +\| 6100 worker\.1 dotenv")
    run.wait_for(r"web\.1 +\| 6000 web\.1 web\.1 web\.1 dotenv")
    run.wait_for(r"web\.2 +\| 6001 web\.2 web\.2 web\.2 dotenv")
    run.signal(signal.SIGINT)
    assert run.wait() == 130


def test_prefix_format_and_system_lines(procrun, tmp_path):
    write_app(tmp_path, "web: echo hi\n")
    run = procrun("start")
    assert run.wait() == 0
    lines = run.text().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d system \| web\.1 started \(pid=\d+\)", lines[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d web\.1  \| hi", lines[1])
    assert re.fullmatch(r"\d\d:\d\d:\d\d system \| web\.1 stopped \(rc=0\)", lines[2])


def test_first_exit_ends_session_with_its_code(procrun, tmp_path):
    write_app(tmp_path, "web: sleep 30\nbad: exit 3\n")
    run = procrun("start")
    assert run.wait() == 3
    assert "web.1 stopped (rc=-15)" in run.text()
    assert marked(run.token) == []


def test_port_from_dotenv_and_procfile_from_env(procrun, tmp_path):
    write_app(tmp_path, "web: exit 9\n", __env="PORT=7000\nPROCFILE=Other\n")
    (tmp_path / "Other").write_text("api: echo port=$PORT\n")
    run = procrun("start")
    assert run.wait() == 0
    assert "api.1  | port=7000" in run.text()


def test_options_after_subcommand_and_types(procrun, tmp_path):
    write_app(tmp_path, "web: echo web\nworker: echo worker\n")
    (tmp_path / "sub").mkdir()
    run = procrun("start", "-d", "..", "--no-prefix", "worker", cwd=tmp_path / "sub")
    assert run.wait() == 0
    lines = run.text().splitlines()
    assert "worker" in lines and "web" not in lines
    assert lines[0].startswith("worker.1 started (pid=")


def test_quiet_hides_a_type(procrun, tmp_path):
    write_app(tmp_path, "web: echo from-web; sleep 0.2\nworker: echo from-worker; sleep 30\n")
    run = procrun("start", "-q", "worker")
    assert run.wait() == 0
    assert "from-web" in run.text() and "from-worker" not in run.text()


def test_children_get_default_signal_dispositions(procrun, tmp_path):
    """A parent shell that ignored SIGINT must not pass that on to the app."""
    write_app(tmp_path, f"web: {PY} -c 'import signal; print(signal.getsignal(signal.SIGINT))'\n")
    run = procrun("start", preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert run.wait() == 0
    assert "default_int_handler" in run.text()


def test_restart_on_failure_with_backoff_then_clean_exit(procrun, tmp_path):
    counter = tmp_path / "count"
    write_app(tmp_path, f"web: n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; "
                        "echo try $n; [ $n -ge 4 ]\n")
    run = procrun("start", "--restart", "on-failure")
    assert run.wait() == 0
    text = run.text()
    assert "web.1 exited with exit code 1; restarting in 0.0s" in text
    assert "web.1 is crash-looping: it exited 3 times in a row" in text
    assert "try 4" in text and "web.1 exited cleanly; not restarting it" in text


def test_restart_always_keeps_going_until_interrupted(procrun, tmp_path):
    write_app(tmp_path, "web: echo tick; sleep 0.05\n")
    run = procrun("start", "--restart", "always")
    run.wait_for(r"web.1 exited with exit code 0; restarting")
    run.wait_for(r"crash-looping")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_a_port_already_taken_is_named_and_never_counts_as_ready(procrun, tmp_path):
    """Regression (#27): with another server on port 5000, web.1 was 'ready on port 5000' (the
    other server answered) while it had died with EADDRINUSE; behind the router the error came
    after the first processes' start and stop lines."""
    import socket
    import subprocess
    import time

    from tests.integration.helpers import free_base

    base = free_base()
    squatter = subprocess.Popen([sys.executable, "-m", "http.server", str(base), "--bind", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listens():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", base)) == 0

        deadline = time.monotonic() + 10
        while not listens():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        write_app(tmp_path, f"web: exec {sys.executable} -m http.server $PORT --bind 127.0.0.1\n")
        run = procrun("start", "-p", str(base), "--no-color")
        run.wait_for(rf"web\.1: port {base} is in use by pid {squatter.pid} \(.*http\.server {base}.*\); "
                     "pick another base port with -p")
        run.wait()
        assert "is ready on port" not in run.text()
        routed = procrun("start", "-p", str(base), "--router", "--no-color")
        assert routed.wait() != 0
        said = routed.text() + routed.stderr.decode()
        assert f"router cannot listen on 127.0.0.1:{base}: in use by pid {squatter.pid}" in said
        assert "started" not in said  # nothing started before the reason
    finally:
        squatter.kill()
        squatter.wait()


def test_a_listener_outside_the_instance_still_counts_when_the_port_was_free(procrun, tmp_path):
    """`docker run -p $PORT:80` listens through docker's process, not the instance's: a port
    that was free at spawn and answers now is ready, whoever holds it."""
    write_app(tmp_path, f"web: setsid {sys.executable} -m http.server $PORT --bind 127.0.0.1 & exec sleep 100\n")
    run = procrun("start", "--no-color")
    run.wait_for(r"web\.1 is ready on port", timeout=15)
    run.signal(signal.SIGINT)
    run.wait()
