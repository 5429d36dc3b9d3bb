"""How each process type copes with a backing-service fault, from what procrun saw. Pure.

The verdicts and what they mean are ``faults.VERDICTS``. Faults that break connections or stop
data (reset, outage, blackhole, timeout, limit_data) are judged *crashed*, *recovered* or
*hung*; faults that slow or cut data (latency, bandwidth, slicer, slow_close) *crashed*,
*degraded* or *coped*. An instance that had no connection through the proxy when the fault
began, or showed nothing to judge by (an idle worker that connects lazily), is not judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from procrun.backing.faults import KINDS, VERDICTS
from procrun.project.plan import type_of

BREAKS = ("reset", "outage", "blackhole", "timeout", "limit_data")  # connections broken or data stopped


class Fault(NamedTuple):
    var: str
    action: str
    start: float  # monotonic
    end: float
    users: tuple[tuple[str, int], ...]  # (instance, pid) with a connection open when it began
    wall: float = 0.0  # when it began, wall clock (the router's records are by wall-clock second)


class Seen(NamedTuple):
    """What the session saw of one user instance by the time of judging."""

    pid: int | None  # its pid now
    crashed_at: float | None  # when it last exited by itself, not asked to (monotonic)
    reconnected: bool  # opened a connection through the proxy after the fault ended
    holding: bool  # its connection from before the fault is still open
    stuck: bool  # behind the router: a request to it is still unanswered
    served: bool  # behind the router: it answered a request after the fault ended
    routed: bool  # its type is behind the router
    churned: int = 0  # connections it opened while the fault lasted
    during: bool | None = None  # behind the router: its requests failed or slowed meanwhile (None: none seen)


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
    if fault.action in BREAKS:
        if now.reconnected and (not now.routed or now.served):
            return "recovered", None
        if KINDS[fault.action].stops_data and (now.holding or now.stuck):
            return "hung", None
        return "", None
    if now.routed:
        return ("", None) if now.during is None else ("degraded" if now.during else "coped", None)
    if now.churned >= 2:  # it gave up on connections that were only slow, more than once
        return "degraded", None
    return ("coped", None) if now.holding or now.reconnected else ("", None)


def worse(records: Iterable[Mapping[str, object]], start: float, end: float) -> bool | None:
    """The router's per-second records of one instance: were requests failing or slower (p50
    over twice the mean before, and 20 ms more) from ``start`` to ``end`` (wall clock)? None
    when none were answered meanwhile."""
    before, during = [], []
    for r in records:
        second = int(r.get("sec", 0))  # type: ignore[call-overload]
        (during if int(start) <= second <= int(end) else before if second < int(start) else []).append(r)
    if not during:
        return None
    failed = sum(int(r.get("5xx", 0)) + int(r.get("503", 0)) for r in during)  # type: ignore[call-overload]
    if failed:
        return True
    usual = [float(r.get("p50", 0)) for r in before[-10:]]  # type: ignore[arg-type]
    slow = max(float(r.get("p50", 0)) for r in during)  # type: ignore[arg-type]
    return bool(usual) and slow > 2 * (sum(usual) / len(usual)) + 20


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
                    "means": VERDICTS[verdict],
                    "line": f"{type_name} {verdict}{when} {action} of {var}; {counts[verdict]} of {len(items)} "
                            f"time{'s' if len(items) > 1 else ''}"})
    return out
