"""How each process type copes with a backing-service fault, from what procrun saw. Pure.

*crashed*: an instance that had a connection through the proxy when the fault began exited
within the grace after it. *recovered*: it opened a new connection through the proxy after
the fault ended (and, for a type behind the router, answered requests again). *hung*: after a
blackhole or an outage, it neither reconnected nor exited while it still held its old
connection or (behind the router) had a request it did not answer. Anything else (an idle
worker that connects lazily) is not judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from procrun.project.plan import type_of


class Fault(NamedTuple):
    var: str
    action: str
    start: float  # monotonic
    end: float
    users: tuple[tuple[str, int], ...]  # (instance, pid) with a connection open when it began


class Seen(NamedTuple):
    """What the session saw of one user instance by the time of judging."""

    pid: int | None  # its pid now
    crashed_at: float | None  # when it last exited by itself, not asked to (monotonic)
    reconnected: bool  # opened a connection through the proxy after the fault ended
    holding: bool  # its connection from before the fault is still open
    stuck: bool  # behind the router: a request to it is still unanswered
    served: bool  # behind the router: it answered a request after the fault ended
    routed: bool  # its type is behind the router


class Verdict(NamedTuple):
    instance: str
    type: str
    var: str
    action: str
    verdict: str
    after: float | None  # crashed: seconds from the fault to the restart that followed


def judge(fault: Fault, seen: Mapping[str, Seen]) -> list[Verdict]:
    out = []
    for instance, pid in fault.users:
        now = seen.get(instance)
        if now is None:
            continue
        type_name = type_of(instance)
        verdict, after = _one(fault, pid, now)
        if verdict:
            out.append(Verdict(instance, type_name, fault.var, fault.action, verdict, after))
    return out


def _one(fault: Fault, pid: int, now: Seen) -> tuple[str, float | None]:
    if now.crashed_at is not None and now.crashed_at >= fault.start:  # the exit, not the restart after backoff
        return "crashed", max(0.0, now.crashed_at - fault.start)
    if now.pid != pid:  # procrun restarted it (chaos, restart, scale): not the fault's doing
        return "", None
    if now.reconnected and (not now.routed or now.served):
        return "recovered", None
    if fault.action in ("blackhole", "outage") and (now.holding or now.stuck):
        return "hung", None
    return "", None


def summary(verdicts: Iterable[Verdict]) -> list[dict[str, object]]:
    """Per (type, service, fault): the verdict most often reached, with how often and the evidence."""
    groups: dict[tuple[str, str, str], list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault((v.type, v.var, v.action), []).append(v)
    out = []
    for (type_name, var, action), items in sorted(groups.items()):
        counts: dict[str, int] = {}
        for v in items:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        verdict = max(counts, key=lambda k: (counts[k], k == "crashed"))
        times = sorted(v.after for v in items if v.verdict == "crashed" and v.after is not None)
        when = f" {times[len(times) // 2]:.1f} s after" if verdict == "crashed" and times else " after"
        out.append({"type": type_name, "var": var, "action": action, "verdict": verdict, "counts": counts,
                    "line": f"{type_name} {verdict}{when} {action} of {var}; {counts[verdict]} of {len(items)} "
                            f"time{'s' if len(items) > 1 else ''}"})
    return out
