"""Composition root: reads the app's files, builds the plan, runs a session."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from procrun import envfile, formation, process, procfile, statedir
from procrun.errors import ConfigError, SessionError, UsageError
from procrun.formation import Instance
from procrun.machine import Machine
from procrun.output import Prefixer, Style
from procrun.report import Report
from procrun.report import from_json as report_from_json
from procrun.settings import FileConfig

if TYPE_CHECKING:
    from procrun.chaos import ChaosConfig

REPORT = "report.json"
ROUTED_TYPE = "web"

DEFAULT_PORT = 5000


@dataclass(frozen=True)
class Options:
    """What the command line asks for; None means "not given" (procrun.yaml, then defaults, decide)."""

    app_root: str = "."
    procfile: str | None = None
    env_files: tuple[str, ...] = ()
    port: str | None = None
    formation: str | None = None
    timeout: float | None = None
    restart: str | None = None
    colour: bool = True
    prefix: bool = True
    quiet: frozenset[str] = frozenset()
    types: tuple[str, ...] = ()
    chaos: bool | None = None
    chaos_interval: float | None = None
    chaos_actions: str | None = None
    chaos_types: str | None = None
    chaos_min_uptime: float | None = None
    chaos_seed: int | None = None
    fresh: bool | None = None
    keep_dirs: bool | None = None
    router: bool | None = None  # default: on with --chaos when there is a web type
    router_host: str | None = None
    router_mode: str | None = None
    router_timeout: float | None = None
    watch: bool | None = None
    watch_paths: tuple[str, ...] = ()


DEFAULTS = {"timeout": 5.0, "chaos": False, "chaos_interval": 30.0, "chaos_min_uptime": 0.0, "fresh": False,
            "keep_dirs": False, "router_host": "127.0.0.1", "router_mode": "http", "router_timeout": 30.0,
            "watch": False}
CONFIG_FILE = "procrun.yaml"


def settle(opts: Options, cfg: FileConfig) -> Options:
    """Precedence: flags > procrun.yaml > defaults (.env and the environment come in at load())."""
    changes: dict[str, object] = {}
    for name in ("procfile", "formation", "timeout", "restart", "chaos", "chaos_interval", "chaos_min_uptime",
                 "chaos_seed", "fresh", "keep_dirs", "router", "router_host", "router_mode", "router_timeout",
                 "watch"):
        value = getattr(opts, name)
        if value is None:
            value = getattr(cfg, name)
        if value is None:
            value = DEFAULTS.get(name)
        changes[name] = value
    if opts.port is None and cfg.port is not None:
        changes["port"] = str(cfg.port)
    if not opts.env_files and cfg.env is not None:
        changes["env_files"] = (",".join(cfg.env),)
    for name in ("chaos_actions", "chaos_types"):
        if getattr(opts, name) is None and getattr(cfg, name) is not None:
            changes[name] = ",".join(getattr(cfg, name))
    if not opts.watch_paths and cfg.watch_paths:
        changes["watch_paths"] = cfg.watch_paths
    if opts.watch_paths:
        changes["watch"] = True
    if changes["restart"] is None:
        changes["restart"] = "on-failure" if changes["chaos"] or changes["watch"] else "never"
    return dataclasses.replace(opts, **changes)  # type: ignore[arg-type]


def read_config(root: str) -> FileConfig:
    path = _rel(root, CONFIG_FILE)
    if not os.path.exists(path):
        return FileConfig(path)
    from procrun import config  # YAML is only loaded when there is a procrun.yaml

    return config.parse(read_text(path, CONFIG_FILE), path)


@dataclass(frozen=True)
class App:
    """The app as loaded from disk: root, Procfile, .env values, base port."""

    root: str
    procfile: procfile.Procfile
    dotenv: Mapping[str, str]
    base_port: int
    env_paths: tuple[str, ...] = field(default=())
    options: Options = field(default_factory=Options)
    config: FileConfig = field(default_factory=FileConfig)

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Process env: procrun's own, overlaid by the .env files."""
        env = dict(os.environ if base is None else base)
        env.update(self.dotenv)
        return env


def read_text(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(path, None, f"{what} not found", "create it or point procrun at it") from None
    except IsADirectoryError:
        raise ConfigError(path, None, f"{what} is a directory", "name a file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read {what}: {exc.strerror}", "check its permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(path, line, f"{what} is not UTF-8 text", "save it as UTF-8") from None


def _rel(root: str, path: str) -> str:
    full = os.path.join(root, path)
    rel = os.path.relpath(full)
    return rel if not rel.startswith("..") else full


def env_file_list(values: Sequence[str]) -> tuple[list[str], bool]:
    """-e values (repeatable, comma-separated); default .env, which may be missing."""
    files = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return (files, True) if files else ([".env"], False)


def read_dotenv(paths: Sequence[str], required: bool) -> tuple[dict[str, str], list[str]]:
    """The .env files in order, later ones winning; missing ones skipped unless ``required``."""
    dotenv: dict[str, str] = {}
    read = []
    for path in paths:
        if not required and not os.path.exists(path):
            continue
        dotenv.update(envfile.parse(read_text(path, "env file"), path))
        read.append(path)
    return dotenv, read


def load(opts: Options, with_procfile: bool = True) -> App:
    """Read procrun.yaml, the .env files and (unless ``run`` asks not to) the Procfile."""
    root = os.path.abspath(opts.app_root)
    if not os.path.isdir(root):
        raise UsageError(f"--app-root {opts.app_root!r} is not a directory; pass the folder that holds the Procfile")
    cfg = read_config(root)
    opts = settle(opts, cfg)
    files, explicit = env_file_list(opts.env_files)
    dotenv, paths = read_dotenv([_rel(root, name) for name in files], explicit)
    procfile_name = opts.procfile or dotenv.get("PROCFILE") or os.environ.get("PROCFILE") or "Procfile"
    path = _rel(root, procfile_name)
    pf = procfile.parse(read_text(path, "Procfile"), path) if with_procfile else procfile.Procfile(path, ())
    if opts.port is not None:
        port = formation.parse_port(opts.port, "--port")
    elif "PORT" in dotenv:
        port = formation.parse_port(dotenv["PORT"], f"PORT in {paths[-1] if paths else '.env'}")
    elif os.environ.get("PORT"):
        port = formation.parse_port(os.environ["PORT"], "PORT in the environment")
    else:
        port = DEFAULT_PORT
    if with_procfile:
        _check_type_settings(cfg, pf)
    return App(root, pf, dotenv, port, tuple(paths), opts, cfg)


def _check_type_settings(cfg: FileConfig, pf: procfile.Procfile) -> None:
    """Every type named in procrun.yaml must exist in the Procfile."""
    for name, settings in cfg.types.items():
        if pf.get(name) is None:
            raise ConfigError(cfg.path, settings.line, f"types: {name!r} is not a process type in {pf.path}",
                              f"use one of {', '.join(pf.names)}")


@dataclass(frozen=True)
class Plan:
    types: tuple[str, ...]
    counts: Mapping[str, int]
    instances: tuple[Instance, ...]


def make_plan(app: App, opts: Options, env: Mapping[str, str] | None = None) -> Plan:
    types = formation.select_types(app.procfile, opts.types)
    counts = formation.resolve_counts(types, formation.parse_formation(opts.formation or ""),
                                      app.procfile.names, max_instances(app))
    full_env = app.environment(env)
    instances = formation.plan(app.procfile, types, counts, app.base_port, full_env)
    return Plan(types, counts, instances)


def max_instances(app: App) -> int:
    from procrun.ranges import MAX_INSTANCES

    return app.config.max_instances or MAX_INSTANCES


def check(opts: Options) -> str:
    app = load(opts)
    make_plan(app, app.options)
    if app.options.chaos_actions or app.options.chaos_types:
        _chaos_config(app.options, app)
    return f"Valid procfile detected ({', '.join(app.procfile.names)})"


def start(opts: Options) -> int:
    app = load(opts)
    opts = app.options
    if not opts.watch:  # watchfiles' anyio imports ssl
        _without_tls()
    from procrun.supervisor import Session, Writer

    plan = make_plan(app, opts)
    process.ensure_open_files(len(plan.instances))
    routed = opts.router if opts.router is not None else opts.chaos
    routed = bool(routed) and app.procfile.get(ROUTED_TYPE) is not None
    if opts.router and not routed:
        raise UsageError(f"--router needs a '{ROUTED_TYPE}' process type in {app.procfile.path}")
    live = Live(app, plan, routed)
    instances = tuple(live.make_instance(i.type, i.index) for i in plan.instances)
    per_type = app.config.types
    machine = Machine(instances, timeout=opts.timeout, restart=opts.restart,  # type: ignore[arg-type]
                      make_instance=live.make_instance,
                      counts=plan.counts,
                      type_restart={t: c.restart for t, c in per_type.items() if c.restart},
                      stop_signals={t: c.stop_signal for t, c in per_type.items() if c.stop_signal},
                      graces={t: c.grace for t, c in per_type.items() if c.grace is not None},
                      cap=max_instances(app))
    style = Style(colour=opts.colour, prefix=opts.prefix)
    style.widen([i.name for i in plan.instances])
    sys.stdout.flush()
    from procrun.chaos_runner import ChaosService

    chaos_service = ChaosService(_chaos_config(opts, app), enabled=bool(opts.chaos))
    from procrun.workdir import Workdirs

    default_ready = {ROUTED_TYPE: "port"}  # web is ready when its port answers; others once spawned
    probe = {t for t in app.procfile.names
             if (per_type[t].ready if t in per_type and per_type[t].ready else default_ready.get(t)) == "port"}
    workdirs = Workdirs(app.root, ignore=app.config.fresh_ignore, keep=bool(opts.keep_dirs),
                        **({"linked": app.config.fresh_link} if app.config.fresh_link is not None else {}))
    writer = Writer(1)
    session = Session(machine, Prefixer(style), writer, app.root, quiet=opts.quiet,
                      workdirs=workdirs, fresh_all=bool(opts.fresh), probe_types=frozenset(probe))
    lock = _lock_session(app.root)
    try:
        from procrun.control.service import ControlService

        state_dir = os.path.dirname(lock.path)
        session.services.append(ControlService(os.path.join(state_dir, statedir.SOCKET),
                                               lambda: live.procfile.names, app.root))
        session.services.append(chaos_service)
        if routed:
            from procrun.router.service import Router

            session.services.append(Router(opts.router_host, app.base_port, opts.router_mode,  # type: ignore[arg-type]
                                           opts.router_timeout, ROUTED_TYPE))  # type: ignore[arg-type]
        if opts.watch:
            from procrun.watch import WatchService, type_globs

            session.services.append(WatchService(
                live, opts.watch_paths, app.config.watch_ignore,
                app.config.watch_debounce if app.config.watch_debounce is not None else 0.3,
                type_globs(app.config.types), rolling=(ROUTED_TYPE,) if routed else ()))
        process.reset_ignored_signals()
        process.become_subreaper()
        import asyncio

        code = asyncio.run(session.run())
        used_chaos = bool(session.report.events) or bool(opts.chaos)
        if used_chaos or session.report.findings or opts.fresh:  # plain runs end like honcho's
            for line in session.report.summary():
                session.say(line, "report")
        _save_report(state_dir, session.report)
        writer.close()
        _say_output_error(session.output_error)
        return code
    finally:
        lock.release()


def _say_output_error(exc: OSError | None) -> None:
    """One stderr line when the output failed; none for a closed pipe (`procrun start | head`)."""
    if exc is None or exc.errno == errno.EPIPE:
        return
    try:
        os.write(2, f"procrun: cannot write the output ({exc.strerror}); stopped the session\n".encode())
    except OSError:
        pass


class Live:
    """The definitions a running session starts instances from; --watch may change them."""

    def __init__(self, app: App, plan: Plan, routed: bool) -> None:
        self.app = app
        self.root = app.root
        self.procfile = app.procfile
        self.procfile_path = os.path.abspath(app.procfile.path)
        files, self.env_required = env_file_list(app.options.env_files)
        self.env_paths = tuple(os.path.abspath(_rel(app.root, f)) for f in files)
        self.config_path = os.path.abspath(app.config.path)
        self.env = app.environment()
        # Types started later (scale, Procfile edits) keep honcho's port slots after the started ones.
        self.port_order = plan.types + tuple(t for t in app.procfile.names if t not in plan.types)
        self.routed = routed

    def make_instance(self, type_name: str, index: int) -> Instance:
        inst = formation.instance(self.procfile, self.port_order, type_name, index, self.app.base_port, self.env)
        if self.routed and type_name == ROUTED_TYPE:  # the router owns the base port
            from procrun.router.service import free_port
            inst = formation.with_port(inst, free_port())
        return inst

    def reload_procfile(self) -> procfile.Procfile:
        self.procfile = procfile.parse(read_text(self.procfile_path, "Procfile"), self.app.procfile.path)
        return self.procfile

    def reload_env(self) -> None:
        dotenv, _ = read_dotenv([os.path.relpath(p) for p in self.env_paths], self.env_required)
        self.env = {**os.environ, **dotenv}

    def add_type(self, type_name: str) -> None:
        if type_name not in self.port_order:
            self.port_order = (*self.port_order, type_name)


def _chaos_config(opts: Options, app: App) -> ChaosConfig:
    """The chaos settings, validated against the Procfile; a seed is drawn when none is given."""
    from procrun.chaos import ACTIONS, ChaosConfig, parse_actions

    try:
        actions = parse_actions(opts.chaos_actions) if opts.chaos_actions else ACTIONS
    except ValueError as exc:
        raise UsageError(f"--chaos-actions: {exc}") from None
    types = tuple(t.strip() for t in (opts.chaos_types or "").split(",") if t.strip())
    opted_out = {t for t, c in app.config.types.items() if c.chaos is False}
    if opted_out:  # procrun.yaml types.X.chaos: false
        types = tuple(t for t in (types or app.procfile.names) if t not in opted_out)
    for name in types:
        if app.procfile.get(name) is None:
            raise UsageError(f"--chaos-types: {app.procfile.path} has no process type {name!r}; "
                             f"it defines {', '.join(app.procfile.names)}")
    if opts.chaos_interval <= 0:  # type: ignore[operator]
        raise UsageError("--chaos-interval must be more than 0 seconds")
    seed = opts.chaos_seed if opts.chaos_seed is not None else int.from_bytes(os.urandom(4), "big")
    return ChaosConfig(opts.chaos_interval, actions, types, opts.chaos_min_uptime, seed)  # type: ignore[arg-type]


def _save_report(state_dir: str, report: Report) -> None:
    path = os.path.join(state_dir, REPORT)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report.to_json(), f, indent=1)
    os.replace(tmp, path)


def last_report(root: str) -> Report | None:
    path = os.path.join(statedir.locate(root), REPORT)
    try:
        with open(path) as f:
            return report_from_json(json.load(f))
    except (OSError, ValueError):
        return None


def _without_tls() -> None:
    """A session speaks no TLS: keep asyncio from loading OpenSSL, several MiB per session.

    asyncio treats a missing ssl module as "no TLS support", which is exactly right here.
    """
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]


def _lock_session(root: str) -> statedir.SessionLock:
    try:
        directory = statedir.create(root)
    except OSError as exc:
        raise SessionError(f"cannot create the session directory: {exc}") from None
    if directory == statedir.preferred(root):
        ignore = os.path.join(directory, ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w") as f:
                f.write("# procrun session state\n*\n")
    lock = statedir.SessionLock(directory)
    info = json.dumps({"pid": os.getpid(), "started": time.strftime("%H:%M:%S"), "root": root})
    holder = lock.acquire(info)
    if holder is not None:
        try:
            data = json.loads(holder)
            who = f"pid {data['pid']}, started {data['started']}"
        except (ValueError, KeyError, TypeError):
            who = holder
        raise SessionError(f"a procrun session is already running in {root} ({who}); "
                           "use 'procrun ps' to see it or 'procrun quit' to stop it")
    return lock


def run(opts: Options, argv: Sequence[str]) -> int:
    """``procrun run``: exec the command with the app's environment; never returns on success."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or not argv[0]:
        raise UsageError("run needs a command, like: procrun run python manage.py migrate")
    app = load(opts, with_procfile=False)  # like honcho and foreman: only the environment
    env = app.environment()
    if "PORT" not in app.dotenv:
        env["PORT"] = str(app.base_port)
    sys.stdout.flush()
    sys.stderr.flush()
    process.reset_ignored_signals()
    args = list(argv)
    if len(args) == 1 and any(c in args[0] for c in " \t\n$|&;<>()*?[]~`'\"\\"):
        args = ["/bin/sh", "-c", args[0]]
    try:
        os.execvpe(args[0], args, env)
    except FileNotFoundError:
        print(f"procrun: {shlex.quote(args[0])}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"procrun: {shlex.quote(args[0])}: permission denied", file=sys.stderr)
        return 126
    except OSError as exc:
        print(f"procrun: {shlex.quote(args[0])}: {exc.strerror}", file=sys.stderr)
        return 126
    except ValueError as exc:  # a NUL byte in an argument
        raise UsageError(f"run: cannot run {shlex.quote(args[0])}: {exc}") from None


def export(opts: Options, fmt: str, target: str, app_name: str | None, image: str | None,
           user: str | None, log_dir: str | None) -> list[str]:
    """Render the formation for another engine and write it into ``target``; returns the paths."""
    import tempfile

    from procrun.export import FORMATS, ExportContext, TypeSpec, renderers

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    app = load(opts)
    opts = app.options
    plan = make_plan(app, opts, env={})
    if fmt == "kubernetes" and not image:
        raise UsageError("export kubernetes needs the container image: pass --image NAME")
    chaos = _chaos_config(opts, app) if opts.chaos else None
    types = tuple(TypeSpec(t, app.procfile.get(t).command, plan.counts[t],  # type: ignore[union-attr]
                           formation.type_port(app.base_port, plan.types, t, 1)) for t in plan.types)
    target = os.path.abspath(target)
    ctx = ExportContext(app=app_name or os.path.basename(app.root) or "app", root=app.root, types=types,
                        env=dict(app.dotenv), timeout=opts.timeout, user=user,  # type: ignore[arg-type]
                        log_dir=os.path.abspath(log_dir) if log_dir else None, export_dir=target,
                        path=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), image=image, chaos=chaos)
    files = renderers()[fmt](ctx)
    if log_dir and fmt == "supervisord":  # supervisord will not start a program whose log path is missing
        try:
            os.makedirs(os.path.abspath(log_dir), exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create log directory {log_dir}: {exc.strerror}; pass -l DIR you can write") from None
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        # staged on the target's own file system (it may be a mount point), then moved in place
        staging = tempfile.mkdtemp(prefix=".procrun-export-", dir=target if os.path.isdir(target) else parent)
    except OSError as exc:
        raise UsageError(f"cannot write to {target}: {exc.strerror}; choose a directory you can write") from None
    try:
        for rel, file in files.items():
            path = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(file.content)
            os.chmod(path, file.mode)
        if not os.path.exists(target):
            os.rename(staging, target)
            staging = ""
        else:
            if not os.path.isdir(target):
                raise UsageError(f"{target} exists and is not a directory; choose another export directory")
            for rel in files:
                destination = os.path.join(target, rel)
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                os.replace(os.path.join(staging, rel), destination)
    except OSError as exc:
        raise UsageError(f"cannot write to {target}: {exc.strerror}; choose a directory you can write") from None
    finally:
        if staging:
            import shutil
            shutil.rmtree(staging, ignore_errors=True)
    return [os.path.join(target, rel) for rel in files]
