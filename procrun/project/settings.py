"""Every setting, declared once: its type and range, default, flags and procrun.yaml key.

The command line (``procrun.cli``), the procrun.yaml schema (``procrun.project.config``)
and the precedence (``resolve``: flags > procrun.yaml > .env/environment > defaults)
are all driven by ``SETTINGS``; adding a setting is one line here plus the code that
uses it. ``resolve`` returns a frozen ``Settings`` whose every field has a value. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from procrun.errors import UsageError
from procrun.project import ranges
from procrun.supervise.states import POLICIES

# Defaults owned by chaos' modules, restated so that reading the settings does not import them
# (a start launches its processes before it needs chaos; tests/unit/test_config.py keeps them equal).
ACTIONS = ("restart", "kill", "relocate", "pause")  # chaos.schedule.ACTIONS
LINKED = (".venv", "venv", "node_modules")  # fresh.slug.LINKED

START = ("start",)
RUNNING = ("start", "run", "check", "export")  # the commands that read the app's files
CHAOS = ("start", "export")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _words(value: Any) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValueError("must be a list of strings")


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value
    return check


def _among(noun: str, *choices: str) -> Callable[[Any], tuple[str, ...]]:
    def check(value: Any) -> tuple[str, ...]:
        words = _words(value)
        for word in words:
            if word not in choices:
                raise ValueError(f"names unknown {noun} {word!r}; choose from {', '.join(choices)}")
        if not words:
            raise ValueError(f"names none of {', '.join(choices)}")
        return words
    return check


def _number(check: Callable[[float], float]) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        return check(value)
    parse.text = lambda text: _converted(float, text, "is not a number of seconds")  # type: ignore[attr-defined]
    return parse


def _integer(check: Callable[[int], int], what: str = "an integer") -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        return check(value)
    parse.text = lambda text: _converted(int, text, f"is not {what}")  # type: ignore[attr-defined]
    return parse


def _converted(kind: Callable[[str], Any], text: str, problem: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(problem) from None


_port = _integer(ranges.port, "a port number; use an integer from 1 to 65535")


def from_text(setting: Setting, text: str) -> Any:
    """A flag's text as the setting's value: numbers converted, then the same checks as procrun.yaml."""
    convert = getattr(setting.parse, "text", None)
    return setting.parse(convert(text) if convert is not None else text)


def _formation(value: Any) -> str:
    """procrun.yaml may write the formation as a mapping; it is kept as the flag's text."""
    if isinstance(value, Mapping):
        items = []
        for name, count in value.items():
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= ranges.MAX_INSTANCES_CEILING:
                raise ValueError(f"{name} must be an integer from 0 to {ranges.MAX_INSTANCES_CEILING}")
            items.append(f"{name}={count}")
        return ",".join(items)
    return _text(value)


class Setting(NamedTuple):
    """One setting. ``parse`` turns a flag's text or a procrun.yaml value into the value (or
    raises ValueError with the rule in words); ``commands`` get the flags."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    flags: tuple[str, ...] = ()
    yaml: str | None = None  # "timeout", or "chaos.interval" inside a section
    commands: tuple[str, ...] = START
    help: str = ""
    metavar: str | None = None
    switch: bool = False  # a flag without a value: --chaos
    example: str = ""  # for the fix in a procrun.yaml error
    choices: tuple[str, ...] = ()  # argparse lists them in its own error
    negatable: bool = False  # --fresh and --no-fresh


SETTINGS: tuple[Setting, ...] = (
    Setting("procfile", _text, None, ("-f", "--procfile"), "procfile", RUNNING,
            "Procfile path, relative to the app root (default: $PROCFILE or Procfile)", "FILE", example="Procfile"),
    Setting("env_files", _words, (), ("-e", "--env"), "env", RUNNING,
            "env file(s), comma-separated and repeatable; later ones win (default: .env)", "FILE[,FILE]",
            example="[.env]"),
    Setting("port", _port, None, ("-p", "--port"), "port", RUNNING, "base port (default: $PORT or 5000)", "N",
            example="5000"),
    Setting("formation", _formation, "", ("-m", "-c", "--formation", "--concurrency"), "formation", RUNNING,
            "how many of each type: web=2,worker=3 or all=N", "TYPE=N,...", example="web=2"),
    Setting("timeout", _number(ranges.seconds), 5.0, ("-t", "--timeout"), "timeout", RUNNING,
            "grace period between SIGTERM and SIGKILL (default: 5)", "SECONDS", example="5"),
    Setting("restart", _choice(*POLICIES), None, ("--restart",), "restart", RUNNING,
            "restart processes that exit: never (default: the session ends), on-failure, always", "POLICY",
            example="on-failure", choices=POLICIES),
    Setting("allow", _words, (), (), "allow", example='["GET /health", "uploads/*", ports]'),
    Setting("max_instances", _integer(ranges.instances), ranges.MAX_INSTANCES, (), "max_instances", example="2000"),
    Setting("chaos", _flag, False, ("--chaos",), "chaos.enabled", CHAOS,
            "disrupt running instances at random (restart policy becomes on-failure)", switch=True, example="true"),
    Setting("chaos_interval", _number(ranges.interval), 30.0, ("--chaos-interval",), "chaos.interval", CHAOS,
            "mean time between disruptions (default: 30)", "SECONDS", example="30"),
    Setting("chaos_actions", _among("chaos action", *ACTIONS), ACTIONS, ("--chaos-actions",), "chaos.actions", CHAOS,
            "restart, kill, relocate, pause (default: all)", "A[,A]", example="[kill, relocate]"),
    Setting("chaos_backing", _flag, False, ("--chaos-backing",), "chaos.backing", START,
            "put a fault-injecting proxy in front of each loopback service URL in .env (database, cache, "
            "queue) and judge how each type copes", switch=True, example="true"),
    Setting("chaos_types", _words, (), ("--chaos-types",), "chaos.types", CHAOS,
            "types to disrupt (default: all)", "TYPE[,TYPE]", example="[web]"),
    Setting("chaos_min_uptime", _number(ranges.seconds), 0.0, ("--chaos-min-uptime",), "chaos.min_uptime", START,
            "spare instances younger than this", "SECONDS", example="5"),
    Setting("chaos_seed", _integer(ranges.seed, "an integer seed"), None, ("--chaos-seed",), "chaos.seed", START,
            "replay a run: same seed, same disruptions", "N", example="42"),
    Setting("fresh", _flag, None, ("--fresh",), "fresh.enabled", START,
            "start every instance in a fresh copy of the app, as a platform does (default: on with --chaos)",
            switch=True, example="true", negatable=True),
    Setting("fresh_ignore", _words, (), (), "fresh.ignore", example="[logs/]"),
    Setting("fresh_link", _words, LINKED, (), "fresh.link", example="[.venv, node_modules]"),
    Setting("keep_dirs", _flag, False, ("--keep-dirs",), "fresh.keep_dirs", START,
            "keep fresh directories after exit, for inspection", switch=True, example="true"),
    Setting("router", _flag, None, ("--router",), "router.enabled", START,
            "listen on the base port and spread requests over ready web.N, never sticky (default: on with --chaos)",
            switch=True, example="true", negatable=True),
    Setting("router_host", _text, "127.0.0.1", ("--router-host",), "router.host", START,
            "address the router listens on (default: 127.0.0.1)", "HOST", example="127.0.0.1"),
    Setting("router_mode", _choice("http", "tcp"), "http", ("--router-mode",), "router.mode", START,
            "balance per HTTP request (default) or per TCP connection", "MODE", example="http",
            choices=("http", "tcp")),
    Setting("router_record", _flag, True, ("--router-record",), "router.record", START,
            "record each request (no values) to diagnose state kept in memory (default: on)", switch=True,
            example="true", negatable=True),
    Setting("router_timeout", _number(ranges.interval), 30.0, ("--router-timeout",), "router.timeout", START,
            "answer 504 when an instance has not started its response by then (default: 30)", "SECONDS",
            example="30"),
    Setting("tty", _words, (), ("--tty",), None, START,
            "run these types on a pseudo-terminal, for procrun attach (also: types.T.tty in procrun.yaml)",
            "TYPE[,TYPE]", example="[console]"),
    Setting("journal", _flag, True, ("--journal",), "journal.enabled", START,
            "keep the session's output and events under .procrun/sessions/ for logs and report "
            "(default: on)", switch=True, example="true", negatable=True),
    Setting("journal_keep", _integer(ranges.sessions), 10, (), "journal.keep", example="10"),
    Setting("journal_max_mb", _number(ranges.megabytes), 50.0, (), "journal.max_mb", example="50"),
    Setting("watch", _flag, False, (), "watch.enabled", example="true"),
    Setting("watch_paths", _words, (), (), "watch.paths", example="[src]"),
    Setting("watch_ignore", _words, (), (), "watch.ignore", example="[media/]"),
    Setting("watch_debounce", _number(ranges.seconds), 0.3, (), "watch.debounce", example="0.3"),
)
BY_NAME = {s.name: s for s in SETTINGS}


def flagged(command: str) -> tuple[Setting, ...]:
    """The settings ``command`` takes as flags (argparse and procrun.quick build from this)."""
    return tuple(s for s in SETTINGS if s.flags and command in s.commands)

BY_YAML = {s.yaml: s for s in SETTINGS if s.yaml}
SECTIONS = ("chaos", "fresh", "router", "journal", "watch")


class TypeSettings(NamedTuple):
    """procrun.yaml ``types.NAME``: what may differ per process type (None: as the session)."""

    restart: str | None = None
    chaos: bool | None = None  # False: opt out of chaos
    watch: tuple[str, ...] | None = None  # globs whose change restarts this type
    ready: str | None = None  # "port" or "spawn"
    stop_signal: int | None = None
    grace: float | None = None
    boot_timeout: float | None = None  # warn when a web instance binds nothing by then (default 60 s)
    after: tuple[str, ...] = ()  # types whose instances must be ready before this type's first start
    after_at: tuple[tuple[int, int], ...] = ()  # (line, column) of each name in ``after``
    tty: bool | None = None  # run on a pseudo-terminal (procrun attach, debuggers, colours)
    line: int = 0


class Settings(NamedTuple):
    """The session's settings, every one resolved."""

    app_root: str = "."
    procfile: str = "Procfile"  # flag, procrun.yaml, $PROCFILE in .env, then in the environment
    env_files: tuple[str, ...] = ()  # as given; empty: .env if it exists
    port: int = 5000  # flag, procrun.yaml, $PORT in .env, then in the environment
    formation: str = ""
    timeout: float = 5.0
    restart: str = "never"
    max_instances: int = ranges.MAX_INSTANCES
    allow: tuple[str, ...] = ()  # accepted findings: kinds, requests or paths (fnmatch)
    chaos: bool = False
    chaos_interval: float = 30.0
    chaos_actions: tuple[str, ...] = ACTIONS
    chaos_types: tuple[str, ...] = ()
    chaos_backing: bool = False
    chaos_min_uptime: float = 0.0
    chaos_seed: int = 0
    fresh: bool = False
    fresh_ignore: tuple[str, ...] = ()
    fresh_link: tuple[str, ...] = LINKED
    keep_dirs: bool = False
    router: bool = False
    router_explicit: bool = False  # asked for with --router / router.enabled, not implied by --chaos
    router_record: bool = True
    router_host: str = "127.0.0.1"
    router_mode: str = "http"
    router_timeout: float = 30.0
    tty: tuple[str, ...] = ()
    journal: bool = True
    journal_keep: int = 10
    journal_max_mb: float = 50.0
    watch: bool = False
    watch_paths: tuple[str, ...] = ()
    watch_ignore: tuple[str, ...] = ()
    watch_debounce: float = 0.3
    colour: bool = True
    prefix: bool = True
    quiet: frozenset[str] = frozenset()
    types: tuple[str, ...] = ()  # the process types to start (positional arguments); all when empty
    type_settings: Mapping[str, TypeSettings] = MappingProxyType({})
    config_path: str = "procrun.yaml"


def resolve(flags: Mapping[str, Any], file: Mapping[str, Any], dotenv: Mapping[str, str],
            environ: Mapping[str, str], seed: Callable[[], int], dotenv_name: str = ".env",
            **edge: Any) -> Settings:
    """Precedence flags > procrun.yaml > .env > environment > defaults, then the defaults that
    depend on others: ``--watch PATH`` turns watch on; restart is on-failure under chaos or
    watch; the router is on with chaos; a seed is drawn when none is given. ``edge`` holds
    what only the command line knows (app root, colour, prefix, quiet, types)."""
    values = {s.name: _first(s.name, flags, file, s.default) for s in SETTINGS}
    values["procfile"] = values["procfile"] or dotenv.get("PROCFILE") or environ.get("PROCFILE") or "Procfile"
    if values["port"] is None:
        values["port"] = _env_port(dotenv, environ, dotenv_name)
    if flags.get("watch_paths"):
        values["watch"] = True
    if values["restart"] is None:
        values["restart"] = "on-failure" if values["chaos"] or values["watch"] else "never"
    values["router_explicit"] = bool(values["router"])
    if values["router"] is None:
        values["router"] = values["chaos"]
    if values["fresh"] is None:  # chaos means a platform's file system: every start from the slug
        values["fresh"] = values["chaos"]
    if values["chaos_seed"] is None:
        values["chaos_seed"] = seed()
    return Settings(**values, **edge)


def _env_port(dotenv: Mapping[str, str], environ: Mapping[str, str], dotenv_name: str) -> int:
    for source, where in ((dotenv, f"PORT in {dotenv_name}"), (environ, "PORT in the environment")):
        if source.get("PORT"):
            try:
                return _port(_port.text(source["PORT"]))  # type: ignore[attr-defined]
            except ValueError as exc:
                raise UsageError(f"{where}: {source['PORT']!r} {exc}") from None
    return 5000


def _first(name: str, *layers: Any) -> Any:
    *sources, default = layers
    for layer in sources:
        value = layer.get(name)
        if value is not None and value != ():
            return value
    return default
