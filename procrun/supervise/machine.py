"""The supervisor's pure core: events in, actions out, no I/O.

``Machine`` decides. Every input (spawned, exited, timer, signal, control command) is a
method call with the current time; every effect it wants (spawn, signal a group, print,
finish) comes back as action data that the effect layer in ``session.py`` carries out.
Time is passed in, so the whole lifecycle is testable with a fake clock. Its parts are
objects it owns, each with its own state: the table of processes (``table.Table``), the
per-type rules (``states.Rules``), start order (``order.StartOrder``), rolling restarts
(``rollout.Rollouts``) and the way out (``shutdown.Ending``). Callers ask the Machine
through its queries; they never reach into its parts.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Mapping

from procrun.project.plan import RELEASE_TYPE, Instance
from procrun.project.ranges import MAX_INSTANCES
from procrun.supervise import exits
from procrun.supervise.order import Released, StartOrder
from procrun.supervise.rollout import Rollouts
from procrun.supervise.shutdown import Ending
from procrun.supervise.states import (  # noqa: F401  (the vocabulary, re-exported for callers)
    DISRUPTABLE_STATES, DONE_STATES, POLICIES, Action, AfterStop, Backoff, Finish, Kill, Policy, Proc, Rules, Say, Spawn,
    State, Sweep, describe_exit, exit_code)
from procrun.supervise.table import Table


class Machine:
    """The supervisor's decisions, pure: inputs in, actions out (see the module docstring).
    ``counts``: the formation asked for, zeros included; ``make_instance`` builds the instances
    that scaling adds, at most ``cap`` of a type."""

    def __init__(self, instances: Iterable[Instance], rules: Rules = Rules(), *,
                 make_instance: Callable[[str, int], Instance] | None = None, counts: Mapping[str, int] | None = None,
                 cap: int = MAX_INSTANCES, order: StartOrder | None = None) -> None:
        self.rules, self.make_instance, self.cap = rules, make_instance, cap
        self.table = Table(instances, counts)
        self.order = order if order is not None else StartOrder()
        self.rollouts = Rollouts()
        self.end = Ending()
        # the queries callers ask, answered by the table
        self.get, self.all, self.names, self.of_type = self.table.get, self.table.all, self.table.names, self.table.of_type
        self.ready, self.disruptable, self.live = self.table.ready, self.table.disruptable, self.table.live
        self.name_of, self.formation, self.resolve = self.table.name_of, self.table.formation, self.table.resolve
        self.running = self.table.running  # the formation that runs (stopped instances not counted)
        self.forget_type, self.waiting_for, self.rolling = self.table.forget_type, self.order.waiting_for, self.rollouts.active
        self.overdue = self.end.overdue  # stragglers get SIGKILL

    @property
    def ending(self) -> int | None:
        """The exit code once the session is ending; None while it runs."""
        return self.end.code

    def next_deadline(self) -> float | None:
        times = [p.due for p in self.table.all() if p.due is not None]
        return min(times + self.rollouts.deadlines() + self.order.deadlines() + self.end.next_deadline(), default=None)

    # -- inputs: the processes
    def start(self, now: float) -> list[Action]:
        actions: list[Action] = [*self.order.hold({p.type for p in self.table.all()}, now)]
        for proc in self.table.all():
            if self.order.holds(proc.type):
                proc.state = State.WAITING
            else:
                actions += self._spawn(proc, now)
        return actions + self.maybe_end(now)

    def spawned(self, name: str, pid: int, now: float, probing: bool = False) -> list[Action]:
        """A process exists. With ``probing`` it stays STARTING until ``ready()``."""
        proc = self.table[name]
        self.table.bind(proc, pid)
        proc.started, proc.state = now, State.STARTING if probing else State.RUNNING
        proc.ready_after = None if probing else 0.0
        actions: list[Action] = [Say(f"{name} started (pid={pid})")]
        if self.ending is not None:  # spawned while shutting down: stop it at once
            proc.state = State.STOPPING
            actions.append(Kill(name, pid, signal.SIGKILL if self.end.killed else signal.SIGTERM))
        return actions + ([] if probing or not self.order.any_held() else self.release_held(now))

    def redefine(self, name: str, instance: Instance) -> None:
        """Use a new definition (command, environment) from the next start on."""
        self.table[name].instance = instance

    def became_ready(self, name: str, pid: int, now: float, how: str = "") -> list[Action]:
        """Its port answered (or ``how``: the probe that passed): it is ready."""
        proc = self.table.get(name)
        if proc is None or proc.pid != pid or proc.state not in (State.STARTING, State.PAUSED):
            return []
        if proc.state is State.PAUSED:
            proc.resume_to = State.RUNNING
        else:
            proc.state = State.RUNNING
        proc.ready_after = now - (proc.started or now)
        return [Say(f"{name} is ready {how or f'on port {proc.instance.port}'} after {proc.ready_after:.2f}s"),
                *self.rollouts.on_ready(self, name, now), *self.release_held(now)]

    def spawn_failed(self, name: str, error: str, now: float) -> list[Action]:
        proc = self.table[name]
        proc.started = now
        return [Say(f"{name} could not start: {error}")] + exits.by_itself(self, proc, 127, now)

    def exited(self, pid: int, returncode: int, now: float) -> list[Action]:
        proc = self.table.unbind(pid)
        if proc is None:
            return []
        proc.pid, proc.last_rc = None, returncode
        if proc.stop_requested is not None:
            proc.stop_after, proc.stop_requested = now - proc.stop_requested, None
        actions: list[Action] = [Say(f"{proc.name} stopped (rc={returncode})")]
        if self.ending is not None:
            proc.state, proc.due = State.EXITED, None
            return actions + self.end.finished(self.table)
        if proc.state is State.STOPPING:  # a stop procrun asked for
            then, proc.after_stop = proc.after_stop, AfterStop.NOTHING
            if then is AfterStop.FAILED:  # its health probe failed: a failure, whatever the exit code
                return actions + exits.by_itself(self, proc, returncode or 1, now)
            proc.restarts += then in (AfterStop.RESTART, AfterStop.RELOCATE)
            return actions + self._after_stop(proc, then, now)
        return actions + exits.by_itself(self, proc, returncode, now) + self.rollouts.on_failure(self, proc.name, now)

    def tick(self, now: float) -> list[Action]:
        actions = self.end.due(self.table, now)
        for proc in self.table.all():
            if proc.due is not None and proc.due <= now:
                proc.due = None
                actions += self._due(proc, now)
        return actions + self.rollouts.tick(self, now) + self.release_held(now, self.order.expired(now, self.table.met))

    # -- inputs: requests (control socket, chaos, watch, scale)
    def stop(self, names: Iterable[str], now: float, then: AfterStop = AfterStop.NOTHING) -> list[Action]:
        actions: list[Action] = []
        for name in names:
            proc = self.table[name]
            if proc.state is State.BACKOFF or (proc.pid is None and proc.state is not State.STOPPING):
                actions += self._after_stop(proc, then, now)
                continue
            if then is not AfterStop.NOTHING:
                proc.after_stop = then
            if proc.state is not State.STOPPING:
                actions += proc.stop(self.rules.stop_signal(proc), self.rules.grace(proc), now)
        return actions

    def restart_procs(self, names: Iterable[str], now: float) -> list[Action]:
        return self.stop(names, now, then=AfterStop.RESTART)

    def unhealthy(self, name: str, pid: int, now: float, why: str) -> list[Action]:
        """Its health probe failed enough times in a row: stop it; its exit counts as a failure."""
        proc = self.table.get(name)
        if proc is None or proc.pid != pid or proc.state is not State.RUNNING or self.ending is not None:
            return []
        return [Say(f"{name} is unhealthy: {why}; restarting it"),
                *proc.stop(self.rules.stop_signal(proc), self.rules.grace(proc), now, then=AfterStop.FAILED)]

    def disrupt(self, name: str, action: str, now: float, pause_for: float = 0.0) -> list[Action]:
        """A chaos action on one running instance. Never ends the session."""
        proc = self.table.get(name)
        if proc is None or proc.pid is None or proc.state not in DISRUPTABLE_STATES or proc.type == RELEASE_TYPE:
            return []
        if action in ("restart", "relocate"):
            return self.stop([name], now, then=AfterStop(action))
        if action == "kill":
            return proc.stop(signal.SIGKILL, None, now, then=AfterStop.RESTART)
        if action == "pause":
            return proc.pause(now + pause_for)
        raise ValueError(f"unknown chaos action {action!r}")

    def scale(self, type_name: str, count: int, now: float) -> list[Action]:
        """After this, ``count`` instances of the type run (stopped ones are started again).
        New instances are built and checked first, so a refused scale (ValueError) changes nothing."""
        if type_name == RELEASE_TYPE:
            raise ValueError(f"{RELEASE_TYPE} runs once before the other types; it cannot be scaled")
        added = self.table.new(type_name, count, self.make_instance, self.cap)
        mine = self.table.ask(type_name, count)
        actions = self.stop([p.name for p in reversed(mine[count:])], now, then=AfterStop.REMOVE)
        for proc in mine[:count]:
            if proc.state in DONE_STATES:  # stopped earlier (procrun stop): start it again
                actions += self._spawn(proc, now)
        self.table.add(added)
        return actions + [a for proc in added for a in self._spawn(proc, now)]

    def roll(self, type_name: str, names: list[str], now: float, source: str = "watch") -> list[Action]:
        """Restart ``names`` (instances of one type) without the type ever running dry."""
        return self.rollouts.begin(self, type_name, names, now, source)

    # -- inputs: the way out
    def shutdown(self, code: int, now: float, reason: str = "") -> list[Action]:
        """Stop everything: the stop signal now, SIGKILL at the deadline, then Finish."""
        return self.end.begin(self.table, self.rules, code, now, reason)

    def hurry(self, now: float) -> list[Action]:
        return self.end.hurry(self.table)

    # -- internals
    def _spawn(self, proc: Proc, now: float, fresh: bool = False) -> list[Action]:
        proc.state, proc.due = State.STARTING, None
        return [Spawn(proc.instance, fresh)]

    def _due(self, proc: Proc, now: float) -> list[Action]:
        """Its timer fired: start again after a backoff, or the instance's own (resume, escalate)."""
        return self._spawn(proc, now) if proc.state is State.BACKOFF else proc.timer(self.rules.grace(proc))

    def release_held(self, now: float, released: Released | None = None) -> list[Action]:
        """Held types whose conditions are met (or ``released``): each one's line, its waiting
        instances spawned (unless the session ends)."""
        actions: list[Action] = []
        for type_name, line in self.order.released(self.table.met) if released is None else released:
            waiting = [p for p in self.of_type(type_name) if p.state is State.WAITING and self.ending is None]
            actions += [*([line] if line else []), *(a for p in waiting for a in self._spawn(p, now))]
        return actions

    def _after_stop(self, proc: Proc, then: AfterStop, now: float) -> list[Action]:
        """What a stop procrun asked for leads to once the instance is not running: the one place
        that reads AfterStop, for a stop of a running instance and of one that was not (in backoff)."""
        proc.due = None
        if then in (AfterStop.RESTART, AfterStop.RELOCATE):
            return self._spawn(proc, now, fresh=then is AfterStop.RELOCATE)
        if then is AfterStop.REMOVE:
            self.table.remove(proc)
        else:
            proc.state = State.STOPPED
        return []

    def maybe_end(self, now: float) -> list[Action]:
        if self.ending is None and all(p.state in DONE_STATES for p in self.table.all()):
            return self.shutdown(0, now, "nothing left to supervise")
        return []
