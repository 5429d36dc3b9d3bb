"""The supervisor's vocabulary, pure: process states and their groups, restart policies,
what a stop leads to, the actions the Machine returns, and one process's record."""

from __future__ import annotations

import signal
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, NamedTuple

from procrun.project.plan import Instance

if TYPE_CHECKING:  # the Machine's mixins are typed as the Machine they are mixed into
    from procrun.supervise.machine import Machine as MachineBase
else:
    MachineBase = object


class State(StrEnum):
    WAITING = "waiting"  # its first start waits for the types it starts after
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"  # SIGSTOP by chaos; resumes to RUNNING
    STOPPING = "stopping"
    BACKOFF = "backoff"
    EXITED = "exited"


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
                 "ready_after", "stop_after", "stop_requested", "resume_to")

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

    def __repr__(self) -> str:
        return f"Proc({self.name}, {self.state.value}, pid={self.pid})"

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def type(self) -> str:
        return self.instance.type
