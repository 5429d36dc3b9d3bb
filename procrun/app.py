"""Composition root: loads the app, builds the plan, wires a session and its services."""

from __future__ import annotations

import errno
import json
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from procrun import statedir
from procrun.errors import SessionError, UsageError
from procrun.project import plan as formation
from procrun.project import procfile
from procrun.project.files import App, env_file_list, load, read_dotenv, read_text, rel
from procrun.project.plan import Instance

if TYPE_CHECKING:
    from procrun.chaos.schedule import ChaosConfig
    from procrun.supervise.machine import Machine
    from procrun.supervise.session import Session

ROUTED_TYPE = "web"


class Plan(NamedTuple):
    """The formation to start: selected types, their counts and every instance."""

    types: tuple[str, ...]
    counts: Mapping[str, int]
    instances: tuple[Instance, ...]


def make_plan(app: App, env: Mapping[str, str] | None = None) -> Plan:
    s = app.settings
    types = formation.select_types(app.procfile, s.types)
    counts = formation.resolve_counts(types, formation.parse_formation(s.formation), app.procfile.names,
                                      s.max_instances)
    instances = formation.plan(app.procfile, types, counts, s.port, app.environment(env))
    return Plan(types, counts, instances)


def check(flags: Mapping[str, Any], edge: Mapping[str, Any]) -> str:
    app = load(flags, edge)
    make_plan(app)
    chaos_config(app)
    return f"Valid procfile detected ({', '.join(app.procfile.names)})"


def start(flags: Mapping[str, Any], edge: Mapping[str, Any]) -> int:
    app = load(flags, edge)
    s = app.settings
    if not s.watch:  # watchfiles' anyio imports ssl
        _without_tls()
    from procrun.supervise import process

    plan = make_plan(app)
    process.ensure_open_files(len(plan.instances))
    routed = s.router and app.procfile.get(ROUTED_TYPE) is not None
    _refuse_bad_input(app, routed)
    live = Live(app, plan, routed)
    backing = _backing(app, plan, live, routed)  # before the instances are made: they get the proxied URLs
    session = _session(app, plan, live)
    lock = _lock_session(app.root)
    try:
        state_dir = os.path.dirname(lock.path)
        journal_dir = _journal(session, app, plan, state_dir)
        process.reset_ignored_signals()
        process.become_subreaper()
        if backing is None:  # (--chaos-backing's proxies must listen before the processes connect)
            session.launch()  # now, before asyncio and the services are imported: processes start sooner
        if journal_dir is not None:  # housekeeping, once the processes are up
            from procrun.journal.store import prune

            prune(journal_dir, s.journal_keep)
        _attach_services(session, app, live, state_dir, routed)
        if backing is not None:
            session.services.append(backing)
        import asyncio

        code = asyncio.run(session.run())
        _finish(session, app, state_dir, journal_dir, code)
        return code
    finally:
        lock.release()


def _refuse_bad_input(app: App, routed: bool) -> None:
    """What the plan cannot tell: refused before anything starts."""
    s = app.settings
    for name in s.tty:
        if app.procfile.get(name) is None:
            raise UsageError(f"--tty {name}: not a process type in {app.procfile.path}; use one of "
                             f"{', '.join(app.procfile.names)}")
    if s.router_explicit and not routed:
        raise UsageError(f"--router needs a '{ROUTED_TYPE}' process type in {app.procfile.path}")
    chaos_types(app)


def _backing(app: App, plan: Plan, live: Live, routed: bool) -> Any:
    """--chaos-backing: a proxy port for each loopback service URL in .env, the values rewritten."""
    s = app.settings
    if not s.chaos_backing:
        return None
    from procrun.backing.service import BackingService
    from procrun.backing.urls import find, rewrite
    from procrun.supervise.process import free_port

    own = {s.port} | {i.port for i in plan.instances if isinstance(i.port, int)}
    proxied, skipped = find(app.dotenv, own)
    ports = [(b, free_port()) for b in proxied]
    live.overrides.update({b.var: rewrite(b.url, port) for b, port in ports})
    live.env.update(live.overrides)
    return BackingService(ports, skipped, s.chaos_seed, s.chaos_interval, s.chaos, ROUTED_TYPE if routed else None)


def _machine(app: App, plan: Plan, live: Live) -> Machine:
    from procrun.supervise.machine import Machine, Rules
    from procrun.supervise.order import StartOrder

    s, per_type = app.settings, app.settings.type_settings
    rules = Rules(s.timeout, s.restart, type_restart={t: c.restart for t, c in per_type.items() if c.restart},
                  stop_signals={t: c.stop_signal for t, c in per_type.items() if c.stop_signal},
                  graces={t: c.grace for t, c in per_type.items() if c.grace is not None})
    order = StartOrder(after={t: c.after for t, c in per_type.items() if c.after},
                       boot_timeouts={t: c.boot_timeout for t, c in per_type.items() if c.boot_timeout})
    return Machine(tuple(live.make_instance(i.type, i.index) for i in plan.instances), rules,
                   make_instance=live.make_instance, counts=plan.counts, cap=s.max_instances, order=order)


def _session(app: App, plan: Plan, live: Live) -> Session:
    from procrun.fresh.workdir import Workdirs
    from procrun.supervise.output import Prefixer, Style
    from procrun.supervise.relay import Writer
    from procrun.supervise.session import Session

    s = app.settings
    style = Style(colour=s.colour, prefix=s.prefix)
    style.widen([i.name for i in plan.instances])
    default_ready = {ROUTED_TYPE: "port"}  # web is ready when its port answers; others once spawned
    per_type = s.type_settings
    probe = {t for t in app.procfile.names
             if (per_type[t].ready if t in per_type and per_type[t].ready else default_ready.get(t)) == "port"}
    workdirs = Workdirs(app.root, ignore=s.fresh_ignore, keep=s.keep_dirs, linked=s.fresh_link)
    sys.stdout.flush()
    from procrun.supervise.probe import Checks

    checks = Checks(frozenset(probe), {t: c.boot_timeout for t, c in per_type.items() if c.boot_timeout}, s.allow)
    session = Session(_machine(app, plan, live), Prefixer(style), Writer(1), app.root, quiet=s.quiet,
                      workdirs=workdirs, fresh_all=s.fresh, checks=checks)
    session.ttys = frozenset(s.tty) | {t for t, c in s.type_settings.items() if c.tty}
    return session


def _attach_services(session: Session, app: App, live: Live, state_dir: str, routed: bool) -> None:
    from procrun.chaos.service import ChaosService
    from procrun.control.service import ControlService

    s = app.settings
    session.services.append(ControlService(os.path.join(state_dir, statedir.SOCKET),
                                           lambda: live.procfile.names, app.root))
    session.report.listener = session.journal.event  # (the report is made now: after the launch)
    session.chaos = ChaosService(chaos_config(app), enabled=s.chaos)
    session.services.append(session.chaos)
    if routed:
        from procrun.router.service import Router

        router = Router(s.router_host, s.port, s.router_mode, s.router_timeout, ROUTED_TYPE)
        if s.router_record and s.router_mode == "http":
            from procrun.diagnose.recorder import Recorder

            router.recorder = Recorder(lambda finding: _found(session, finding))
            session.report.requests_seen = True
        session.services.append(router)
    if s.watch:
        from procrun.watch.service import WatchService, type_globs

        session.services.append(WatchService(live, s.watch_paths, s.watch_ignore, s.watch_debounce,
                                             type_globs(s.type_settings), rolling=(ROUTED_TYPE,) if routed else ()))


def _found(session: Session, finding: Any) -> None:
    """A memory finding, new or newly confirmed: said at once, kept in the report."""
    from procrun.diagnose.report import StateFinding, allowed
    from procrun.diagnose.memory import as_report, join_disk

    written: dict[str, set[str]] = {}
    for files in session.report.findings:  # what stopped instances left, and what running ones wrote so far
        written.setdefault(files.instance, set()).update(files.created + files.changed)
    if session.fresh is not None and session.fresh.writes is not None:
        for instance, paths in session.fresh.writes.written.items():
            written.setdefault(instance, set()).update(paths)
    join_disk([finding], written)
    if allowed(session.checks.allow, finding.kind, f"{finding.method} {finding.path}", finding.path):
        return
    entry = StateFinding(**as_report(finding))  # type: ignore[arg-type]
    session.report.add_state(f"{entry.kind} {entry.type} {entry.request}", entry)
    session.say(f"{entry.line} [{entry.status}]", "finding")


def _journal(session: Session, app: App, plan: Plan, state_dir: str) -> str | None:
    """The session's journal under sessions/<id>/, with what replays it; None with --no-journal."""
    from procrun.journal.store import Journal, new_session

    s = app.settings
    if not s.journal:
        return None
    argv = ["procrun", *sys.argv[1:]]
    replay = argv + ([] if any(a.startswith("--chaos-seed") for a in argv) else ["--chaos-seed", str(s.chaos_seed)])
    meta = {"pid": os.getpid(), "root": app.root, "argv": argv, "replay": shlex.join(replay) if s.chaos else None,
            "seed": s.chaos_seed, "chaos": s.chaos, "started": time.time(), "names": [i.name for i in plan.instances]}
    try:
        directory = new_session(state_dir, meta, meta["started"])
    except OSError as exc:
        session.say(f"no journal for this session: {exc.strerror or exc}", "warning")
        return None
    session.journal = Journal(directory, int(s.journal_max_mb * 1_000_000),
                              on_error=lambda exc: session.say(f"journal stopped: {exc.strerror or exc}", "warning"))
    return directory


def _finish(session: Session, app: App, state_dir: str, journal_dir: str | None, code: int) -> None:
    """The exit summary (chaos and fresh sessions; plain runs end like honcho's), the saved
    report and, under chaos, the session's page."""
    s = app.settings
    if session.report.events or s.chaos or session.report.findings or s.fresh:
        for line in session.report.summary():
            session.say(line, "report")
    report = session.report.to_json()
    statedir.save_json(state_dir, statedir.REPORT, report)
    if journal_dir is not None:
        statedir.save_json(journal_dir, statedir.REPORT, report)
        if s.chaos:
            from procrun.journal.page import write_page

            page = write_page(journal_dir, report)
            session.say(f"timeline: file://{page}", "report")
        session.journal.event("end", {"code": code})
        session.journal.close()
    session.writer.close()
    _say_output_error(session.output_error)


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
        files, self.env_required = env_file_list(app.settings.env_files)
        self.env_paths = tuple(os.path.abspath(rel(app.root, f)) for f in files)
        self.config_path = os.path.abspath(app.settings.config_path)
        self.env = app.environment()
        self.overrides: dict[str, str] = {}  # values procrun rewrote (--chaos-backing), kept across .env reloads
        # Types started later (scale, Procfile edits) keep honcho's port slots after the started ones.
        self.port_order = plan.types + tuple(t for t in app.procfile.names if t not in plan.types)
        self.routed = routed

    def make_instance(self, type_name: str, index: int) -> Instance:
        inst = formation.instance(self.procfile, self.port_order, type_name, index, self.app.settings.port, self.env)
        if self.routed and type_name == ROUTED_TYPE:  # the router owns the base port; the session picks one
            inst = formation.with_port(inst, formation.AUTO_PORT)
        return inst

    def reload_procfile(self) -> procfile.Procfile:
        self.procfile = procfile.parse(read_text(self.procfile_path, "Procfile"), self.app.procfile.path)
        return self.procfile

    def reload_env(self) -> None:
        dotenv, _ = read_dotenv([os.path.relpath(p) for p in self.env_paths], self.env_required)
        self.env = {**os.environ, **dotenv, **self.overrides}

    def add_type(self, type_name: str) -> None:
        if type_name not in self.port_order:
            self.port_order = (*self.port_order, type_name)


def chaos_config(app: App) -> ChaosConfig:
    """The chaos settings, checked against the Procfile (types that opt out in procrun.yaml left out)."""
    from procrun.chaos.schedule import ChaosConfig

    s = app.settings
    return ChaosConfig(s.chaos_interval, s.chaos_actions, chaos_types(app), s.chaos_min_uptime, s.chaos_seed)


def chaos_types(app: App) -> tuple[str, ...]:
    """The types chaos may disrupt (empty: all), refused when the Procfile has no such type."""
    s = app.settings
    types = s.chaos_types
    opted_out = {t for t, c in s.type_settings.items() if c.chaos is False}
    if opted_out:  # procrun.yaml types.X.chaos: false
        types = tuple(t for t in (types or app.procfile.names) if t not in opted_out)
    for name in types:
        if app.procfile.get(name) is None and app.procfile.types:
            raise UsageError(f"--chaos-types: {app.procfile.path} has no process type {name!r}; "
                             f"it defines {', '.join(app.procfile.names)}")
    return types


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


def run(flags: Mapping[str, Any], edge: Mapping[str, Any], argv: Sequence[str]) -> int:
    """``procrun run``: exec the command with the app's environment; never returns on success."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or not argv[0]:
        raise UsageError("run needs a command, like: procrun run python manage.py migrate")
    app = load(flags, edge, with_procfile=False)  # like honcho and foreman: only the environment
    env = app.environment()
    if "PORT" not in app.dotenv:
        env["PORT"] = str(app.settings.port)
    sys.stdout.flush()
    sys.stderr.flush()
    from procrun.supervise.process import reset_ignored_signals

    reset_ignored_signals()
    args = list(argv)
    if len(args) == 1 and any(c in args[0] for c in " \t\n$|&;<>()*?[]~`'\"\\"):
        args = ["/bin/sh", "-c", args[0]]
    return _exec(args, env)


def _exec(args: list[str], env: Mapping[str, str]) -> int:
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
    return 0  # not reached: exec replaced us


def export(flags: Mapping[str, Any], edge: Mapping[str, Any], fmt: str, target: str, app_name: str | None,
           image: str | None, user: str | None, log_dir: str | None) -> list[str]:
    """Render the formation for another engine and write it into ``target``; returns the paths."""
    from procrun.export import FORMATS, ExportContext, TypeSpec, renderers, stage

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    app = load(flags, edge)
    s = app.settings
    plan = make_plan(app, env={})
    if fmt == "kubernetes" and not image:
        raise UsageError("export kubernetes needs the container image: pass --image NAME")
    types = tuple(TypeSpec(t, app.procfile.get(t).command, plan.counts[t],  # type: ignore[union-attr]
                           formation.type_port(s.port, plan.types, t, 1)) for t in plan.types)
    target = os.path.abspath(target)
    ctx = ExportContext(app=app_name or os.path.basename(app.root) or "app", root=app.root, types=types,
                        env=dict(app.dotenv), timeout=s.timeout, user=user,
                        log_dir=os.path.abspath(log_dir) if log_dir else None, export_dir=target,
                        path=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), image=image,
                        chaos=chaos_config(app) if s.chaos else None)
    files = renderers()[fmt](ctx)
    if log_dir and fmt == "supervisord":  # supervisord will not start a program whose log path is missing
        try:
            os.makedirs(os.path.abspath(log_dir), exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create log directory {log_dir}: {exc.strerror}; pass -l DIR you can write") from None
    return stage.write(files, target)
