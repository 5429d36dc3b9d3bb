"""What each control request does to a running session."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from procrun import process
from procrun.control.protocol import Request, error, ok
from procrun.errors import ProcrunError

if TYPE_CHECKING:
    from procrun.supervisor import Session


class Controller:
    """Turns requests into Machine calls; the Session carries out the actions."""

    def __init__(self, session: Session, known_types: Callable[[], tuple[str, ...]], root: str,
                 wall: Callable[[], float] = time.time) -> None:
        self.session = session
        self.known_types = known_types
        self.root = root
        self.wall = wall
        self.started = wall()

    def handle(self, request: Request) -> dict[str, Any]:
        if request.deadline is not None and self.wall() > request.deadline:
            if request.cmd not in ("ping", "ps", "report"):
                self.session.say(f"ignored {request.describe()}: the client gave up")
            return error("the request arrived after its deadline")
        machine = self.session.machine
        if request.cmd == "ping":
            return ok(pid=os.getpid(), root=self.root, started=self.started)
        if request.cmd == "ps":
            return ok(processes=self.snapshot(), formation=machine.formation())
        if request.cmd == "report":
            return ok(report=self.session.report.to_json())
        if request.cmd == "chaos" and request.op == "status":
            return ok(chaos=self.session.chaos.status())  # type: ignore[union-attr]
        if machine.ending is not None:
            return error("the session is shutting down")
        now = self.session.clock()
        try:
            if request.cmd == "scale":
                return self._scale(request.formation, now)
            if request.cmd in ("restart", "stop"):
                names = machine.resolve(request.targets)
                self.session.say(f"{request.cmd} requested for {', '.join(names) or 'nothing'}")
                act = machine.restart_procs if request.cmd == "restart" else machine.stop
                self.session.apply(act(names, now))
                if request.cmd == "restart":
                    for service in self.session.services:
                        service.restarted(names)
                return ok(names=names)
        except ValueError as exc:
            return error(str(exc))
        if request.cmd == "chaos":
            return self._chaos(request)
        # quit
        self.session.apply(machine.shutdown(0, now, "quit requested"))
        return ok(pid=os.getpid())

    def _chaos(self, request: Request) -> dict[str, Any]:
        from procrun.chaos import ACTIONS

        chaos = self.session.chaos
        if request.op in ("on", "off"):
            self.session.say(f"chaos {request.op} requested")
            chaos.set_enabled(request.op == "on")  # type: ignore[union-attr]
            return ok(chaos=chaos.status())  # type: ignore[union-attr]
        if request.action is not None and request.action not in ACTIONS:
            return error(f"unknown chaos action {request.action!r}; choose from {', '.join(ACTIONS)}")
        victim = request.targets[0] if request.targets else None
        if victim is not None and victim not in self.session.machine.procs:
            return error(f"no process named {victim!r}; running: {', '.join(self.session.machine.procs)}")
        done = chaos.now(victim, request.action)  # type: ignore[union-attr]
        if done is None:
            return error(f"{victim or 'no instance'} is not running and eligible for a disruption now")
        return ok(victim=done.victim, action=done.action)

    def _scale(self, formation: dict[str, int], now: float) -> dict[str, Any]:
        machine = self.session.machine
        if not formation:
            return ok(formation=machine.formation())
        known = self.known_types()
        for name in formation:
            if name not in known:
                raise ValueError(f"no process type {name!r}; the Procfile defines {', '.join(known)}")
        total = sum(formation.get(t, n) for t, n in {**machine.formation(), **formation}.items())
        try:
            process.ensure_open_files(total)
        except ProcrunError as exc:
            raise ValueError(str(exc)) from None
        self.session.say("scale " + " ".join(f"{t}={n}" for t, n in formation.items()) + " requested")
        for name, count in formation.items():
            self.session.apply(machine.scale(name, count, now))
        return ok(formation=machine.formation())

    def snapshot(self) -> list[dict[str, Any]]:
        machine = self.session.machine
        now = self.session.clock()
        usage = process.group_usage({p.pid for p in machine.procs.values() if p.pid})
        rows = []
        for proc in machine.procs.values():
            uptime = now - proc.started if proc.pid and proc.started is not None else None
            cpu, rss = usage.get(proc.pid, (None, None)) if proc.pid else (None, None)
            rows.append({
                "name": proc.name, "type": proc.instance.type, "pid": proc.pid,
                "state": "paused" if proc.paused else str(proc.state),
                "uptime": uptime, "restarts": proc.restarts, "port": proc.instance.port,
                "cwd": (process.cwd_of(proc.pid) if proc.pid else None) or self.session.cwd,
                "cpu_seconds": cpu, "cpu_percent": (100 * cpu / uptime) if cpu is not None and uptime else None,
                "rss": rss, "last_rc": proc.last_rc, "ready_after": proc.ready_after,
                "stop_after": proc.stop_after,
            })
        return rows


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return "-"


def table(rows: list[dict[str, Any]]) -> str:
    """The `procrun ps` table. Pure."""
    head = ("NAME", "PID", "STATE", "UPTIME", "RESTARTS", "PORT", "READY", "CPU", "RSS", "DIR")
    body = [(r["name"], str(r["pid"] or "-"), r["state"], _duration(r["uptime"]), str(r["restarts"]),
             str(r["port"] or "-"), "-" if r.get("ready_after") is None else f"{r['ready_after']:.2f}s",
             "-" if r["cpu_percent"] is None else f"{r['cpu_percent']:.1f}%",
             _size(r["rss"]), r["cwd"] or "-") for r in rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body])
