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
from procrun.flags import words
from procrun.project import probes, ranges
from procrun.project.probes import Probe
from procrun.supervise.order import COMPLETED, READY
from procrun.supervise.states import POLICIES

# Defaults owned by chaos' modules, restated so that reading the settings does not import them
# (a start launches its processes before it needs chaos; tests/unit/test_config.py keeps them equal).
ACTIONS = ("restart", "kill", "relocate", "pause")  # chaos.schedule.ACTIONS
LINKED = (".venv", "venv", "node_modules")  # fresh.slug.LINKED

BALANCE = ("spread", "random", "round-robin")  # router.balance.MODES
REPLAY_EXCLUDE = ("login", "logout", "signin", "signout", "sign-in", "sign-out", "log-in", "log-out", "callback",
                  "confirm", "verify", "activate", "reset", "token", "oauth", "unsubscribe")  # diagnose.recorder
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
        return words(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValueError("must be a list of strings")


def _replay(value: Any) -> bool | str:
    """router.replay: true, false, or "all" (5xx answers are replayed too)."""
    if value == "all" or isinstance(value, bool):
        return value
    raise ValueError("must be true, false or all")


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


def _converted(kind: Callable[[str], Any], problem: str) -> Callable[[str], Any]:
    """A flag's text as a number (then checked like a procrun.yaml value), or the problem in words."""
    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise ValueError(problem) from None
    return convert


def _integral(what: str) -> Callable[[str], int]:
    return _converted(int, f"is not {what}")


SECONDS = _converted(float, "is not a number of seconds")
NUMBER = _converted(float, "is not a number")
_port = ranges.port
PORT_TEXT = _integral("a port number; use an integer from 1 to 65535")


def from_text(setting: Setting, text: str) -> Any:
    """A flag's text as the setting's value: numbers converted, then the same checks as procrun.yaml."""
    return setting.parse(setting.text(text) if setting.text is not None else text)


def _targets(value: Any) -> tuple[tuple[str, str], ...]:
    """chaos.backing_targets: a proxied variable -> what the exported NetworkChaos aims at: the
    labels of the service's pods ("app=redis,tier=cache") or an external host ("db.internal")."""
    if not isinstance(value, Mapping):
        raise ValueError("must map each variable to labels (app=redis) or a host")
    out = []
    for var, target in value.items():
        if not isinstance(target, str) or not target.strip() or any(
                "=" in target and not all(k.strip() and v.strip() for k, _, v in [p.partition("=")])
                for p in target.split(",")):
            raise ValueError(f"{var}: write labels (app=redis) or a host name")
        out.append((str(var), target.strip()))
    return tuple(out)


def _backing_faults(value: Any) -> tuple[str, ...]:
    """chaos.backing_faults: the faults the schedule draws, each "KIND [NAME=VALUE ...]" fixing
    what it names (the rest is drawn); checked against the fault table."""
    from procrun.backing.faults import spec

    items = tuple(item.strip() for item in _words(value))
    for item in items:
        if not item:
            raise ValueError("names an empty fault")
        spec(item, repr(item))
    return items


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


ONE, LIST, MAP = "one", "list", "map"  # a setting's shape in procrun.yaml


class Setting(NamedTuple):
    """One setting, declared once (rows below use keywords). ``parse`` turns a procrun.yaml value,
    or a flag's text after ``text`` converted it, into the value (or raises ValueError with the
    rule in words); ``commands`` get the flags."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    text: Callable[[str], Any] | None = None  # a flag's text to the value parse checks (numbers)
    shape: str = ONE  # in procrun.yaml: one value, a LIST of them (also comma-separated) or a MAP
    flags: tuple[str, ...] = ()
    yaml: str | None = None  # "timeout", or "chaos.interval" inside a section
    commands: tuple[str, ...] = START
    switch: bool = False  # a flag without a value: --chaos
    negatable: bool = False  # --fresh and --no-fresh
    repeatable: bool = False  # -e a -e b,c: every value, each one comma-separated
    choices: tuple[str, ...] = ()  # argparse lists them in its own error
    metavar: str | None = None
    example: str = ""  # for the fix in a procrun.yaml error
    help: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting("procfile", parse=_text, default=None, flags=("-f", "--procfile"), yaml="procfile", commands=RUNNING,
            metavar="FILE", example="Procfile",
            help="Procfile path, relative to the app root (default: $PROCFILE or Procfile)"),
    Setting("env_files", parse=_words, default=(), shape=LIST, flags=("-e", "--env"), yaml="env", commands=RUNNING,
            metavar="FILE[,FILE]", example="[.env]",
            help="env file(s), comma-separated and repeatable; later ones win (default: .env)", repeatable=True),
    Setting("port", parse=_port, default=None, text=PORT_TEXT, flags=("-p", "--port"), yaml="port", commands=RUNNING,
            metavar="N", example="5000", help="base port (default: $PORT or 5000)"),
    Setting("formation", parse=_formation, default="", shape=MAP, flags=("-m", "-c", "--formation", "--concurrency"),
            yaml="formation", commands=RUNNING, metavar="TYPE=N,...", example="web=2",
            help="how many of each type: web=2,worker=3 or all=N"),
    Setting("timeout", parse=ranges.seconds, default=5.0, text=SECONDS, flags=("-t", "--timeout"), yaml="timeout",
            commands=RUNNING, metavar="SECONDS", example="5",
            help="grace period between SIGTERM and SIGKILL (default: 5)"),
    Setting("restart", parse=_choice(*POLICIES), default=None, flags=("--restart",), yaml="restart",
            commands=("start", "check"), choices=POLICIES, metavar="POLICY", example="on-failure",
            help="restart processes that exit: never (default: the session ends), on-failure, always"),
    Setting("release", parse=_flag, default=True, flags=("--release",), yaml="release", commands=("start", "export"),
            switch=True, negatable=True, example="false",
            help="run the Procfile's release: type once before the other types start (default: on)"),
    Setting("allow", parse=_words, default=(), shape=LIST, yaml="allow",
            example='["GET /health", "uploads/*", ports]'),
    Setting("max_instances", parse=ranges.instances, default=ranges.MAX_INSTANCES, text=_integral("an integer"),
            yaml="max_instances", example="2000"),
    Setting("chaos", parse=_flag, default=False, flags=("--chaos",), yaml="chaos.enabled", commands=CHAOS,
            switch=True, example="true",
            help="disrupt running instances at random (restart policy becomes on-failure)"),
    Setting("chaos_interval", parse=ranges.interval, default=30.0, text=SECONDS, flags=("--chaos-interval",),
            yaml="chaos.interval", commands=CHAOS, metavar="SECONDS", example="30",
            help="mean time between disruptions (default: 30)"),
    Setting("chaos_actions", parse=_among("chaos action", *ACTIONS), default=ACTIONS, shape=LIST,
            flags=("--chaos-actions",), yaml="chaos.actions", commands=CHAOS, metavar="A[,A]",
            example="[kill, relocate]", help="restart, kill, relocate, pause (default: all)"),
    Setting("chaos_backing", parse=_flag, default=False, flags=("--chaos-backing",), yaml="chaos.backing",
            commands=CHAOS, switch=True, example="true",
            help="put a fault-injecting proxy in front of each loopback service URL in .env (database, cache, "
                 "queue) and judge how each type copes"),
    Setting("chaos_backing_faults", parse=_backing_faults, default=(), shape=LIST, flags=("--chaos-backing-faults",),
            yaml="chaos.backing_faults", commands=CHAOS, metavar="F[,F]", example='[latency, "bandwidth rate=8"]',
            help="the backing faults the schedule draws, each KIND [NAME=VALUE ...] (default: all; the table is "
                 "in the README)"),
    Setting("chaos_backing_targets", parse=_targets, default=(), shape=MAP, yaml="chaos.backing_targets",
            commands=("export",), example="{REDIS_URL: app=redis}",
            help="for export kubernetes --chaos: the pods (labels) or host each proxied variable's service is"),
    Setting("chaos_types", parse=_words, default=(), shape=LIST, flags=("--chaos-types",), yaml="chaos.types",
            commands=CHAOS, metavar="TYPE[,TYPE]", example="[web]", help="types to disrupt (default: all)"),
    Setting("chaos_min_uptime", parse=ranges.seconds, default=0.0, text=SECONDS, flags=("--chaos-min-uptime",),
            yaml="chaos.min_uptime", metavar="SECONDS", example="5", help="spare instances ready for less than this (default: 0: "
            "an instance is eligible once it is ready)"),
    Setting("chaos_seed", parse=ranges.seed, default=None, text=_integral("an integer seed"),
            flags=("--chaos-seed",), yaml="chaos.seed", metavar="N", example="42",
            help="replay a run: same seed, same disruptions"),
    Setting("fresh", parse=_flag, default=None, flags=("--fresh",), yaml="fresh.enabled", switch=True,
            negatable=True, example="true",
            help="start every instance in a fresh copy of the app, as a platform does (default: on with --chaos)"),
    Setting("fresh_ignore", parse=_words, default=(), shape=LIST, yaml="fresh.ignore", example="[logs/]"),
    Setting("fresh_link", parse=_words, default=LINKED, shape=LIST, yaml="fresh.link",
            example="[.venv, node_modules]"),
    Setting("keep_dirs", parse=_flag, default=False, flags=("--keep-dirs",), yaml="fresh.keep_dirs", switch=True,
            example="true", help="keep fresh directories after exit, for inspection"),
    Setting("router", parse=_flag, default=None, flags=("--router",), yaml="router.enabled", switch=True,
            negatable=True, example="true",
            help="listen on the base port and spread requests over ready web.N, never sticky (default: on with --chaos)"),
    Setting("router_host", parse=_text, default="127.0.0.1", flags=("--router-host",), yaml="router.host",
            metavar="HOST", example="127.0.0.1", help="address the router listens on (default: 127.0.0.1)"),
    Setting("router_mode", parse=_choice("http", "tcp"), default="http", flags=("--router-mode",),
            yaml="router.mode", choices=("http", "tcp"), metavar="MODE", example="http",
            help="balance per HTTP request (default) or per TCP connection"),
    Setting("router_balance", parse=_choice(*BALANCE), default="spread", flags=("--router-balance",),
            yaml="router.balance", choices=BALANCE, metavar="MODE", example="spread",
            help="spread: each client's every path reaches every ready instance in turn (default); random; "
                 "round-robin"),
    Setting("router_record", parse=_flag, default=True, flags=("--router-record",), yaml="router.record",
            switch=True, negatable=True, example="true",
            help="record each request (no values) to diagnose state kept in memory (default: on)"),
    Setting("router_replay", parse=_replay, default=True, flags=("--router-replay",), yaml="router.replay",
            switch=True, negatable=True, example="true",
            help="verify a suspected hidden state by sending the same safe request to the instance that made the "
                 "session (default: on; router.replay: all in procrun.yaml replays 5xx answers too)"),
    Setting("router_compare", parse=ranges.rate, default=0.05, text=NUMBER, flags=("--router-compare",),
            yaml="router.compare", metavar="RATE", example="0.05",
            help="compare a sample of safe answers across instances to find state that never errs: the first of each "
                 "path and a client's first read after a write, then this share (default: 0.05; 0: off)"),
    Setting("router_replay_exclude", parse=_words, default=REPLAY_EXCLUDE, shape=LIST, yaml="router.replay_exclude",
            example="[login, logout, callback]"),
    Setting("router_timeout", parse=ranges.interval, default=30.0, text=SECONDS, flags=("--router-timeout",),
            yaml="router.timeout", metavar="SECONDS", example="30",
            help="answer 504 when an instance has not started its response by then (default: 30)"),
    Setting("tty", parse=_words, default=(), shape=LIST, flags=("--tty",), metavar="TYPE[,TYPE]",
            example="[console]",
            help="run these types on a pseudo-terminal, for procrun attach (also: types.T.tty in procrun.yaml)"),
    Setting("journal", parse=_flag, default=True, flags=("--journal",), yaml="journal.enabled", switch=True,
            negatable=True, example="true",
            help="keep the session's output and events under .procrun/sessions/ for logs and report "
                 "(default: on)"),
    Setting("journal_keep", parse=ranges.sessions, default=10, text=_integral("an integer"), yaml="journal.keep",
            example="10"),
    Setting("journal_max_mb", parse=ranges.megabytes, default=50.0, text=NUMBER, yaml="journal.max_mb",
            example="50"),
    Setting("watch", parse=_flag, default=False, yaml="watch.enabled", example="true"),
    Setting("watch_paths", parse=_words, default=(), shape=LIST, yaml="watch.paths", example="[src]"),
    Setting("watch_ignore", parse=_words, default=(), shape=LIST, yaml="watch.ignore", example="[media/]"),
    Setting("watch_debounce", parse=ranges.seconds, default=0.3, text=SECONDS, yaml="watch.debounce", example="0.3"),
)

BY_NAME = {s.name: s for s in SETTINGS}


def flagged(command: str) -> tuple[Setting, ...]:
    """The settings ``command`` takes as flags (argparse and procrun.quick build from this)."""
    return tuple(s for s in SETTINGS if s.flags and command in s.commands)

BY_YAML = {s.yaml: s for s in SETTINGS if s.yaml}
SECTIONS = ("chaos", "fresh", "router", "journal", "watch")


class TypeSettings(NamedTuple):
    """procrun.yaml ``types.NAME``: what may differ per process type (None: as the session).
    Read by ``TYPE_SETTINGS``; ``places`` keeps where each key's value is written, for the
    errors only the loader can find (a ``cwd`` that is not a folder, an ``env_file`` missing)."""

    restart: str | None = None
    chaos: bool | None = None  # False: opt out of chaos
    watch: tuple[str, ...] | None = None  # globs whose change restarts this type
    ready: Probe | None = None  # port, spawn or a probe (http, exec, log)
    stop_signal: int | None = None
    grace: float | None = None
    boot_timeout: float | None = None  # warn when an instance is not ready by then (default 60 s)
    after: tuple[str, ...] = ()  # types this type's first start waits for
    after_at: tuple[tuple[int, int], ...] = ()  # (line, column) of each name in ``after``
    tty: bool | None = None  # run on a pseudo-terminal (procrun attach, debuggers, colours)
    health: Probe | None = None  # liveness: restarted after ``failures`` failures in a row
    oneshot: bool | None = None  # exit 0 is completed, not an end
    env: tuple[tuple[str, str], ...] = ()  # wins over .env and env_file
    env_file: tuple[str, ...] = ()  # read after .env, relative to the app root
    cwd: str | None = None  # a folder of the app root its commands run in (monorepos)
    after_conditions: tuple[str, ...] = ()  # per name in ``after``: ready or completed
    line: int = 0
    places: Mapping[str, tuple[int, int]] = MappingProxyType({})

    def waits_for(self) -> tuple[tuple[str, str], ...]:
        """(type, condition) for each name in ``after``."""
        return tuple(zip(self.after, self.after_conditions or (READY,) * len(self.after)))


CONDITIONS = (READY, COMPLETED)


def _after(value: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``after: [db, web]`` (each ready), ``after: db``, or ``after: {migrate: completed, db: ready}``."""
    if isinstance(value, Mapping):
        for name, condition in value.items():
            if condition not in CONDITIONS:
                raise ValueError(f"{name}: the condition must be one of {', '.join(CONDITIONS)}, not {condition!r}")
        return tuple(map(str, value)), tuple(value.values())
    names = _words(value) if not isinstance(value, str) else (value,)
    return names, (READY,) * len(names)


def _stop_signal(value: Any) -> int:
    import signal

    name = str(value).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"{value!r} is not a signal name") from None


def _env(value: Any) -> tuple[tuple[str, str], ...]:
    """``env: {KEY: value}``: numbers and true/false as YAML wrote them, as text."""
    if not isinstance(value, Mapping):
        raise ValueError("must map each variable to its value")
    out = []
    for key, item in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValueError(f"{key!r} is not a variable name")
        if item is None or isinstance(item, (list, dict)):
            raise ValueError(f"{key} must have a value (write '' for an empty one)")
        out.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return tuple(out)


def _cwd(value: Any) -> str:
    """A folder of the app root, as a relative path that stays inside it."""
    import posixpath

    text = _text(value)
    norm = posixpath.normpath(text)
    if text.startswith("/") or norm == ".." or norm.startswith("../"):
        raise ValueError(f"must be a folder inside the app root, not {text!r}")
    return "" if norm == "." else norm


class TypeSetting(NamedTuple):
    """One key of procrun.yaml ``types.NAME``, declared once: ``parse`` turns its plain YAML value
    into the field's value (or raises ValueError with the rule in words)."""

    key: str
    parse: Callable[[Any], Any]
    example: str
    help: str = ""


TYPE_SETTINGS: tuple[TypeSetting, ...] = (
    TypeSetting("restart", _choice(*POLICIES), "on-failure", "never | on-failure | always"),
    TypeSetting("chaos", _flag, "false", "false: chaos never disrupts this type"),
    TypeSetting("watch", _words, '["*.py"]', "globs whose change restarts this type"),
    TypeSetting("ready", lambda v: probes.ready(v), "{http: /health}", "port, spawn, {http: PATH}, {exec: CMD}, "
                "{log: REGEX}"),
    TypeSetting("health", lambda v: probes.health(v), "{http: /health, failures: 3}",
                "a probe; after `failures` in a row the instance restarts"),
    TypeSetting("stop_signal", _stop_signal, "SIGTERM"),
    TypeSetting("grace", ranges.seconds, "10", "seconds between the stop signal and SIGKILL"),
    TypeSetting("boot_timeout", ranges.interval, "60", "seconds before an instance not ready is named"),
    TypeSetting("after", _after, "{migrate: completed, db: ready}", "types its first start waits for"),
    TypeSetting("oneshot", _flag, "true", "exit 0 is completed: never restarted, never ends the session"),
    TypeSetting("env", _env, "{LOG_LEVEL: debug}", "variables for this type; win over .env"),
    TypeSetting("env_file", _words, "[web.env]", "env files for this type, read after .env"),
    TypeSetting("cwd", _cwd, "services/api", "the folder of the app root its commands run in"),
    TypeSetting("tty", _flag, "true", "run on a pseudo-terminal (procrun attach)"),
)
TYPE_KEYS = {t.key: t for t in TYPE_SETTINGS}


class Settings(NamedTuple):
    """The session's settings, every one resolved: a field per declared setting (its default is
    in ``SETTINGS``), the derived ``router_explicit``, and what ``EDGE`` lists (only the command
    line and the loader know those). No defaults here: tests/unit/test_config.py keeps the fields
    equal to the declaration."""

    procfile: str  # flag, procrun.yaml, $PROCFILE in .env, then in the environment
    env_files: tuple[str, ...]  # as given; empty: .env if it exists
    port: int  # flag, procrun.yaml, $PORT in .env, then in the environment
    formation: str
    timeout: float
    restart: str
    release: bool  # run the Procfile's release: before the formation
    allow: tuple[str, ...]  # accepted findings: kinds, requests or paths (fnmatch)
    max_instances: int
    chaos: bool
    chaos_interval: float
    chaos_actions: tuple[str, ...]
    chaos_backing: bool
    chaos_backing_faults: tuple[str, ...]  # "KIND [NAME=VALUE ...]"; () is every kind
    chaos_backing_targets: tuple[tuple[str, str], ...]  # variable -> labels "app=redis" or a host
    chaos_types: tuple[str, ...]
    chaos_min_uptime: float
    chaos_seed: int
    fresh: bool
    fresh_ignore: tuple[str, ...]
    fresh_link: tuple[str, ...]
    keep_dirs: bool
    router: bool
    router_host: str
    router_mode: str
    router_balance: str
    router_record: bool
    router_replay: bool | str
    router_compare: float  # the share of eligible answers compared across instances (0: off)
    router_replay_exclude: tuple[str, ...]
    router_timeout: float
    tty: tuple[str, ...]
    journal: bool
    journal_keep: int
    journal_max_mb: float
    watch: bool
    watch_paths: tuple[str, ...]
    watch_ignore: tuple[str, ...]
    watch_debounce: float
    router_explicit: bool  # asked for with --router / router.enabled, not implied by --chaos
    app_root: str
    colour: bool
    prefix: bool
    quiet: frozenset[str]
    types: tuple[str, ...]  # the process types to start (positional arguments); all when empty
    type_settings: Mapping[str, TypeSettings]
    config_path: str


# What the command line and the loader give ``resolve`` beside the settings, when they give nothing.
EDGE: Mapping[str, Any] = MappingProxyType({
    "app_root": ".", "colour": True, "prefix": True, "quiet": frozenset(), "types": (),
    "type_settings": MappingProxyType({}), "config_path": "procrun.yaml"})


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
    return Settings(**values, **{**EDGE, **edge})


def _env_port(dotenv: Mapping[str, str], environ: Mapping[str, str], dotenv_name: str) -> int:
    for source, where in ((dotenv, f"PORT in {dotenv_name}"), (environ, "PORT in the environment")):
        if source.get("PORT"):
            try:
                return _port(PORT_TEXT(source["PORT"]))
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
