import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.errors import ConfigError
from procrun.project.config import parse as parse_both
from procrun.project.probes import PORT, SPAWN, Probe
from procrun.project.settings import TypeSettings as TypeConfig
from procrun.project.settings import resolve


class Parsed(dict):
    """The settings read from a file, by name, and the per-type ones as .types (for short tests)."""

    def __getattr__(self, name):
        return self.get(name)


def parse(text, path="procrun.yaml"):
    values, types = parse_both(text, path)
    parsed = Parsed(values)
    parsed.types = types
    return parsed

FULL = """\
procfile: Procfile.dev
env: [.env, local.env]
formation: {web: 2, worker: 0}
port: 6000
timeout: 2.5
restart: always
chaos:
  enabled: true
  interval: 5
  actions: [kill, pause]
  types: web, worker
  min_uptime: 1
  seed: 42
fresh:
  enabled: true
  ignore: [logs/, "*.tmp"]
  link: [vendor]
  keep_dirs: true
router: {enabled: true, host: 0.0.0.0, mode: tcp, timeout: 9}
watch: {enabled: true, paths: [src], ignore: [media], debounce: 0.2}
types:
  web:
    restart: on-failure
    chaos: false
    watch: ["*.py", templates/]
    ready: port
    stop_signal: INT
    grace: 12
  worker:
    ready: spawn
    stop_signal: SIGQUIT
"""


def test_every_key():
    c = parse(FULL, "procrun.yaml")
    assert (c.procfile, c.env_files, c.formation, c.port, c.timeout, c.restart) == \
        ("Procfile.dev", (".env", "local.env"), "web=2,worker=0", 6000, 2.5, "always")
    assert (c.chaos, c.chaos_interval, c.chaos_actions, c.chaos_types, c.chaos_min_uptime, c.chaos_seed) == \
        (True, 5.0, ("kill", "pause"), ("web", "worker"), 1.0, 42)
    assert (c.fresh, c.fresh_ignore, c.fresh_link, c.keep_dirs) == (True, ("logs/", "*.tmp"), ("vendor",), True)
    assert (c.router, c.router_host, c.router_mode, c.router_timeout) == (True, "0.0.0.0", "tcp", 9.0)
    assert (c.watch, c.watch_paths, c.watch_ignore, c.watch_debounce) == (True, ("src",), ("media",), 0.2)
    assert c.types["web"]._replace(places={}) == \
        TypeConfig("on-failure", False, ("*.py", "templates/"), PORT, signal.SIGINT, 12.0, line=23)
    assert c.types["worker"]._replace(places={}) == TypeConfig(None, None, None, SPAWN, signal.SIGQUIT, None, line=30)
    assert c.types["web"].places["grace"] == (28, 12)


def test_shorthands_and_empty():
    c = parse("chaos: true\nfresh: [logs]\nrouter: false\nwatch: [src, lib]\nformation: web=3\nenv: a.env\n")
    assert (c.chaos, c.fresh, c.fresh_ignore, c.router, c.watch, c.watch_paths) == \
        (True, True, ("logs",), False, True, ("src", "lib"))
    assert (c.formation, c.env_files) == ("web=3", ("a.env",))
    assert parse("") == {} and parse("").types == {}
    assert parse("types:\n  web:\n").types["web"] == TypeConfig(line=2)


@pytest.mark.parametrize("text, where, words", [
    ("chaoss: true\n", "1:1", "unknown key 'chaoss'"),
    ("port: 99999\n", "1:7", "port is out of range; use an integer from 1 to 65535"),
    ("port: true\n", "1:7", "port is not a port number"),
    ("port: '80'\n", "1:7", "port is not a port number"),
    ("timeout: '5'\n", "1:10", "timeout must be a finite number of seconds"),
    ("timeout: -1\n", "1:10", "timeout must be a finite number of seconds, 0 or more"),
    ("restart: sometimes\n", "1:10", "restart must be one of never, on-failure, always"),
    ("formation: {web: two}\n", "1:18", "formation web must be an integer"),
    ("formation: [1]\n", "1:12", "formation must be a single value"),
    ("chaos: {interval: 0}\n", "1:19", "chaos.interval must be a finite number of seconds, more than 0"),
    ("chaos: {actions: [kill, explode]}\n", "1:25", "names unknown chaos action 'explode'; choose from restart, kill, relocate, pause"),
    ("chaos: {seed: x}\n", "1:15", "chaos.seed must be an integer from 0"),
    ("chaos: {enabled: yes please}\n", "1:18", "chaos.enabled must be true or false"),
    ("chaos: {colour: red}\n", "1:9", "unknown key 'colour' in chaos"),
    ("fresh: {ignore: {a: 1}}\n", "1:17", "fresh.ignore must be a list of strings"),
    ("router: {mode: udp}\n", "1:16", "router.mode must be one of http, tcp"),
    ("router: [a]\n", "1:9", "router must be a single value"),
    ("watch: {debounce: fast}\n", "1:19", "watch.debounce must be a finite number of seconds"),
    ("types: [web]\n", "1:8", "types must be a mapping"),
    ("types:\n  web: {ready: tcp}\n", "2:16", "ready must be one of port, spawn"),
    ("types:\n  web: {stop_signal: SIGNOPE}\n", "2:22", "not a signal name"),
    ("types:\n  web: {grace: -3}\n", "2:16", "grace must be a finite number of seconds"),
    ("types:\n  web: {colour: red}\n", "2:9", "unknown key 'colour' in types.web"),
    ("port: 1\nport: 2\n", "2:1", "key 'port' appears twice"),
    ("watch: [\n", "2:1", "not valid YAML"),
    ("- a\n- b\n", "1:1", "procrun.yaml must be a mapping"),
    ("timeout: .nan\n", "1:10", "timeout must be a finite number of seconds, 0 or more"),
    ("timeout: .inf\n", "1:10", "timeout must be a finite number of seconds, 0 or more"),
    ("router: {timeout: 0}\n", "1:19", "router.timeout must be a finite number of seconds, more than 0"),
    ("chaos: {interval: .inf}\n", "1:19", "chaos.interval must be a finite number of seconds, more than 0"),
    ("chaos: {seed: -1}\n", "1:15", "chaos.seed must be an integer from 0 to 18446744073709551615"),
    ("port: !foo 5\n", "1:7", "port has a tag procrun does not read (!foo)"),
    ("port: !!python/object/apply:os.system [ls]\n", "1:7", "port must be a single value"),
    ("timeout: !!python/name:os.system 1\n", "1:10", "timeout has a tag procrun does not read"),
    ("x: " + "[" * 500 + "\n", "1:35", "nested more than 32 levels deep"),
    ("max_instances: 0\n", "1:16", "max_instances must be an integer from 1 to 100000"),
    ("types:\n  worker: {after: [web]}\n  web: {after: [db]}\n  db:\n    after:\n      - worker\n", "6:9",
     "types.db.after: start order has a cycle (worker -> web -> db -> worker)"),
    ("types:\n  worker: {after: worker}\n", "2:19", "types.worker.after: start order has a cycle (worker -> worker)"),
    ("types:\n  worker: {after: [{a: 1}]}\n", "2:20", "after must be a list of strings"),
    ("types:\n  worker: {tty: maybe}\n", "2:17", "tty must be true or false"),
    # probes, one-shot types and per-type settings (#28): at the value, item or probe key at fault
    ("types:\n  web: {ready: {http: health}}\n", "2:23", "ready http must be a path starting with /"),
    ("types:\n  web: {ready: {http: /a, exec: b}}\n", "2:16", "must name exactly one of http, exec, log, port, not http and exec"),
    ("types:\n  web: {ready: {http: /a, failures: 2}}\n", "2:37", "unknown key 'failures'"),
    ("types:\n  web: {health: {log: '('}}\n", "2:23", "log is not a regular expression"),
    ("types:\n  web: {health: {exec: x, failures: 0}}\n", "2:37", "failures must be an integer from 1 to 1000"),
    ("types:\n  web: {health: {exec: x, status: [200]}}\n", "2:35", "status applies to http probes only"),
    ("types:\n  web: {health: {http: /x, interval: 0}}\n", "2:38", "interval must be a number of seconds"),
    ("types:\n  web: {health: spawn}\n", "2:17", "health must be a mapping"),
    ("types:\n  web: {ready: tcp}\n", "2:16", "ready must be one of port, spawn or a mapping"),
    ("types:\n  web: {after: {db: started}}\n", "2:21", "db: the condition must be one of ready, completed"),
    ("types:\n  web: {env: [A]}\n", "2:15", "env must map each variable to its value"),
    ("types:\n  web: {env: {A: ~}}\n", "2:18", "env A must have a value"),
    ("types:\n  web: {cwd: ../other}\n", "2:14", "cwd must be a folder inside the app root"),
    ("types:\n  web: {cwd: /srv/app}\n", "2:14", "cwd must be a folder inside the app root"),
    ("types:\n  web: {oneshot: yes please}\n", "2:18", "oneshot must be true or false"),
    ("types:\n  web: {env_file: [a.env, 3]}\n", "2:27", "env_file must be a list of strings"),
])
def test_errors_name_line_and_column(text, where, words):
    with pytest.raises(ConfigError) as err:
        parse(text, "procrun.yaml")
    message = str(err.value)
    assert message.startswith(f"procrun.yaml:{where}: "), message
    assert words in message and "; fix: " in message


def test_precedence_flags_over_file_over_dotenv_over_environment_over_defaults():
    cfg = parse("timeout: 2\nrestart: always\nchaos: {enabled: true, interval: 4}\nwatch: [src]\nport: 7000\n")

    def settle(flags, file=cfg, dotenv=None, environ=None):
        return resolve(flags, file, dotenv or {}, environ or {}, seed=lambda: 7)

    settled = settle({"timeout": 9.0})
    assert (settled.timeout, settled.restart, settled.chaos, settled.chaos_interval, settled.port) == \
        (9.0, "always", True, 4.0, 7000)
    assert settled.watch and settled.watch_paths == ("src",) and settled.chaos_seed == 7
    defaults = settle({}, {})
    assert (defaults.timeout, defaults.restart, defaults.chaos, defaults.router_mode, defaults.port,
            defaults.procfile) == (5.0, "never", False, "http", 5000, "Procfile")
    assert settle({"chaos": True}, {}).restart == "on-failure" and settle({"chaos": True}, {}).router
    assert settle({"watch": True, "watch_paths": ("x",)}, {}).restart == "on-failure"
    assert settle({}, {}, {"PORT": "6000", "PROCFILE": "P2"}, {"PORT": "5500"}).port == 6000
    assert settle({}, {}, {}, {"PORT": "5500", "PROCFILE": "P3"}).port == 5500
    assert settle({}, {}, {}, {"PROCFILE": "P3"}).procfile == "P3"
    assert settle({"port": 4000}, {}, {"PORT": "6000"}).port == 4000


def test_largest_seed_is_accepted():
    assert parse("chaos: {seed: 18446744073709551615}\n").chaos_seed == 2**64 - 1


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcdefgimnoprstuvwxy:-[]{}!&*|>'\"#,.0123456789 \n\t")), max_size=80))
def test_any_text_gives_settings_or_a_located_config_error(text):
    """Fuzz: whatever the file says, the answer is settings or one ConfigError, never a crash."""
    try:
        parse(text, "procrun.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("procrun.yaml")


def test_the_readme_example_is_a_valid_procrun_yaml():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    c = parse(example)
    assert c.allow == ("GET /health", "uploads/*", "ports") and c.router_record is True
    assert c.types["web"].boot_timeout == 60.0 and c.max_instances == 1000


def test_after_and_tty_per_type():
    _, types = parse_both("types:\n  worker: {after: [web, db], tty: true}\n  web: {after: db}\n")
    assert types["worker"].after == ("web", "db") and types["worker"].after_at == ((2, 20), (2, 25))
    assert types["worker"].tty is True and types["web"].after == ("db",) and types["web"].tty is None


def test_the_defaults_restated_from_chaos_and_fresh_are_their_own():
    """settings.py restates two defaults of chaos and fresh so that reading settings imports neither."""
    from procrun.chaos import schedule
    from procrun.fresh import slug
    from procrun.project import settings

    assert settings.ACTIONS == schedule.ACTIONS
    assert settings.LINKED == slug.LINKED
    from procrun.router.balance import MODES

    assert settings.BALANCE == MODES
    from procrun.diagnose.recorder import REPLAY_EXCLUDE

    assert settings.REPLAY_EXCLUDE == REPLAY_EXCLUDE


def test_settings_fields_are_the_declaration_and_restate_no_default():
    """A setting's default lives in its one declaration (SETTINGS); Settings only names fields."""
    from procrun.project.settings import EDGE, SETTINGS, Settings

    assert Settings._fields == (*(s.name for s in SETTINGS), "router_explicit", *EDGE)
    assert Settings._field_defaults == {}


def test_a_list_setting_is_declared_as_one_not_by_its_example():
    """procrun.yaml accepts a list exactly where the declaration says LIST (formation: a MAP)."""
    from procrun.project.settings import LIST, MAP, SETTINGS

    lists = {s.name for s in SETTINGS if s.shape == LIST}
    assert lists == {"env_files", "allow", "chaos_actions", "chaos_types", "fresh_ignore", "fresh_link", "tty",
                     "watch_paths", "watch_ignore", "router_replay_exclude", "chaos_backing_faults"}
    assert [s.name for s in SETTINGS if s.shape == MAP] == ["formation", "chaos_backing_targets"]


def test_backing_faults_are_kinds_of_the_fault_table_with_what_they_fix():
    settings = parse_both("chaos:\n  backing_faults: [latency, 'bandwidth rate=8 direction=downstream']\n")[0]
    assert settings["chaos_backing_faults"] == ("latency", "bandwidth rate=8 direction=downstream")
    for bad, says in (("[tsunami]", "unknown backing fault 'tsunami'"), ("['bandwidth rate=0']", "rate must be a number"),
                      ("['slicer size=4']", "slicer takes average_size")):
        with pytest.raises(ConfigError) as caught:
            parse_both(f"chaos:\n  backing_faults: {bad}\n")
        assert says in str(caught.value) and caught.value.line == 2


def test_backing_targets_are_labels_or_a_host_one_line_each_error():
    settings = parse_both("chaos:\n  backing_targets: {REDIS_URL: 'app=redis,tier=cache', DATABASE_URL: db.internal}\n")[0]
    assert settings["chaos_backing_targets"] == (("REDIS_URL", "app=redis,tier=cache"), ("DATABASE_URL", "db.internal"))
    for bad in ("{REDIS_URL: 'app='}", "{REDIS_URL: ''}", "[REDIS_URL]", "{REDIS_URL: [a]}"):
        with pytest.raises(ConfigError) as caught:
            parse_both(f"chaos:\n  backing_targets: {bad}\n")
        assert "backing_targets" in str(caught.value)


def test_router_replay_takes_true_false_or_all():
    assert parse_both("router:\n  replay: all\n")[0]["router_replay"] == "all"
    assert parse_both("router:\n  replay: false\n")[0]["router_replay"] is False
    with pytest.raises(ConfigError, match="router.replay must be true, false or all"):
        parse_both("router:\n  replay: sometimes\n")


def test_probes_one_shot_and_per_type_settings():
    types = parse("""\
types:
  web:
    ready: {http: /health, status: [200], interval: 0.2}
    health: {http: /live, failures: 2, timeout: 0.5}
    env: {LOG_LEVEL: debug, WORKERS: 4, DEBUG: false}
    env_file: [web.env]
    cwd: services/api/
  migrate: {oneshot: true, ready: {exec: "pg_isready -h localhost"}}
  worker: {after: {migrate: completed, web: ready}, ready: {log: "^ready\\\\b"}, health: {exec: "true"}}
  db: {after: [web], ready: {port: true}}
""").types
    web, migrate, worker, db = types["web"], types["migrate"], types["worker"], types["db"]
    assert web.ready == Probe("http", "/health", 0.2, 1.0, (200,))
    assert web.health == Probe("http", "/live", 5.0, 0.5, (), 2)
    assert web.env == (("LOG_LEVEL", "debug"), ("WORKERS", "4"), ("DEBUG", "false"))
    assert (web.env_file, web.cwd) == (("web.env",), "services/api")
    assert migrate.oneshot is True and migrate.ready == Probe("exec", "pg_isready -h localhost")
    assert worker.waits_for() == (("migrate", "completed"), ("web", "ready"))
    assert worker.after_at == ((9, 20), (9, 40)) and worker.ready.target == "^ready\\b"
    assert worker.health == Probe("exec", "true", 5.0, 2.0, (), 3)
    assert db.waits_for() == (("web", "ready"),) and db.ready == Probe("port")


def test_the_readme_procrun_yaml_example_is_valid_and_shows_the_lifecycle():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = readme.split("## procrun.yaml", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    values, types = parse_both(example, "README.md")
    assert values["release"] is True and types["migrate"].oneshot is True
    assert types["web"].ready.kind == "http" and types["web"].health.failures == 3
    assert types["worker"].waits_for() == (("migrate", "completed"), ("redis", "ready"))
    assert types["redis"].ready.kind == "exec" and types["worker"].ready.kind == "log"
    assert types["api"].cwd == "services/api" and dict(types["worker"].env) == {"LOG_LEVEL": "debug"}
