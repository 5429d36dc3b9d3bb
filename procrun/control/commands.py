"""What each control request does to a running session: one handler per verb.

Handlers turn requests into Machine calls and hand the actions to the Session,
which alone carries them out. Requests that change the session are refused while
it shuts down, and dropped (and said) when they arrive after the client's deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from procrun.control.protocol import Request, error, ok
from procrun.errors import ProcrunError
from procrun.supervise import process

if TYPE_CHECKING:
    from procrun.supervise.session import Session
    from procrun.supervise.shared import Shared

Reply = dict[str, Any]
READ_ONLY = ("ping", "ps", "report", "subscribe")


class Controller:
    def __init__(self, session: Session, shared: Shared, known_types: Callable[[], tuple[str, ...]], root: str,
                 wall: Callable[[], float] = time.time) -> None:
        self.session, self.shared = session, shared
        self.known_types = known_types
        self.root = root
        self.wall = wall
        self.started = wall()
        self.handlers: dict[str, Callable[[Request], Reply]] = {
            "ping": self.ping, "ps": self.ps, "report": self.report, "chaos": self.chaos, "scale": self.scale,
            "restart": self.restart, "stop": self.stop, "quit": self.quit, "attach": self.attach,
            "subscribe": self.subscribe}

    def handle(self, request: Request) -> Reply:
        if request.deadline is not None and self.wall() > request.deadline:
            if request.cmd not in READ_ONLY:
                self.session.say(f"ignored {request.describe()}: the client gave up")
            return error("the request arrived after its deadline")
        changes = request.cmd not in READ_ONLY and not (request.cmd == "chaos" and request.op == "status")
        if changes and self.session.machine.ending is not None:
            return error("the session is shutting down")
        try:
            return self.handlers[request.cmd](request)
        except (ValueError, ProcrunError) as exc:
            return error(str(exc))
        except OSError as exc:  # out of file descriptors, say: an answer all the same
            return error(f"the session could not do it: {exc.strerror or exc}")

    # -- one handler per verb
    def ping(self, request: Request) -> Reply:
        return ok(pid=os.getpid(), root=self.root, started=self.started)

    def ps(self, request: Request) -> Reply:
        service = self.backing()
        return ok(processes=self.snapshot(), formation=self.session.machine.formation(),
                  backing=service.mapping() if service is not None else [])

    def report(self, request: Request) -> Reply:
        return ok(report=self.session.report.to_json())

    def restart(self, request: Request) -> Reply:
        names = self.session.machine.resolve(request.targets)
        self.session.say(f"restart requested for {', '.join(names) or 'nothing'}")
        self.session.journal.event("restart", {"names": names})
        self.session.apply(self.session.machine.restart_procs(names, self.session.clock()))
        for service in self.session.services:
            service.restarted(names)
        return ok(names=names)

    def stop(self, request: Request) -> Reply:
        names = self.session.machine.resolve(request.targets)
        self.session.say(f"stop requested for {', '.join(names) or 'nothing'}")
        self.session.journal.event("stop", {"names": names})
        self.session.apply(self.session.machine.stop(names, self.session.clock()))
        return ok(names=names)

    def quit(self, request: Request) -> Reply:
        self.session.apply(self.session.machine.shutdown(0, self.session.clock(), "quit requested"))
        return ok(pid=os.getpid())

    def chaos(self, request: Request) -> Reply:
        chaos = self.session.chaos
        if chaos is None:
            return error("this session has no chaos service")
        if request.op == "status":
            return ok(chaos=chaos.status())
        if request.op in ("on", "off"):
            self.session.say(f"chaos {request.op} requested")
            chaos.set_enabled(request.op == "on")
            return ok(chaos=chaos.status())
        if request.backing is not None:
            return self._backing_now(request)
        from procrun.chaos.schedule import ACTIONS

        if request.action is not None and request.action not in ACTIONS:
            return error(f"unknown chaos action {request.action!r}; choose from {', '.join(ACTIONS)}")
        victim = request.targets[0] if request.targets else None
        if victim is not None and self.session.machine.get(victim) is None:
            return error(f"no process named {victim!r}; running: {', '.join(self.session.machine.names())}")
        done = chaos.now(victim, request.action)
        if done is None:
            return error(f"{victim or 'no instance'} is not running and eligible for a disruption now")
        return ok(victim=done.victim, action=done.action)

    def _backing_now(self, request: Request) -> Reply:
        service = self.backing()
        if service is None:
            return error("this session proxies no backing service; start it with --chaos-backing")
        from procrun.backing.faults import make

        fault = make(request.action or "reset", request.params)
        service.now(request.backing, fault)
        return ok(victim=request.backing, action=fault.kind, described=fault.describe(request.backing))

    def backing(self) -> Any:
        """The backing-service chaos, if this session has it (found without an import: a request
        must not need a free file descriptor to be answered)."""
        return next((s for s in self.session.services if s.kind == "backing"), None)

    def scale(self, request: Request) -> Reply:
        machine = self.session.machine
        formation = request.formation
        if not formation:
            return ok(formation=machine.running())
        known = self.known_types()
        for name in formation:
            if name not in known:
                raise ValueError(f"no process type {name!r}; the Procfile defines {', '.join(known)}")
        process.ensure_open_files(sum({**machine.formation(), **formation}.values()))
        self.session.say("scale " + " ".join(f"{t}={n}" for t, n in formation.items()) + " requested")
        self.session.journal.event("scale", {"formation": dict(formation)})
        for name, count in formation.items():
            self.session.apply(machine.scale(name, count, self.session.clock()))
        return ok(formation=machine.formation())

    def attach(self, request: Request) -> Reply:
        """Checked here; the stream itself is control/streams.py's."""
        name, session = request.targets[0], self.session
        proc = session.machine.get(name)
        if proc is None:
            return error(f"no process named {name!r}; running: {', '.join(session.machine.names())}")
        if proc.type not in session.ttys:
            return error(f"{name} has no terminal to attach to: set 'types: {{{proc.type}: {{tty: true}}}}' in "
                         f"procrun.yaml (or start with --tty {proc.type})")
        if proc.pid is None:
            return error(f"{name} is not running ({proc.state})")
        if name in self.shared.taps:
            return error(f"{name} already has a client attached")
        return ok(name=name, pid=proc.pid)

    def subscribe(self, request: Request) -> Reply:
        return ok(pid=os.getpid())

    def state(self) -> Reply:
        """What ``procrun top`` shows: the processes, chaos, the last findings."""
        chaos = self.session.chaos.status() if self.session.chaos is not None else None
        findings = [f"{f.line} [{f.status}]" for f in self.session.report.state.values()]
        findings += [f"{f.instance} left {len(f.created) + len(f.changed)} file(s)" for f in self.session.report.findings]
        return {"processes": self.snapshot(), "formation": self.session.machine.formation(), "chaos": chaos,
                "findings": findings[-5:], "rates": self.shared.rates, "ending": self.session.machine.ending}

    def snapshot(self) -> list[Reply]:
        machine = self.session.machine
        now = self.session.clock()
        usage = process.group_usage({p.pid for p in machine.live() if p.pid})
        rows = []
        for proc in machine.all():
            uptime = now - proc.started if proc.pid and proc.started is not None else None
            cpu, rss = usage.get(proc.pid, (None, None)) if proc.pid else (None, None)
            rows.append({
                "name": proc.name, "type": proc.instance.type, "pid": proc.pid,
                "state": str(proc.state),
                "uptime": uptime, "restarts": proc.restarts, "port": proc.instance.port,
                "cwd": (process.cwd_of(proc.pid) if proc.pid else None) or self.session.cwd,
                "cpu_seconds": cpu, "cpu_percent": (100 * cpu / uptime) if cpu is not None and uptime else None,
                "rss": rss, "last_rc": proc.last_rc, "ready_after": proc.ready_after,
                "stop_after": proc.stop_after,
            })
        return rows
