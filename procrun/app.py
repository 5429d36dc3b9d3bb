"""Composition root: loads the app, builds the plan, wires a session and its services.

Read top to bottom: ``check`` and ``start`` (``run`` is ``procrun.oneoff``'s, ``export`` is
``procrun.export.run``'s), then how a start builds its backing proxies, Machine, session and
services, and how it ends.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from procrun import statedir
from procrun.journal.store import open_journal
from procrun.project.files import App, load, refuse_bad_input
from procrun.project.live import Live
from procrun.project.plan import RELEASE_TYPE, ROUTED_TYPE, Plan, make_plan
from procrun.supervise.shared import Shared

if TYPE_CHECKING:
    from procrun.supervise.machine import Machine
    from procrun.supervise.session import Session


def check(flags: Mapping[str, Any], edge: Mapping[str, Any]) -> tuple[str, list[str]]:
    """honcho's line (for stderr), and what was checked, file by file (for stdout)."""
    from procrun.chaos.schedule import chaos_config
    from procrun.project.envfile import parse as parse_env
    from procrun.project.files import read_text

    app = load(flags, edge)
    make_plan(app.procfile, app.settings, app.environment(), app.type_env)
    chaos_config(app)
    names = app.procfile.names
    checked = [f"Procfile: {os.path.abspath(app.procfile.path)} ({len(names)} type{'s' * (len(names) != 1)}: "
               f"{', '.join(names)})"]
    for path in app.env_paths:
        count = len(parse_env(read_text(path, "env file"), path))
        checked.append(f"env file: {os.path.abspath(path)} ({count} value{'s' * (count != 1)})")
    if not app.env_paths:
        checked.append("env file: none (no .env)")
    config = os.path.abspath(app.settings.config_path)
    checked.append(f"procrun.yaml: {config}" if os.path.exists(config) else "procrun.yaml: none")
    return f"Valid procfile detected ({', '.join(names)})", checked


def start(flags: Mapping[str, Any], edge: Mapping[str, Any]) -> int:
    app = load(flags, edge)
    s = app.settings
    from procrun.supervise import process

    if not s.watch:  # watchfiles' anyio imports ssl
        process.without_tls()

    plan = make_plan(app.procfile, s, app.environment(), app.type_env)
    process.ensure_open_files(len(plan.instances))
    routed = s.router and app.procfile.get(ROUTED_TYPE) is not None
    _refuse(app, routed)
    live = Live(app, plan, routed)
    backing = _backing(app, plan, live)  # before the instances are made: they get the proxied URLs
    shared = Shared()  # the channels the session's services tell each other through
    session = _session(app, plan, live, shared)
    session.own_tmp = routed  # behind the router each instance has a TMPDIR of its own, as on its own machine
    lock = statedir.lock_session(app.root)
    try:
        state_dir = os.path.dirname(lock.path)
        journal = open_journal(state_dir, s, [i.name for i in plan.instances], session.say)  # None: --no-journal
        if journal is not None:
            session.journal = journal
        journal_dir = journal.directory if journal is not None else None
        process.reset_ignored_signals()
        process.become_subreaper()
        if backing is None:  # (--chaos-backing's proxies must listen before the processes connect)
            session.launch()  # now, before asyncio and the services are imported: processes start sooner
        if journal_dir is not None:  # housekeeping, once the processes are up
            from procrun.journal.store import prune

            prune(journal_dir, s.journal_keep)
        _attach_services(session, shared, app, live, state_dir, routed, backing)
        import asyncio

        code = asyncio.run(session.run())
        _finish(session, app, state_dir, journal_dir, code)
        return code
    finally:
        lock.release()


def _refuse(app: App, routed: bool) -> None:
    """What cannot run, said before anything starts: bad input, and a router port another process
    holds (it came after the first processes, with their stop lines)."""
    from procrun.supervise.process import port_taken

    refuse_bad_input(app, routed)
    s = app.settings
    taken = port_taken(s.port) if routed else None
    if taken is not None:
        from procrun.errors import SessionError

        raise SessionError(f"router cannot listen on {s.router_host}:{s.port}: in use by {taken}; "
                           "pick another base port with -p")


def _backing(app: App, plan: Plan, live: Live) -> Any:
    """--chaos-backing: a proxy for each loopback service URL in .env and in each type's own env
    (procrun.yaml), each instance given its own port; (the proxies, the values skipped, the
    session's own ports), or None."""
    s = app.settings
    if not s.chaos_backing:
        return None
    from procrun.backing.service import instance_env, proxies_for
    from procrun.backing.urls import find
    from procrun.project.plan import type_of

    own = {s.port} | {i.port for i in plan.instances if isinstance(i.port, int)}
    proxied, skipped = find(app.dotenv, own)
    for type_name, env in app.type_env.items():  # a type's own URL (one .env does not have): a proxy of its own
        mine, left = find({k: v for k, v in env.items() if app.dotenv.get(k) != v}, own)
        proxied += [b._replace(scope=type_name) for b in mine]
        skipped += [k._replace(var=f"{k.var} ({type_name})") for k in left]
    proxies = proxies_for(proxied)
    live.instance_env = lambda name: instance_env(proxies, name, app.type_env.get(type_of(name), {}))
    return proxies, skipped, frozenset(own)


def _machine(app: App, plan: Plan, live: Live) -> Machine:
    from procrun.supervise.machine import Machine, Rules
    from procrun.supervise.order import StartOrder, first_start

    s, per_type = app.settings, app.settings.type_settings
    restart = {t: c.restart for t, c in per_type.items() if c.restart}
    if s.restart == "never":  # a type with a health probe is restarted when it fails, unless it says otherwise
        restart.update({t: "on-failure" for t, c in per_type.items() if c.health and not c.restart})
    rules = Rules(s.timeout, s.restart, type_restart=restart,
                  stop_signals={t: c.stop_signal for t, c in per_type.items() if c.stop_signal},
                  graces={t: c.grace for t, c in per_type.items() if c.grace is not None},
                  oneshots=frozenset({t for t, c in per_type.items() if c.oneshot} | {RELEASE_TYPE}))
    after = first_start({t: c.waits_for() for t, c in per_type.items() if c.after}, plan.types, plan.release is not None)
    instances = [live.make_instance(i.type, i.index) for i in plan.instances]
    counts = dict(plan.counts)
    if plan.release is not None:  # release runs first
        instances.insert(0, live.make_instance(RELEASE_TYPE, 1))
        counts = {RELEASE_TYPE: 1, **counts}
    order = StartOrder(after, {t: c.boot_timeout for t, c in per_type.items() if c.boot_timeout}, quiet=(RELEASE_TYPE,))
    return Machine(instances, rules, make_instance=live.make_instance, counts=counts, cap=s.max_instances, order=order)


def _session(app: App, plan: Plan, live: Live, shared: Shared) -> Session:
    from procrun.fresh.workdir import Workdirs
    from procrun.supervise.output import Prefixer, Style
    from procrun.supervise.relay import Writer
    from procrun.supervise.session import Session

    s = app.settings
    style = Style(colour=s.colour, prefix=s.prefix)
    style.widen([i.name for i in plan.instances])
    workdirs = Workdirs(app.root, ignore=s.fresh_ignore, keep=s.keep_dirs, linked=s.fresh_link)
    sys.stdout.flush()
    from procrun.supervise.probe import Checks

    checks = Checks.of(s, app.procfile.names)
    session = Session(_machine(app, plan, live), Prefixer(style), Writer(1), app.root, quiet=s.quiet,
                      workdirs=workdirs, fresh_all=s.fresh, checks=checks, shared=shared)
    session.ttys = frozenset(s.tty) | {t for t, c in s.type_settings.items() if c.tty}
    return session


def _attach_services(session: Session, shared: Shared, app: App, live: Live, state_dir: str, routed: bool,
                     backing: Any) -> None:
    from procrun.chaos.schedule import chaos_config
    from procrun.chaos.service import ChaosService
    from procrun.control.service import ControlService

    s = app.settings
    session.services.append(ControlService(session, shared, os.path.join(state_dir, statedir.SOCKET),
                                           lambda: live.procfile.names, app.root))
    session.report.listener = session.journal.event  # (the report is made now: after the launch)
    session.chaos = ChaosService(session, shared, chaos_config(app), enabled=s.chaos)
    session.services.append(session.chaos)
    if routed:
        from procrun.router.service import Router

        router = Router(session, shared, s.router_host, s.port, s.router_mode, s.router_timeout, ROUTED_TYPE,
                        s.router_balance, s.chaos_seed)
        if s.router_record and s.router_mode == "http":
            from procrun.diagnose.recorder import Recorder

            router.recorder = Recorder(session.findings.request, replay=router.replay if s.router_replay else None,
                                       release_of=lambda name: shared.releases.get(name, 0),
                                       exclude=s.router_replay_exclude, server_errors=s.router_replay == "all")
            shared.on_write = router.recorder.wrote
            session.report.requests_seen = True
            if s.router_compare > 0:
                _compare(router, session, s)
        session.services.append(router)
    if s.watch:
        from procrun.watch.service import WatchService, type_globs

        watch = WatchService(session, shared, live, s.watch_paths, s.watch_ignore, s.watch_debounce, type_globs(s.type_settings),
                             rolling=(ROUTED_TYPE,) if routed else ())
        session.services.append(watch)
    if backing is not None:
        session.services.append(_backing_service(session, shared, s, live, routed, backing))


def _compare(router: Any, session: Session, s: Any) -> None:
    """router.compare: safe answers compared across instances, their differences findings."""
    import random
    import time

    from procrun.diagnose.sampling import Sampler

    recorder = router.recorder
    recorder.compare = router.compare
    recorder.sampler = Sampler(s.router_compare, random.Random(f"sample-{s.chaos_seed}"), time.monotonic)
    recorder.compared = session.findings.answers


def _backing_service(session: Session, shared: Shared, s: Any, live: Live, routed: bool, backing: Any) -> Any:
    from procrun.backing.faults import chosen
    from procrun.backing.service import BackingService

    proxies, skipped, own = backing
    kinds = chosen(s.chaos_backing_faults)
    service = BackingService(session, shared, proxies, skipped, s.chaos_seed, s.chaos_interval, s.chaos,
                             ROUTED_TYPE if routed else None, own, kinds)
    live.retarget = service.retarget  # a .env change under --watch follows a changed URL
    return service


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
            from procrun.journal.page import file_url, write_page

            session.say(f"timeline: {file_url(write_page(journal_dir, report))}", "report")
        session.journal.event("end", {"code": code})
        session.journal.close()
    from procrun.supervise.relay import say_output_error

    session.writer.close()
    say_output_error(session.output_error)
