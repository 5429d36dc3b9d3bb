"""Bad input: one clear line naming the file and line, exit 2, no traceback."""

import subprocess
import sys

import pytest

from tests.integration.helpers import write_app


def procrun(cwd, *args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "procrun", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("procfile, files, args, expect", [
    ("web: ok\nnot a line\n", {}, ["start"], "Procfile:2: expected 'name: command'"),
    ("web: a\nweb: b\n", {}, ["check"], "Procfile:2: process type 'web' is already defined on line 1"),
    ("web.x: a\n", {}, ["start"], "Procfile:1: process type name 'web.x' is not valid"),
    ("web: a\n", {".env": "A=1\nB='open\n"}, ["start"], ".env:2: cannot read value"),
    ("web: a\n", {}, ["start", "-e", "missing.env"], "missing.env: env file not found"),
    ("web: a\n", {}, ["start", "-f", "Nope"], "Nope: Procfile not found"),
    ("web: a\n", {}, ["start", "-c", "web=two"], "--formation: 'web=two' is not TYPE=COUNT"),
    ("web: a\n", {}, ["start", "-c", "api=1"], "unknown process type 'api'"),
    ("web: a\n", {}, ["start", "api"], "Procfile has no process type 'api'; it defines web"),
    ("web: a\n", {}, ["start", "-p", "http"], "--port: 'http' is not a port number"),
    ("web: a\n", {}, ["start", "-p", "99999"], "--port: '99999' is out of range; use an integer from 1 to 65535"),
    ("web: a\n", {".env": "PORT=x\n"}, ["start"], "PORT in .env: 'x' is not a port number"),
    ("web: a\n", {}, ["start", "-t", "soon"], "'soon' is not a number of seconds"),
    ("web: a\n", {}, ["start", "--restart", "sometimes"], "invalid choice: 'sometimes'"),
    ("web: a\n", {}, ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("web: a\n", {}, ["start", "-d", "nowhere"], "--app-root 'nowhere' is not a directory"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, procfile, files, args, expect):
    write_app(tmp_path, procfile)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = procrun(tmp_path, *args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("procrun: ") and expect in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_check_reports_valid_procfile(tmp_path):
    write_app(tmp_path, "web: a\nworker: b\n", __env="A=1\n")
    result = procrun(tmp_path, "check")
    assert result.returncode == 0
    assert result.stderr.strip() == "Valid procfile detected (web, worker)"


def test_run_passes_exit_code_and_env(tmp_path):
    write_app(tmp_path, "web: a\n", __env="GREETING=hello\n")
    result = procrun(tmp_path, "run", "sh", "-c", 'echo "$GREETING $PORT"; exit 7')
    assert result.returncode == 7 and result.stdout == "hello 5000\n" and result.stderr == ""
    result = procrun(tmp_path, "-e", ".env", "run", "--", "sh", "-c", "exit 0")
    assert result.returncode == 0
    result = procrun(tmp_path, "run", "echo $GREETING")
    assert result.stdout == "hello\n"


def test_run_missing_command_is_127(tmp_path):
    write_app(tmp_path, "web: a\n")
    result = procrun(tmp_path, "run", "no-such-command-xyz")
    assert result.returncode == 127
    assert "no-such-command-xyz" in result.stderr


def test_check_validates_procrun_yaml(tmp_path):
    write_app(tmp_path, "web: a\n", procrun__yaml="watch:\n  debounce: soon\n")
    result = procrun(tmp_path, "check")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("procrun: procrun.yaml:2:13: watch.debounce must be a finite number of seconds")
    (tmp_path / "procrun.yaml").write_text("types:\n  api: {restart: always}\n")
    result = procrun(tmp_path, "check")
    assert result.returncode == 2 and "procrun.yaml:2: types: 'api' is not a process type in Procfile" in result.stderr
    (tmp_path / "procrun.yaml").write_text("types:\n  web: {after: [api]}\n")
    result = procrun(tmp_path, "check")
    assert result.returncode == 2 and "procrun.yaml:2:17: types.web.after: 'api' is not a process type" in result.stderr


def test_port_precedence_flag_yaml_dotenv_environment(tmp_path):
    write_app(tmp_path, "web: echo port=$PORT\n", __env="PORT=8000\n")
    assert "port=8000" in procrun(tmp_path, "start", env={"PORT": "9000"}).stdout  # .env over environment
    (tmp_path / "procrun.yaml").write_text("port: 7000\n")
    assert "port=7000" in procrun(tmp_path, "start").stdout  # procrun.yaml over .env
    assert "port=6000" in procrun(tmp_path, "start", "-p", "6000").stdout  # flags over procrun.yaml


def test_run_needs_only_the_environment_like_honcho(tmp_path):
    """Regression: `procrun run` required a Procfile; honcho run and foreman run do not."""
    (tmp_path / ".env").write_text("GREETING='hello from env'\nANSWER=42\n")
    (tmp_path / "test.py").write_text("import os, sys\nprint(os.environ['GREETING'], os.environ['ANSWER'])\n"
                                      "sys.exit(int(os.environ['ANSWER']) - 39)\n")
    ours = procrun(tmp_path, "run", sys.executable, "test.py")
    honcho = subprocess.run([sys.executable, "-m", "honcho", "run", sys.executable, "test.py"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert (ours.returncode, ours.stdout, ours.stderr) == (honcho.returncode, honcho.stdout, honcho.stderr) \
        == (3, "hello from env 42\n", "")


def test_command_line_manners(tmp_path):
    """Regression (#27): bare procrun, `procrun help [VERB]` and `-V` were usage errors; an unknown
    option pointed at `procrun --help`; verb helps had no description, some positionals no help,
    and export's listed the output flags it ignores; a missing Procfile was named relatively
    without -f/-d; a missing env file procrun.yaml names was not placed at its line; check
    said nothing of what it read; logs and report without a session pointed elsewhere."""
    write_app(tmp_path, "web: a\nworker: b\n", __env="A=1\n")
    bare = procrun(tmp_path)
    assert bare.returncode == 0 and "COMMAND" in bare.stdout and "start" in bare.stdout
    assert procrun(tmp_path, "help").stdout == bare.stdout
    helped = procrun(tmp_path, "help", "stop")
    assert helped.returncode == 0 and helped.stdout == procrun(tmp_path, "stop", "--help").stdout
    assert procrun(tmp_path, "-V").stdout.startswith("procrun ")
    bogus = procrun(tmp_path, "start", "--bogus")
    assert bogus.returncode == 2 and "see 'procrun start --help'" in bogus.stderr
    for verb in ("start", "run", "check", "export", "ps", "scale", "restart", "stop", "quit", "chaos", "attach",
                 "top", "report", "logs"):
        text = procrun(tmp_path, verb, "--help").stdout
        description = text.split("\n\n")[1]
        assert description[:1].isupper() and description.strip().endswith("."), (verb, description)
        positionals = text.split("positional arguments:")[1].split("options:")[0] if "positional" in text else ""
        assert all(len(line.split(None, 1)) == 2 or line.startswith("    ")
                   for line in positionals.strip("\n").splitlines()), (verb, positionals)
    export_help = procrun(tmp_path, "export", "--help").stdout
    assert "--no-color" not in export_help and "--restart" not in export_help and "--quiet" not in export_help
    check = procrun(tmp_path, "check")
    assert check.stdout.splitlines() == [f"Procfile: {tmp_path}/Procfile (2 types: web, worker)",
                                         f"env file: {tmp_path}/.env (1 value)", "procrun.yaml: none"]
    missing = procrun(tmp_path, "check", "-f", "Nope")
    assert f"{tmp_path}/Nope: Procfile not found" in missing.stderr and "-f FILE" in missing.stderr
    assert "-d DIR" in missing.stderr
    (tmp_path / "procrun.yaml").write_text("timeout: 3\nenv: [.env, local.env]\n")
    placed = procrun(tmp_path, "check")
    assert placed.returncode == 2 and placed.stderr.startswith("procrun: procrun.yaml:2: env: ") \
        and "local.env not found" in placed.stderr
    (tmp_path / "procrun.yaml").unlink()
    for verb, says in (("logs", "no session journal in ./.procrun/sessions"),
                       ("report", "no running session and no saved report in ./.procrun")):
        result = procrun(tmp_path, verb)
        assert says in result.stderr, result.stderr


def test_logs_of_an_unknown_instance_names_those_the_session_has(tmp_path):
    write_app(tmp_path, "web: echo hi\nworker: echo ho\n")
    procrun(tmp_path, "start")  # (the first exit ends it; its journal stays)
    root = tmp_path
    wrong = procrun(root, "logs", "nosuch")
    assert wrong.returncode == 2
    assert "no instance or type 'nosuch' in this session; instances: web.1, worker.1; types: web, worker" in wrong.stderr
    assert procrun(root, "logs", "web.7").returncode == 0  # a later instance of a known type
