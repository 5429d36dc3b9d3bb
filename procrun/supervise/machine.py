"""The supervisor's pure core: events in, actions out, no I/O.

``Machine`` owns the table of processes. Every input (spawned, exited, timer,
signal, control command) is a method call with the current time; every effect
it wants (spawn, signal a group, print, finish) comes back as action data
that the effect layer in ``supervisor.py`` carries out. Time is passed in, so
the whole lifecycle is testable with a fake clock.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from procrun.errors import ProcrunError
from procrun.project.plan import Instance, port_clash
from procrun.project.ranges import MAX_INSTANCES

POLICIES = ("never", "on-failure", "always")


class State(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    EXITED = "exited"


# --- actions -----------------------------------------------------------------

@dataclass(frozen=True)
class Spawn:
    instance: Instance
    fresh: bool = False  # in a fresh working directory (relocate)


@dataclass(frozen=True)
class Kill:
    name: str
    pid: int
    sig: int


@dataclass(frozen=True)
class Sweep:
    """Signal descendants outside every tracked group (daemonised grandchildren)."""

    sig: int


@dataclass(frozen=True)
class Say:
    text: str
    source: str = "system"


@dataclass(frozen=True)
class Finish:
    code: int


Action = Spawn | Kill | Sweep | Say | Finish


# --- policy ------------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    """Restart delays: immediate first retry, then doubling up to a cap.

    A process that stayed up for ``reset_after`` seconds starts over at the
    first delay; ``loop_after`` quick failures in a row are a crash loop.
    """

    base: float = 0.1
    cap: float = 10.0
    reset_after: float = 10.0
    loop_after: int = 3

    def delay(self, failures: int) -> float:
        if failures <= 1:
            return 0.0
        return min(self.cap, self.base * 2 ** (failures - 2))


def exit_code(returncode: int) -> int:
    """Shell convention: a death by signal N is 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


# --- state -------------------------------------------------------------------

@dataclass
class Proc:
    instance: Instance
    state: State = State.EXITED
    pid: int | None = None
    started: float | None = None
    restarts: int = 0
    failures: int = 0
    due: float | None = None
    after_stop: str = ""  # "", "restart", "relocate" or "remove"
    last_rc: int | None = None
    ready_after: float | None = None  # seconds from spawn to ready (disposability)
    stop_after: float | None = None  # seconds from stop request to exit
    stop_requested: float | None = None
    paused: bool = False

    @property
    def name(self) -> str:
        return self.instance.name


@dataclass
class Machine:
    instances: Iterable[Instance]
    timeout: float = 5.0
    restart: str = "never"
    type_restart: Mapping[str, str] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)
    make_instance: Callable[[str, int], Instance] | None = None
    counts: Mapping[str, int] | None = None  # the formation asked for, zeros included
    stop_signals: Mapping[str, int] = field(default_factory=dict)  # per type; default SIGTERM
    graces: Mapping[str, float] = field(default_factory=dict)  # per type; default timeout
    cap: int = MAX_INSTANCES  # instances per type

    def __post_init__(self) -> None:
        self.procs: dict[str, Proc] = {i.name: Proc(i) for i in self.instances}
        self.wanted: dict[str, int] = dict(self.counts or {})
        for proc in self.procs.values():
            self.wanted.setdefault(proc.instance.type, 0)
        if self.counts is None:
            for proc in self.procs.values():
                self.wanted[proc.instance.type] += 1
        self.by_pid: dict[int, str] = {}
        self.ending: int | None = None
        self.deadline: float | None = None
        self.killed = False

    # -- queries
    def policy(self, type_name: str) -> str:
        return self.type_restart.get(type_name, self.restart)

    def stop_signal(self, proc: Proc) -> int:
        return self.stop_signals.get(proc.instance.type, signal.SIGTERM)

    def grace(self, proc: Proc) -> float:
        return self.graces.get(proc.instance.type, self.timeout)

    def live(self) -> list[Proc]:
        return [p for p in self.procs.values() if p.pid is not None]

    def next_deadline(self) -> float | None:
        times = [p.due for p in self.procs.values() if p.due is not None]
        if self.deadline is not None and not self.killed:
            times.append(self.deadline)
        return min(times, default=None)

    # -- inputs
    def start(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for proc in self.procs.values():
            actions += self._spawn(proc, now)
        return actions + self._maybe_end(now)

    def formation(self) -> dict[str, int]:
        """The formation asked for (at start or by scale), zeros included."""
        return dict(self.wanted)

    def resolve(self, targets: Iterable[str]) -> list[str]:
        """Instance names for TYPE or NAME targets; all when none. ValueError names the unknown."""
        targets = list(targets)
        if not targets:
            return list(self.procs)
        names: list[str] = []
        for target in targets:
            found = [n for n, p in self.procs.items() if target in (n, p.instance.type)]
            if not found:
                known = ", ".join(self.procs) or "none"
                raise ValueError(f"no process or type named {target!r}; running: {known}")
            names += [n for n in found if n not in names]
        return names

    def spawned(self, name: str, pid: int, now: float, probing: bool = False) -> list[Action]:
        """A process exists. With ``probing`` it stays STARTING until ``ready()``."""
        proc = self.procs[name]
        proc.pid, proc.started = pid, now
        proc.state = State.STARTING if probing else State.RUNNING
        proc.ready_after = None if probing else 0.0
        self.by_pid[pid] = name
        actions: list[Action] = [Say(f"{name} started (pid={pid})")]
        if self.ending is not None:  # spawned while shutting down: stop it at once
            proc.state = State.STOPPING
            actions.append(Kill(name, pid, signal.SIGKILL if self.killed else signal.SIGTERM))
        return actions

    def redefine(self, name: str, instance: Instance) -> None:
        """Use a new definition (command, environment) from the next start on."""
        self.procs[name].instance = instance

    def ready(self, name: str, pid: int, now: float) -> list[Action]:
        proc = self.procs.get(name)
        if proc is None or proc.pid != pid or proc.state is not State.STARTING:
            return []
        proc.state = State.RUNNING
        proc.ready_after = now - (proc.started or now)
        return [Say(f"{name} is ready on port {proc.instance.port} after {proc.ready_after:.2f}s")]

    def spawn_failed(self, name: str, error: str, now: float) -> list[Action]:
        proc = self.procs[name]
        proc.started = now
        return [Say(f"{name} could not start: {error}")] + self._exited_by_itself(proc, 127, now)

    def exited(self, pid: int, returncode: int, now: float) -> list[Action]:
        name = self.by_pid.pop(pid, None)
        if name is None:
            return []
        proc = self.procs[name]
        proc.pid, proc.last_rc = None, returncode
        if proc.stop_requested is not None:
            proc.stop_after, proc.stop_requested = now - proc.stop_requested, None
        actions: list[Action] = [Say(f"{name} stopped (rc={returncode})")]
        if self.ending is not None:
            proc.state, proc.due = State.EXITED, None
            return actions + self._maybe_finish()
        if proc.state is State.STOPPING:
            return actions + self._stopped_by_us(proc, now)
        return actions + self._exited_by_itself(proc, returncode, now)

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.deadline is not None and not self.killed and now >= self.deadline:
            actions += self._kill_all("timeout")
        for proc in list(self.procs.values()):
            if proc.due is None or proc.due > now:
                continue
            proc.due = None
            if proc.paused and proc.pid is not None:
                proc.paused = False
                actions.append(Say(f"resume {proc.name} (SIGCONT)", "chaos"))
                actions.append(Kill(proc.name, proc.pid, signal.SIGCONT))
            elif proc.state is State.BACKOFF:
                actions += self._spawn(proc, now)
            elif proc.state is State.STOPPING and proc.pid is not None:
                actions.append(Say(f"{proc.name} did not stop within {self.grace(proc):g}s; sending SIGKILL"))
                actions.append(Kill(proc.name, proc.pid, signal.SIGKILL))
        return actions

    def shutdown(self, code: int, now: float, reason: str = "") -> list[Action]:
        """Stop everything: SIGTERM now, SIGKILL at the deadline, then Finish."""
        if self.ending is not None:
            return []
        live = self.live()
        self.ending = code
        self.deadline = now + max([self.timeout, *(self.grace(p) for p in live)])
        actions: list[Action] = [Say(reason)] if reason else []
        for proc in self.procs.values():
            proc.due = None
            if proc.pid is None:
                proc.state = State.EXITED
                continue
            proc.state = State.STOPPING
            proc.stop_requested = proc.stop_requested or now
            sig = self.stop_signal(proc)
            actions.append(Say(f"sending {signal.Signals(sig).name} to {proc.name} (pid {proc.pid})"))
            actions.append(Kill(proc.name, proc.pid, sig))
            actions += self._unpause(proc)
        actions.append(Sweep(signal.SIGTERM))
        return actions + self._maybe_finish()

    def hurry(self, now: float) -> list[Action]:
        """A second interrupt during shutdown: kill at once."""
        if self.ending is None or self.killed:
            return []
        return self._kill_all("second interrupt")

    # -- control (used by the control socket)
    def stop(self, names: Iterable[str], now: float, then: str = "") -> list[Action]:
        actions: list[Action] = []
        for name in names:
            proc = self.procs[name]
            if proc.state is State.BACKOFF or (proc.pid is None and proc.state is not State.STOPPING):
                proc.due = None
                if then in ("restart", "relocate"):
                    actions += self._spawn(proc, now)
                elif then == "remove":
                    del self.procs[name]
                else:
                    proc.state = State.EXITED
                continue
            proc.after_stop = then or proc.after_stop
            if proc.state is State.STOPPING:
                continue
            proc.state, proc.due, proc.stop_requested = State.STOPPING, now + self.grace(proc), now
            actions.append(Kill(name, proc.pid, self.stop_signal(proc)))  # type: ignore[arg-type]
            actions += self._unpause(proc)
        return actions

    def disrupt(self, name: str, action: str, now: float, pause_for: float = 0.0) -> list[Action]:
        """A chaos action on one running instance. Never ends the session."""
        proc = self.procs.get(name)
        if proc is None or proc.pid is None or proc.state not in (State.RUNNING, State.STARTING) or proc.paused:
            return []
        if action == "restart":
            return self.stop([name], now, then="restart")
        if action == "relocate":
            return self.stop([name], now, then="relocate")
        if action == "kill":
            proc.state, proc.after_stop, proc.stop_requested = State.STOPPING, "restart", now
            return [Kill(name, proc.pid, signal.SIGKILL)]
        if action == "pause":
            proc.paused, proc.due = True, now + pause_for
            return [Kill(name, proc.pid, signal.SIGSTOP)]
        raise ValueError(f"unknown chaos action {action!r}")

    def _unpause(self, proc: Proc) -> list[Action]:
        """A stopped (SIGSTOP) process must be continued to act on SIGTERM."""
        if not proc.paused or proc.pid is None:
            return []
        proc.paused = False
        return [Kill(proc.name, proc.pid, signal.SIGCONT)]

    def restart_procs(self, names: Iterable[str], now: float) -> list[Action]:
        return self.stop(names, now, then="restart")

    def scale(self, type_name: str, count: int, now: float) -> list[Action]:
        """After this, ``count`` instances of the type run (stopped ones are started again).

        Every new instance is built and checked (cap, port range, port clash) before
        anything changes, so a refused scale (ValueError) leaves the session as it was."""
        if self.make_instance is None:
            raise RuntimeError("scaling needs make_instance")
        if count > self.cap:
            raise ValueError(f"{type_name}={count} is more than {self.cap} instances of a type; "
                             "set max_instances in procrun.yaml if you mean it")
        mine = sorted((p for p in self.procs.values() if p.instance.type == type_name
                       and p.after_stop != "remove"), key=lambda p: (p.state is State.EXITED, p.instance.index))
        used = {p.instance.index for p in self.procs.values() if p.instance.type == type_name}
        fresh = [i for i in range(1, len(used) + count + 1) if i not in used][:max(0, count - len(mine))]
        try:
            added = [Proc(self.make_instance(type_name, index)) for index in fresh]
        except ProcrunError as exc:
            raise ValueError(str(exc)) from None
        clash = port_clash([p.instance for p in added], {p.instance.port: p.name for p in self.procs.values()
                                                          if p.instance.port is not None})
        if clash is not None:
            raise ValueError(clash)
        self.wanted[type_name] = count
        actions: list[Action] = []
        keep, victims = mine[:count], mine[count:]
        if victims:
            actions += self.stop([p.name for p in reversed(victims)], now, then="remove")
        for proc in keep:
            if proc.state is State.EXITED:  # stopped earlier (procrun stop): start it again
                actions += self._spawn(proc, now)
        for proc in added:
            self.procs[proc.name] = proc
            actions += self._spawn(proc, now)
        types = list(dict.fromkeys(p.instance.type for p in self.procs.values()))  # first-seen order
        order = {t: i for i, t in enumerate(types)}
        self.procs = dict(sorted(self.procs.items(), key=lambda kv: (order[kv[1].instance.type], kv[1].instance.index)))
        return actions

    # -- internals
    def _spawn(self, proc: Proc, now: float, fresh: bool = False) -> list[Action]:
        proc.state, proc.due, proc.paused = State.STARTING, None, False
        return [Spawn(proc.instance, fresh)]

    def _stopped_by_us(self, proc: Proc, now: float) -> list[Action]:
        then, proc.after_stop, proc.due = proc.after_stop, "", None
        if then in ("restart", "relocate"):
            proc.restarts += 1
            return self._spawn(proc, now, fresh=then == "relocate")
        proc.state = State.EXITED
        if then == "remove":
            del self.procs[proc.name]
        return []

    def _exited_by_itself(self, proc: Proc, returncode: int, now: float) -> list[Action]:
        policy = self.policy(proc.instance.type)
        proc.state, proc.due = State.EXITED, None
        if policy == "never":
            return self.shutdown(exit_code(returncode), now)
        if policy == "on-failure" and returncode == 0:
            return [Say(f"{proc.name} exited cleanly; not restarting it (restart policy on-failure)")] \
                + self._maybe_end(now)
        uptime = now - (proc.started if proc.started is not None else now)
        if uptime >= self.backoff.reset_after:
            proc.failures = 0
        proc.failures += 1
        proc.restarts += 1
        delay = self.backoff.delay(proc.failures)
        proc.state, proc.due = State.BACKOFF, now + delay
        if proc.failures >= self.backoff.loop_after:
            text = (f"{proc.name} is crash-looping: it exited {proc.failures} times in a row within "
                    f"{self.backoff.reset_after:g}s of starting (last: {describe_exit(returncode)}); "
                    f"next try in {delay:.1f}s")
        else:
            text = f"{proc.name} exited with {describe_exit(returncode)}; restarting in {delay:.1f}s"
        return [Say(text)]

    def _maybe_end(self, now: float) -> list[Action]:
        if self.ending is None and all(p.state is State.EXITED for p in self.procs.values()):
            return self.shutdown(0, now, "nothing left to supervise")
        return []

    def _maybe_finish(self) -> list[Action]:
        if self.ending is not None and not self.live():
            return [Finish(self.ending)]
        return []

    def _kill_all(self, why: str) -> list[Action]:
        self.killed = True
        actions: list[Action] = []
        for proc in self.live():
            actions.append(Say(f"sending SIGKILL to {proc.name} (pid {proc.pid}) ({why})"))
            actions.append(Kill(proc.name, proc.pid, signal.SIGKILL))  # type: ignore[arg-type]
        actions.append(Sweep(signal.SIGKILL))
        return actions
