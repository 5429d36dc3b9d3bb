"""Exports checked by the real engines: supervisord, systemd-analyze, kubernetes-validate,
check-jsonschema's compose-spec schema, and podman kube play."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration.helpers import TOKEN_VAR, free_base, marked, wait_until, write_app

BIN = Path(sys.executable).parent
PY = sys.executable


def export(root, *args, check=True):
    result = subprocess.run([PY, "-m", "procrun", "export", *args], cwd=root, capture_output=True, text=True,
                            timeout=60)
    if check:
        assert result.returncode == 0, result
    return result


TRICKY = "worker: echo \"it's 100% \\\"$GREETING\\\" $PS\" > out-$PS.txt\n"
# .env values supervisord's own environment= could not carry: both quotes, a trailing quote,
# backslashes, a newline, ';' and '#' after a space, % and $.
HOSTILE = {"BOTH": "it's \"quoted\"", "SQ": "has 'sq'", "BS": "C:\\path\\x", "NL": "line1\nline2",
           "SEMI": "a ;b #c", "PCT": "100%(x)s $HOME"}
HOSTILE_ENV = """BOTH="it's \\"quoted\\""
SQ="has 'sq'"
BS='C:\\path\\x'
NL="line1\\nline2"
SEMI='a ;b #c'
PCT='100%(x)s $HOME'
"""
DUMP = f" ; {PY} -c 'import json, os; json.dump(dict(os.environ), open(\"env-\" + os.environ[\"PS\"], \"w\"))'" \
       " ; : '#not a comment' ; exec sleep 600\n"


@pytest.mark.timeout(120)
def test_supervisord_runs_the_export_and_stops_everything(tmp_path):
    app = tmp_path / "app"
    port = free_base()
    write_app(app, f"web: exec {PY} -m http.server --bind 127.0.0.1 $PORT\n" + TRICKY.rstrip("\n") + DUMP,
              __env='GREETING="hello world"\n' + HOSTILE_ENV)
    out = tmp_path / "sv"
    export(app, "supervisord", str(out), "-c", "web=2,worker=1", "-p", str(port), "-a", "shop", "-t", "2")
    sock = tmp_path / "s.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""[unix_http_server]
file={sock}
[supervisord]
nodaemon=true
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{sock}
[include]
files={out}/shop.conf
""")
    token = os.urandom(8).hex()
    env = dict(os.environ, **{TOKEN_VAR: token})
    daemon = subprocess.Popen([str(BIN / "supervisord"), "-c", str(conf)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def status():
            r = subprocess.run([str(BIN / "supervisorctl"), "-c", str(conf), "status"], capture_output=True, text=True)
            return r.stdout

        try:
            wait_until(lambda: status().count("RUNNING") == 3, timeout=30)
        except AssertionError:
            logs = "".join(f"{p.name}: {p.read_text()[-2000:]}" for p in sorted((out / "log").glob("*.log")))
            raise AssertionError(f"not all RUNNING within 30 s:\n{status()}\n"
                                 f"{(tmp_path / 'supervisord.log').read_text()[-3000:]}\n{logs}") from None
        lines = status().splitlines()
        assert sorted(l.split()[0] for l in lines) == ["shop:shop-web-1", "shop:shop-web-2", "shop:shop-worker-1"]
        for i in (0, 1):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port + i}/", timeout=5).read()
            assert b"Directory listing" in body
        wait_until(lambda: (app / "out-worker.1.txt").exists())
        assert (app / "out-worker.1.txt").read_text() == 'it\'s 100% "hello world" worker.1\n'
        wait_until(lambda: (app / "env-worker.1").exists() and (app / "env-worker.1").stat().st_size)
        seen = json.loads((app / "env-worker.1").read_text())
        assert {k: seen.get(k) for k in HOSTILE} == HOSTILE  # every value byte-exact
        assert (seen["PORT"], seen["PS"], seen["DYNO"]) == (str(port + 100), "worker.1", "worker.1")
        assert (out / "log" / "web-1.log").exists()
        assert len(marked(token)) >= 3
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    wait_until(lambda: marked(token) == [], timeout=5)


def test_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    app = tmp_path / "app"
    write_app(app, "web: python3 -m http.server $PORT\n" + TRICKY, __env="A=1\nB='x $y %z'\n")
    out = tmp_path / "units"
    export(app, "systemd", str(out), "-c", "web=2", "-a", "shop")
    units = sorted(str(p) for p in out.iterdir() if p.suffix in (".service", ".target"))
    assert len(units) == 4
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result
    # the check is real: a broken unit fails it
    broken = out / "broken.service"
    broken.write_text("[Service]\nExecStart=relative/path\n")
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 or result.stderr


def test_kubernetes_validate_strict(tmp_path):
    app = tmp_path / "app"
    write_app(app, "web: python3 -m http.server $PORT\nworker: sleep 600\n", __env="A=1\n")
    out = tmp_path / "k8s"
    assert "needs the container image" in export(app, "kubernetes", str(out), check=False).stderr
    export(app, "kubernetes", str(out), "-c", "web=3,worker=2", "--image", "shop:1", "-a", "shop", "--chaos")
    validate = [str(BIN / "kubernetes-validate"), "--strict"]
    result = subprocess.run([*validate, str(out / "shop.yaml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result
    assert result.stdout.count("passed") == 3
    broken = tmp_path / "broken.yaml"
    broken.write_text((out / "shop.yaml").read_text().replace("replicas: 3", "replicas: three"))
    assert subprocess.run([*validate, str(broken)], capture_output=True, text=True, timeout=120).returncode != 0
    assert "kind: Schedule" in (out / "shop-chaos-mesh.yaml").read_text()


def test_kubernetes_chaos_backing_from_the_command_line_and_procrun_yaml(tmp_path):
    """The CLI accepts --chaos-backing for export, reads chaos.backing_targets, says what it cannot
    export, and every object it writes passes the CRDs' schemas (tests/unit/test_chaos_mesh.py)."""
    import yaml
    from jsonschema import Draft4Validator

    app = tmp_path / "app"
    write_app(app, "web: python3 -m http.server $PORT\n", __env="REDIS_URL=redis://localhost:6379/0\n"
              "DATABASE_URL=postgres://127.0.0.1:5432/db\n",
              procrun__yaml="chaos:\n  backing_targets: {REDIS_URL: app=redis}\n"
                            "  backing_faults: [latency, 'bandwidth rate=8', reset]\n")
    out = tmp_path / "k8s"
    result = export(app, "kubernetes", str(out), "--image", "shop:1", "-a", "shop", "--chaos", "--chaos-backing")
    assert "backing fault reset (every open connection reset) has no NetworkChaos equivalent" in result.stderr
    assert "no target for DATABASE_URL" in result.stderr
    docs = list(yaml.safe_load_all((out / "shop-chaos-mesh.yaml").read_text()))
    network = [d["spec"]["networkChaos"] for d in docs if d["spec"]["type"] == "NetworkChaos"]
    assert len(network) == 4  # latency and bandwidth (what chaos.backing_faults chose) for each service
    assert {n["action"] for n in network} == {"delay", "bandwidth"}
    assert {n["bandwidth"]["rate"] for n in network if n["action"] == "bandwidth"} == {"64kbps"}  # 8 KB/s
    schema = json.loads((Path(__file__).parents[1] / "unit" / "chaos_mesh_crds" / "Schedule.v1alpha1.schema.json").read_text())
    for doc in docs:
        Draft4Validator(schema).validate(doc)


def test_compose_spec_schema(tmp_path):
    app = tmp_path / "app"
    write_app(app, "web: python3 -m http.server $PORT\nworker: sleep 600\n", __env="PRICE=$5\n")
    out = tmp_path / "compose"
    export(app, "compose", str(out), "-c", "web=2", "--image", "shop:1")
    check = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run([*check, str(out / "compose.yaml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result
    broken = tmp_path / "broken.yaml"
    broken.write_text((out / "compose.yaml").read_text().replace("deploy:", "deploy_typo:"))
    assert subprocess.run([*check, str(broken)], capture_output=True, text=True, timeout=120).returncode != 0


def test_export_errors(tmp_path):
    write_app(tmp_path, "web: x\n")
    for args, words in [(["nomad", "out"], "unknown export format 'nomad'"),
                        (["supervisord", "/proc/forbidden/out"], "cannot write to /proc/forbidden/out")]:
        result = export(tmp_path, *args, check=False)
        assert result.returncode == 2 and words in result.stderr and len(result.stderr.splitlines()) == 1
    (tmp_path / "file").write_text("x")
    result = export(tmp_path, "compose", str(tmp_path / "file"), check=False)
    assert result.returncode == 2 and "is not a directory" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["Procfile", "file"]  # nothing half-written


PODMAN_IMAGE = "localhost/procrun-test:busybox"


@pytest.fixture
def podman_app(tmp_path):
    if shutil.which("podman") is None or shutil.which("busybox") is None:
        pytest.skip("podman and busybox-static (Debian) are not installed; CI installs them")
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=120)
    if info.returncode != 0:
        pytest.skip(f"podman cannot run on this machine: {info.stderr.strip().splitlines()[-1:]}")
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox"), rootfs / "bin" / "busybox")
    for tool in ("sh", "sleep", "echo"):
        os.symlink("busybox", rootfs / "bin" / tool)
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tmp_path / "rootfs.tar"), "."], check=True)
    imported = subprocess.run(["podman", "import", str(tmp_path / "rootfs.tar"), PODMAN_IMAGE],
                              capture_output=True, text=True, timeout=120)
    if imported.returncode != 0:
        pytest.skip(f"podman cannot store images on this machine: {imported.stderr.strip()[-200:]}")
    app = tmp_path / "app"
    write_app(app, "web: echo web on $PORT; exec sleep 600\nworker: exec sleep 600\n")
    out = tmp_path / "k8s"
    export(app, "kubernetes", str(out), "-c", "web=2,worker=3", "--image", PODMAN_IMAGE, "-a", "pr")
    manifest = str(out / "pr.yaml")
    conf = tmp_path / "containers.conf"  # ulimits this sandbox lets a container set
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={_limit("n")}", "nproc={_limit("u")}"]\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    play = subprocess.run(["podman", "kube", "play", manifest], capture_output=True, text=True, timeout=300, env=env)
    yield play, env
    subprocess.run(["podman", "kube", "down", manifest], capture_output=True, timeout=300, env=env)


def _limit(flag):
    import resource
    kind = resource.RLIMIT_NOFILE if flag == "n" else resource.RLIMIT_NPROC
    soft, hard = resource.getrlimit(kind)
    return f"{soft}:{hard}"


def _containers(env):
    out = subprocess.run(["podman", "ps", "-a", "--format", "json"], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    return [c for c in json.loads(out or "[]") if not c.get("IsInfra")]


def test_podman_kube_play_creates_each_deployment_with_its_replicas(podman_app):
    play, env = podman_app
    names = sorted(n for c in _containers(env) for n in c["Names"])
    assert sum(n.startswith("pr-web-pod-") for n in names) == 2, (names, play.stderr)
    assert sum(n.startswith("pr-worker-pod-") for n in names) == 3, (names, play.stderr)


def test_podman_kube_play_runs_the_containers(podman_app):
    play, env = podman_app
    if "Operation not permitted" in play.stderr:
        pytest.skip("this sandbox forbids containers to start (crun: setrlimit: Operation not permitted); "
                    "the pods and replica counts are checked by the test above")
    assert play.returncode == 0, play.stderr
    running = [c for c in _containers(env) if c["State"] == "running"]
    assert len(running) == 5


def test_export_keeps_a_zero_timeout(tmp_path):
    """-t 0 means no grace; it must not fall back to the 5 s default (engines get their 1 s minimum)."""
    write_app(tmp_path, "web: x\n")
    export(tmp_path, "systemd", str(tmp_path / "out"), "-t", "0", "-a", "a")
    assert "TimeoutStopSec=1\n" in (tmp_path / "out" / "a-web-1.service").read_text()
    export(tmp_path, "systemd", str(tmp_path / "out5"), "-a", "a")
    assert "TimeoutStopSec=5\n" in (tmp_path / "out5" / "a-web-1.service").read_text()


def test_export_into_a_mount_point(tmp_path):
    """Regression: staging beside the target and renaming across devices failed (EXDEV)."""
    write_app(tmp_path / "app", "web: run web\nworker: run worker\n")
    target = tmp_path / "mnt"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        for fmt in ("supervisord", "systemd", "compose"):
            export(tmp_path / "app", fmt, str(target))
        assert {p.name for p in target.iterdir()} >= {"app.conf", "app-web.sh", "app.target", "compose.yaml"}
        assert not [p for p in target.iterdir() if p.name.startswith(".procrun-export-")]
    finally:
        subprocess.run(["umount", str(target)], check=True)


ODD_APPS = ["sp ace", "pc%d$HOME", "q'\"x", "üñí", ".dot", "a:b/c", "x" * 62, "semi;colon #hash"]
LONG_TYPE = "w" * 250


@pytest.mark.parametrize("app_name", ODD_APPS)
def test_exports_for_any_app_name_pass_each_engine_s_own_check(tmp_path, app_name):
    """Regression (#27): systemd units were not escaped (systemd-analyze verify failed), Kubernetes
    names from a 62-character root ended in '-' and the refusal blamed the Procfile types, a
    250-character type name gave 'File name too long; choose a directory you can write'. Each
    engine gets names valid by its own rules; two types never become one."""
    app = tmp_path / "app"
    write_app(app, f"web: python3 -m http.server $PORT\nworker: sleep 600\n{LONG_TYPE}: sleep 600\n", __env="A=1\n")
    units = tmp_path / "units"
    export(app, "systemd", str(units), "-a", app_name)
    services = sorted(p for p in units.iterdir() if p.suffix == ".service")
    assert len(services) == 3 and all(len(p.name.encode()) <= 255 for p in units.iterdir())
    if shutil.which("systemd-analyze"):
        result = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(units.glob("*.service"))),
                                 *map(str, units.glob("*.target"))], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stderr == "", result
    k8s = tmp_path / "k8s"
    export(app, "kubernetes", str(k8s), "--image", "shop:1", "-a", app_name)
    manifest = next(k8s.glob("*.yaml"))
    result = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", str(manifest)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result
    import yaml

    names = [d["metadata"]["name"] for d in yaml.safe_load_all(manifest.read_text()) if d["kind"] == "Deployment"]
    assert len(set(names)) == 3 and all(len(n) <= 63 and n[0].isalnum() and n[-1].isalnum() for n in names)
    compose = tmp_path / "compose"
    export(app, "compose", str(compose), "--image", "shop:1", "-a", app_name)
    check = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                            str(compose / "compose.yaml")], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check
    sv = tmp_path / "sv"
    export(app, "supervisord", str(sv), "-a", app_name)
    assert len(list(sv.glob("*.sh"))) == 3 and len(list(sv.glob("*.conf"))) == 1


@pytest.mark.timeout(120)
def test_supervisord_runs_an_export_whose_names_it_would_refuse(tmp_path):
    """Regression (#27): supervisord refused a space (Invalid name), lost a program to % (the
    group named one that did not exist) and stuck in BACKOFF on a quote (No closing quotation)."""
    app = tmp_path / "app"
    write_app(app, "web: exec sleep 600\nworker: exec sleep 600\n")
    out = tmp_path / 'sv "quoted" dir'
    export(app, "supervisord", str(out), "-a", "q'\"x %d sp:a/c")
    conf = next(out.glob("*.conf"))
    with supervisord(tmp_path, str(conf).replace(" ", "?")) as status:  # (an include is a glob)
        wait_until(lambda: status().count("RUNNING") == 2, timeout=30)


@contextlib.contextmanager
def supervisord(tmp_path, include):
    """supervisord running the export ``include`` names; yields its `supervisorctl status`. Every
    process it started is gone after."""
    sock = tmp_path / "s.sock"
    main = tmp_path / "supervisord.conf"
    main.write_text(f"[unix_http_server]\nfile={sock}\n[supervisord]\nnodaemon=true\nlogfile={tmp_path}/sv.log\n"
                    f"pidfile={tmp_path}/sv.pid\n[rpcinterface:supervisor]\n"
                    "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                    f"[supervisorctl]\nserverurl=unix://{sock}\n[include]\nfiles={include}\n")
    token = os.urandom(8).hex()
    daemon = subprocess.Popen([str(BIN / "supervisord"), "-c", str(main)], env=dict(os.environ, **{TOKEN_VAR: token}),
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield lambda: subprocess.run([str(BIN / "supervisorctl"), "-c", str(main), "status"], capture_output=True,
                                     text=True).stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    wait_until(lambda: marked(token) == [], timeout=5)


@pytest.mark.timeout(120)
def test_an_exported_virtualenv_app_finds_its_own_commands(tmp_path):
    """Regression (#27): exports wrote the PATH of the shell that ran the export. The app's own
    .venv/bin (and node_modules/.bin) now come first, then the system's: a Procfile that says
    `gunicorn ...` starts under supervisord launched with a bare PATH, as an init system does."""
    import site
    import venv

    app = tmp_path / "app"
    write_app(app, "web: gunicorn -b 127.0.0.1:$PORT -w 1 hello:app\n",
              hello__py="def app(environ, start_response):\n"
                        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello']\n")
    venv.create(app / ".venv", with_pip=False)
    packages = next((app / ".venv" / "lib").glob("python3*/site-packages"))
    (packages / "ours.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # gunicorn, as pip would have put it
    script = app / ".venv" / "bin" / "gunicorn"
    script.write_text(f"#!{app / '.venv' / 'bin' / 'python'}\nfrom gunicorn.app.wsgiapp import run\nrun()\n")
    script.chmod(0o755)
    port = free_base()
    out = tmp_path / "sv"
    export(app, "supervisord", str(out), "-p", str(port), "-a", "venvapp")
    launcher = (out / "venvapp-web.sh").read_text()
    assert f"export PATH={app}/.venv/bin:/usr/local/sbin:" in launcher
    units = tmp_path / "units"
    export(app, "systemd", str(units), "-a", "venvapp")
    assert f'"PATH={app}/.venv/bin:/usr/local/sbin:' in (units / "venvapp-web-1.service").read_text()
    sock, main = tmp_path / "s.sock", tmp_path / "supervisord.conf"
    main.write_text(f"[unix_http_server]\nfile={sock}\n[supervisord]\nnodaemon=true\nlogfile={tmp_path}/sv.log\n"
                    f"pidfile={tmp_path}/sv.pid\n[include]\nfiles={out}/venvapp.conf\n")
    token = os.urandom(8).hex()
    bare = {"PATH": "/usr/bin:/bin", TOKEN_VAR: token, "HOME": str(tmp_path)}
    daemon = subprocess.Popen([str(BIN / "supervisord"), "-c", str(main)], env=bare, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answers():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read() == b"hello"
            except OSError:
                return False

        wait_until(answers, timeout=30)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    wait_until(lambda: marked(token) == [], timeout=10)


LIFECYCLE_YAML = """\
types:
  web: {cwd: services/api, env: {GREETING: from-yaml}, env_file: [web.env]}
  migrate: {oneshot: true}
  worker: {after: {migrate: completed, web: ready}}
"""
LIFECYCLE_PROCFILE = (f"release: {PY} -c 'print(1)'\n"
                      f"web: echo \"$GREETING $EXTRA $(pwd)\" > seen-$PS.txt; exec {PY} -m http.server --bind 127.0.0.1 $PORT\n"
                      "migrate: touch migrated-$PS\n"
                      "worker: exec sleep 600\n")


def _lifecycle_app(tmp_path):
    app = tmp_path / "app"
    write_app(app, LIFECYCLE_PROCFILE, __env="GREETING=from-dotenv\nEXTRA=dotenv\n", procrun__yaml=LIFECYCLE_YAML,
              web__env="EXTRA=from-web-env\n")
    (app / "services" / "api").mkdir(parents=True)
    return app


def test_exports_carry_release_one_shots_start_order_and_per_type_settings(tmp_path):
    """#28: release is a Job (its own file), a systemd oneshot unit the services are ordered after
    and require, a Compose service the others depend on completing; one-shots are Jobs, oneshot
    units, restart on-failure; a type's env wins over .env, its cwd is its working directory.
    Each engine's own check passes."""
    import yaml

    app = _lifecycle_app(tmp_path)
    units = tmp_path / "units"
    export(app, "systemd", str(units), "-a", "shop")
    web, release, worker = ((units / f"shop-{n}-1.service").read_text() for n in ("web", "release", "worker"))
    assert "Type=oneshot" in release and "RemainAfterExit=yes" in release and "Restart=no" in release
    assert "PORT=" not in release
    assert f"WorkingDirectory={app}/services/api" in web and "EnvironmentFile=" in web
    assert "GREETING=\"from-yaml\"" in (units / "shop-web.env").read_text()
    assert "After=shop-migrate-1.service shop-release-1.service shop-web-1.service" in worker
    assert "Requires=shop-migrate-1.service shop-release-1.service" in worker and "Wants=shop-web-1.service" in worker
    if shutil.which("systemd-analyze"):
        result = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(units.glob("*.service"))),
                                 *map(str, units.glob("*.target"))], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stderr == "", result
    k8s = tmp_path / "k8s"
    export(app, "kubernetes", str(k8s), "--image", "shop:1", "-a", "shop", "--app-dir", "/srv/shop")
    for manifest in ("shop.yaml", "shop-release.yaml"):
        result = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", str(k8s / manifest)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all((k8s / "shop.yaml").read_text())
            if d["kind"] != "Service"}
    assert {n: d["kind"] for n, d in docs.items()} == {"shop-web": "Deployment", "shop-migrate": "Job",
                                                      "shop-worker": "Deployment"}
    container = docs["shop-web"]["spec"]["template"]["spec"]["containers"][0]
    assert container["workingDir"] == "/srv/shop/services/api"
    assert {e["name"]: e.get("value") for e in container["env"]}["GREETING"] == "from-yaml"
    job = yaml.safe_load((k8s / "shop-release.yaml").read_text())
    assert job["kind"] == "Job" and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    compose = tmp_path / "compose"
    export(app, "compose", str(compose), "--image", "shop:1", "-a", "shop")
    check = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                            str(compose / "compose.yaml")], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check
    services = yaml.safe_load((compose / "compose.yaml").read_text())["services"]
    assert services["release"]["restart"] == "no" and services["migrate"]["restart"] == "on-failure"
    assert services["worker"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                                "web": {"condition": "service_started"},
                                                "release": {"condition": "service_completed_successfully"}}
    assert services["web"]["working_dir"] == "/app/services/api"
    assert services["web"]["environment"]["EXTRA"] == "from-web-env"


@pytest.mark.timeout(120)
def test_supervisord_runs_one_shots_to_completion_and_says_it_cannot_run_release(tmp_path):
    app = _lifecycle_app(tmp_path)
    port = free_base()
    out = tmp_path / "sv"
    result = export(app, "supervisord", str(out), "-a", "shop", "-p", str(port))
    assert "supervisord cannot run release before the other programs start" in result.stderr
    conf = out / "shop.conf"
    assert "shop-release" not in conf.read_text().split("[group:shop]")[1]
    with supervisord(tmp_path, conf) as status:
        wait_until(lambda: "EXITED" in status() and status().count("RUNNING") == 2, timeout=30)
        assert "FATAL" not in status() and "BACKOFF" not in status(), status()
        assert [l.split()[:2] for l in status().splitlines() if "migrate" in l] == [["shop:shop-migrate-1", "EXITED"]]
        assert (app / "migrated-migrate.1").exists()  # (it has no cwd: the app root)
        seen = app / "services" / "api" / "seen-web.1.txt"
        wait_until(seen.exists)
        assert seen.read_text().split() == ["from-yaml", "from-web-env", str(app / "services" / "api")]
