"""The supervisor's vocabulary, pure: process states and their groups, restart policies,
what a stop leads to, the actions the Machine returns, and one process's record."""

from __future__ import annotations

import signal
from enum import Enum, StrEnum
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from procrun.project.plan import Instance


class State(StrEnum):
    WAITING = "waiting"  # its first start waits for the types it starts after
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"  # SIGSTOP by chaos; resumes to RUNNING
    STOPPING = "stopping"
    BACKOFF = "backoff"
    EXITED = "exited"
    STOPPED = "stopped"  # exited because it was asked to (procrun stop); scale starts it again
    COMPLETED = "completed"  # a one-shot that exited 0 (release, migrate): done, not a failure


DONE_STATES = frozenset({State.EXITED, State.STOPPED, State.COMPLETED})  # not running, nothing due


DISRUPTABLE_STATES = frozenset({State.STARTING, State.RUNNING})  # chaos may pick it


class Policy(StrEnum):
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


POLICIES = tuple(p.value for p in Policy)


class AfterStop(Enum):
    """What a stop requested by procrun (restart, chaos, scale, watch) leads to."""

    NOTHING = "nothing"
    RESTART = "restart"
    RELOCATE = "relocate"  # start again in a fresh directory
    REMOVE = "remove"  # scaled away
    FAILED = "failed"  # its health probe failed: the exit is a failure, under its restart policy


# --- actions -----------------------------------------------------------------

class Spawn(NamedTuple):
    """Start an instance."""

    instance: Instance
    fresh: bool = False  # in a fresh working directory (relocate)


class Kill(NamedTuple):
    """Signal an instance's process group."""

    name: str
    pid: int
    sig: int


class Sweep(NamedTuple):
    """Signal descendants outside every tracked group (daemonised grandchildren)."""

    sig: int


class Say(NamedTuple):
    """A line for the output."""

    text: str
    source: str = "system"


class Finish(NamedTuple):
    """The session is over, with this exit code."""

    code: int


Action = Spawn | Kill | Sweep | Say | Finish


# --- policy ------------------------------------------------------------------

class Backoff(NamedTuple):
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


class Rules(NamedTuple):
    """How the Machine treats each type: restart policy, stop signal (default SIGTERM), grace
    (default ``timeout``), the restart backoff, and the one-shot types (exit 0 is completed)."""

    timeout: float = 5.0
    restart: str = "never"
    type_restart: Mapping[str, str] = MappingProxyType({})
    stop_signals: Mapping[str, int] = MappingProxyType({})
    graces: Mapping[str, float] = MappingProxyType({})
    backoff: Backoff = Backoff()
    oneshots: frozenset[str] = frozenset()

    def policy(self, type_name: str) -> Policy:
        return Policy(self.type_restart.get(type_name, self.restart))

    def stop_signal(self, proc: Proc) -> int:
        return self.stop_signals.get(proc.type, signal.SIGTERM)

    def grace(self, proc: Proc) -> float:
        return self.graces.get(proc.type, self.timeout)


def continued(proc: Proc, paused: bool) -> list[Action]:
    """A stopped (SIGSTOP) process must be continued to act on the signal just sent."""
    return [Kill(proc.name, proc.pid, signal.SIGCONT)] if paused and proc.pid is not None else []


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

class Proc:
    """One instance's record: its state, pid, restarts and timings."""

    __slots__ = ("instance", "state", "pid", "started", "restarts", "failures", "due", "after_stop", "last_rc",
                 "ready_after", "stop_after", "stop_requested", "resume_to", "crashed_at")

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.state = State.EXITED
        self.pid: int | None = None
        self.started: float | None = None
        self.restarts = 0
        self.failures = 0
        self.due: float | None = None  # a restart, a resume or an escalation is due then
        self.after_stop = AfterStop.NOTHING
        self.last_rc: int | None = None
        self.ready_after: float | None = None  # seconds from spawn to ready (disposability)
        self.stop_after: float | None = None  # seconds from stop request to exit
        self.stop_requested: float | None = None
        self.resume_to = State.RUNNING  # the state a paused process returns to
        self.crashed_at: float | None = None  # when it last exited by itself (not asked to)

    def __repr__(self) -> str:
        return f"Proc({self.name}, {self.state.value}, pid={self.pid})"

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def type(self) -> str:
        return self.instance.type

    # -- its own transitions; the Machine decides which, for the session
    def stop(self, sig: int, grace: float | None, now: float, then: AfterStop | None = None) -> list[Action]:
        """Ask it to stop: the signal now (continued if it was paused), SIGKILL due after ``grace``
        (None: the signal is SIGKILL); ``then``: what its exit leads to (chaos' kill: a restart)."""
        paused = self.state is State.PAUSED
        self.state, self.due, self.stop_requested = State.STOPPING, None if grace is None else now + grace, now
        if then is not None:
            self.after_stop = then
        return [Kill(self.name, self.pid, sig), *continued(self, paused)]  # type: ignore[arg-type]

    def timer(self, grace: float) -> list[Action]:
        """Its timer fired: a pause ends, or a stop that took longer than its grace is killed."""
        if self.pid is None:
            return []
        if self.state is State.PAUSED:
            self.state = self.resume_to
            return [Say(f"resume {self.name} (SIGCONT)", "chaos"), Kill(self.name, self.pid, signal.SIGCONT)]
        if self.state is State.STOPPING:
            return [Say(f"{self.name} did not stop within {grace:g}s; sending SIGKILL"),
                    Kill(self.name, self.pid, signal.SIGKILL)]
        return []

    def pause(self, until: float) -> list[Action]:
        self.resume_to, self.state, self.due = self.state, State.PAUSED, until
        return [Kill(self.name, self.pid, signal.SIGSTOP)]  # type: ignore[arg-type]

    def crashed(self, backoff: Backoff, returncode: int, now: float) -> Say:
        """It exited by itself under a policy that restarts: count it (a process that stayed up
        long enough starts over), back off until its next try, and say so, plainly when it is a
        crash loop."""
        if now - (self.started if self.started is not None else now) >= backoff.reset_after:
            self.failures = 0
        self.failures += 1
        self.restarts += 1
        delay = backoff.delay(self.failures)
        self.state, self.due = State.BACKOFF, now + delay
        if self.failures >= backoff.loop_after:
            return Say(f"{self.name} is crash-looping: it exited {self.failures} times in a row within "
                       f"{backoff.reset_after:g}s of starting (last: {describe_exit(returncode)}); "
                       f"next try in {delay:.1f}s")
        return Say(f"{self.name} exited with {describe_exit(returncode)}; restarting in {delay:.1f}s")

