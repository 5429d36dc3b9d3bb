"""What an instance's exit by itself leads to, a part of the Machine's decisions. Pure.

Its restart policy decides (never ends the session, on-failure and always restart with a
backoff); a one-shot's exit 0 completes it and may release the types that start after it;
a dependency that fails while types wait for it (out of retries, or with no restart) stops
the start with its exit code; the release phase that fails stops the first start, and later
(a deploy under --watch) leaves the running formation as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from procrun.project.plan import RELEASE_TYPE
from procrun.supervise.states import Action, Policy, Proc, Say, State, describe_exit, exit_code

if TYPE_CHECKING:
    from procrun.supervise.machine import Machine


def by_itself(machine: Machine, proc: Proc, returncode: int, now: float) -> list[Action]:
    """``proc`` exited without procrun asking (or its health probe failed): what follows."""
    rules = machine.rules
    policy, oneshot = rules.policy(proc.type), proc.type in rules.oneshots
    proc.due = None
    if oneshot and returncode == 0:
        proc.state, proc.failures = State.COMPLETED, 0
        return [Say(f"{proc.name} completed")] + machine.release_held(now) + machine.maybe_end(now)
    proc.state, proc.crashed_at = State.EXITED, now
    if proc.type == RELEASE_TYPE:
        return _release_failed(machine, proc, returncode, now)
    if policy is Policy.NEVER:
        return _blocked(machine, proc, returncode, now) or machine.shutdown(exit_code(returncode), now)
    if policy is Policy.ON_FAILURE and returncode == 0:
        return [Say(f"{proc.name} exited cleanly; not restarting it (restart policy on-failure)")] \
            + machine.maybe_end(now)
    line = proc.crashed(rules.backoff, returncode, now)
    if proc.failures >= rules.backoff.loop_after:
        return _blocked(machine, proc, returncode, now) or [line]
    return [line]


def _blocked(machine: Machine, proc: Proc, returncode: int, now: float) -> list[Action]:
    """A dependency failed while types wait for it: the start stops, with its exit code."""
    waiting = machine.order.waiting_on(proc.type)
    if not waiting:
        return []
    tries = f", {proc.failures} times in a row" if proc.failures > 1 else ""
    return machine.shutdown(exit_code(returncode) or 1, now, f"{proc.name} failed ({describe_exit(returncode)}{tries}); "
                            f"{', '.join(waiting)} wait{'s' * (len(waiting) == 1)} for it; stopping")


def _release_failed(machine: Machine, proc: Proc, returncode: int, now: float) -> list[Action]:
    """Before the first start the formation never starts; later the running one is kept."""
    if machine.order.any_held():
        return machine.shutdown(exit_code(returncode) or 1, now,
                                f"{proc.name} failed ({describe_exit(returncode)}); the formation does not start")
    return [Say(f"{proc.name} failed ({describe_exit(returncode)}); the running formation is kept")] \
        + machine.maybe_end(now)
