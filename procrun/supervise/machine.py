"""The supervisor's pure core: events in, actions out, no I/O.

``Machine`` owns the table of processes. Every input (spawned, exited, timer,
signal, control command) is a method call with the current time; every effect
it wants (spawn, signal a group, print, finish) comes back as action data
that the effect layer in ``session.py`` carries out. Time is passed in, so
the whole lifecycle is testable with a fake clock. Callers ask the Machine
through its queries; they never reach into its table.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Mapping

from procrun.project.plan import Instance
from procrun.project.ranges import MAX_INSTANCES
from procrun.supervise.formation import FormationMixin
from procrun.supervise.order import OrderMixin
from procrun.supervise.rollout import Rollout, RolloutMixin
from procrun.supervise.shutdown import ShutdownMixin
from procrun.supervise.states import (  # noqa: F401  (the vocabulary, re-exported for callers)
    DISRUPTABLE_STATES, POLICIES, Action, AfterStop, Backoff, Finish, Kill, Policy, Proc, Say, Spawn,
    State, Sweep, describe_exit, exit_code)


class Machine(FormationMixin, ShutdownMixin, RolloutMixin, OrderMixin):
    """The supervisor's decisions, pure: inputs in, actions out (see the module docstring). Per type:
    policy, stop signal (default SIGTERM), grace (default ``timeout``), the types it starts after and
    how long start order waits for them; ``counts``: the formation asked for, zeros included."""

    def __init__(self, instances: Iterable[Instance], timeout: float = 5.0, restart: str = "never",
                 type_restart: Mapping[str, str] | None = None, backoff: Backoff = Backoff(),
                 make_instance: Callable[[str, int], Instance] | None = None, counts: Mapping[str, int] | None = None,
                 stop_signals: Mapping[str, int] | None = None, graces: Mapping[str, float] | None = None,
                 cap: int = MAX_INSTANCES, after: Mapping[str, tuple[str, ...]] | None = None,
                 boot_timeouts: Mapping[str, float] | None = None) -> None:
        self.timeout, self.restart, self.backoff, self.cap = timeout, restart, backoff, cap
        self.make_instance, self.counts = make_instance, counts
        self.type_restart, self.stop_signals, self.graces = type_restart or {}, stop_signals or {}, graces or {}
        self.after, self.boot_timeouts = after or {}, boot_timeouts or {}
        self._procs: dict[str, Proc] = {i.name: Proc(i) for i in instances}
        self._wanted: dict[str, int] = dict(self.counts or {})
        for proc in self._procs.values():
            self._wanted.setdefault(proc.type, 0)
        if self.counts is None:
            for proc in self._procs.values():
                self._wanted[proc.type] += 1
        self._by_pid: dict[int, str] = {}
        self._rollouts: dict[str, Rollout] = {}  # type -> its rolling restart under way
        self._held: dict[str, tuple[tuple[str, ...], float, float]] = {}  # start order: types still waiting
        self.ending: int | None = None
        self.deadline: float | None = None
        self.killed = False

    # -- queries
    def get(self, name: str) -> Proc | None:
        return self._procs.get(name)

    def all(self) -> list[Proc]:
        """Every instance, in Procfile order then index."""
        return list(self._procs.values())

    def names(self) -> list[str]:
        return list(self._procs)

    def of_type(self, type_name: str) -> list[Proc]:
        return [p for p in self._procs.values() if p.type == type_name]

    def ready(self, type_name: str) -> list[Proc]:
        """Running (ready: its port answered), not paused, with a port."""
        return [p for p in self.of_type(type_name)
                if p.state is State.RUNNING and p.pid is not None and p.instance.port is not None]

    def disruptable(self) -> list[Proc]:
        return [p for p in self._procs.values() if p.pid is not None and p.state in DISRUPTABLE_STATES]

    def name_of(self, pid: int) -> str | None:
        return self._by_pid.get(pid)

    def policy(self, type_name: str) -> Policy:
        return Policy(self.type_restart.get(type_name, self.restart))

    def stop_signal(self, proc: Proc) -> int:
        return self.stop_signals.get(proc.type, signal.SIGTERM)

    def grace(self, proc: Proc) -> float:
        return self.graces.get(proc.type, self.timeout)

    def live(self) -> list[Proc]:
        return [p for p in self._procs.values() if p.pid is not None]

    def next_deadline(self) -> float | None:
        times = [p.due for p in self._procs.values() if p.due is not None] + self._roll_deadlines() \
            + self._order_deadlines()
        if self.deadline is not None and not self.killed:
            times.append(self.deadline)
        return min(times, default=None)

    # -- inputs
    def start(self, now: float) -> list[Action]:
        actions = self._hold(now)
        for proc in self._procs.values():
            if proc.type in self._held:
                proc.state = State.WAITING
            else:
                actions += self._spawn(proc, now)
        return actions + self._maybe_end(now)

    def spawned(self, name: str, pid: int, now: float, probing: bool = False) -> list[Action]:
        """A process exists. With ``probing`` it stays STARTING until ``ready()``."""
        proc = self._procs[name]
        proc.pid, proc.started = pid, now
        proc.state = State.STARTING if probing else State.RUNNING
        proc.ready_after = None if probing else 0.0
        self._by_pid[pid] = name
        actions: list[Action] = [Say(f"{name} started (pid={pid})")]
        if self.ending is not None:  # spawned while shutting down: stop it at once
            proc.state = State.STOPPING
            actions.append(Kill(name, pid, signal.SIGKILL if self.killed else signal.SIGTERM))
        return actions + ([] if probing or not self._held else self._release(now))

    def redefine(self, name: str, instance: Instance) -> None:
        """Use a new definition (command, environment) from the next start on."""
        self._procs[name].instance = instance

    def became_ready(self, name: str, pid: int, now: float) -> list[Action]:
        """The instance's port answered: it is ready."""
        proc = self._procs.get(name)
        if proc is None or proc.pid != pid or proc.state not in (State.STARTING, State.PAUSED):
            return []
        if proc.state is State.PAUSED:
            proc.resume_to = State.RUNNING
        else:
            proc.state = State.RUNNING
        proc.ready_after = now - (proc.started or now)
        return [Say(f"{name} is ready on port {proc.instance.port} after {proc.ready_after:.2f}s"),
                *self._roll_on_ready(name, now), *self._release(now)]

    def spawn_failed(self, name: str, error: str, now: float) -> list[Action]:
        proc = self._procs[name]
        proc.started = now
        return [Say(f"{name} could not start: {error}")] + self._exited_by_itself(proc, 127, now)

    def exited(self, pid: int, returncode: int, now: float) -> list[Action]:
        name = self._by_pid.pop(pid, None)
        if name is None:
            return []
        proc = self._procs[name]
        proc.pid, proc.last_rc = None, returncode
        if proc.stop_requested is not None:
            proc.stop_after, proc.stop_requested = now - proc.stop_requested, None
        actions: list[Action] = [Say(f"{name} stopped (rc={returncode})")]
        if self.ending is not None:
            proc.state, proc.due = State.EXITED, None
            return actions + self._maybe_finish()
        if proc.state is State.STOPPING:
            return actions + self._stopped_by_us(proc, now)
        return actions + self._exited_by_itself(proc, returncode, now) + self._roll_on_failure(name, now)

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.deadline is not None and not self.killed and now >= self.deadline:
            actions += self._kill_all("timeout")
        for proc in list(self._procs.values()):
            if proc.due is not None and proc.due <= now:
                proc.due = None
                actions += self._due(proc, now)
        return actions + self._roll_tick(now) + self._order_tick(now)

    def _due(self, proc: Proc, now: float) -> list[Action]:
        if proc.state is State.PAUSED and proc.pid is not None:
            proc.state = proc.resume_to
            return [Say(f"resume {proc.name} (SIGCONT)", "chaos"), Kill(proc.name, proc.pid, signal.SIGCONT)]
        if proc.state is State.BACKOFF:
            return self._spawn(proc, now)
        if proc.state is State.STOPPING and proc.pid is not None:
            return [Say(f"{proc.name} did not stop within {self.grace(proc):g}s; sending SIGKILL"),
                    Kill(proc.name, proc.pid, signal.SIGKILL)]
        return []

    # -- internals
    def _spawn(self, proc: Proc, now: float, fresh: bool = False) -> list[Action]:
        proc.state, proc.due = State.STARTING, None
        return [Spawn(proc.instance, fresh)]

    def _continued(self, proc: Proc, paused: bool) -> list[Action]:
        """A stopped (SIGSTOP) process must be continued to act on the signal just sent."""
        return [Kill(proc.name, proc.pid, signal.SIGCONT)] if paused and proc.pid is not None else []

    def _stopped_by_us(self, proc: Proc, now: float) -> list[Action]:
        then, proc.after_stop, proc.due = proc.after_stop, AfterStop.NOTHING, None
        if then in (AfterStop.RESTART, AfterStop.RELOCATE):
            proc.restarts += 1
            return self._spawn(proc, now, fresh=then is AfterStop.RELOCATE)
        proc.state = State.EXITED
        if then is AfterStop.REMOVE:
            del self._procs[proc.name]
        return []

    def _exited_by_itself(self, proc: Proc, returncode: int, now: float) -> list[Action]:
        policy = self.policy(proc.type)
        proc.state, proc.due = State.EXITED, None
        if policy is Policy.NEVER:
            return self.shutdown(exit_code(returncode), now)
        if policy is Policy.ON_FAILURE and returncode == 0:
            return [Say(f"{proc.name} exited cleanly; not restarting it (restart policy on-failure)")] \
                + self._maybe_end(now)
        uptime = now - (proc.started if proc.started is not None else now)
        if uptime >= self.backoff.reset_after:
            proc.failures = 0
        proc.failures += 1
        proc.restarts += 1
        delay = self.backoff.delay(proc.failures)
        proc.state, proc.due = State.BACKOFF, now + delay
        return [Say(self._crash_text(proc, returncode, delay))]

    def _crash_text(self, proc: Proc, returncode: int, delay: float) -> str:
        if proc.failures >= self.backoff.loop_after:
            return (f"{proc.name} is crash-looping: it exited {proc.failures} times in a row within "
                    f"{self.backoff.reset_after:g}s of starting (last: {describe_exit(returncode)}); "
                    f"next try in {delay:.1f}s")
        return f"{proc.name} exited with {describe_exit(returncode)}; restarting in {delay:.1f}s"
