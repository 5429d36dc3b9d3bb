"""Start order (procrun.yaml ``types.T.after``, and the release phase), a part the Machine owns. Pure.

The session's first start of a type waits for the conditions it names, one per dependency:
``ready`` (every instance of the type is ready: its port answers, a probe passed, or it was
spawned, as configured), at most the longest boot timeout among them, then it starts anyway
saying which never got ready; ``completed`` (every instance of a one-shot type exited 0),
as long as it takes. A dependency that fails stops the start (the Machine decides when).
Only the first start waits: restarts, scale-ups and chaos never do, which is how an app
learns to cope without order. ``StartOrder`` decides which types wait and when each may go;
the Machine spawns them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from procrun.project.plan import RELEASE_TYPE
from procrun.supervise.states import Say

BOOT_TIMEOUT = 60.0  # a type's default boot timeout: start order's wait, and probe.py's warning
READY, COMPLETED = "ready", "completed"

def first_start(waits: Mapping[str, Conditions], types: Iterable[str], release: bool) -> dict[str, Conditions]:
    """What each type's first start waits for: its ``after:`` conditions (``waits``), then, with
    a release phase, the release's completion (procrun start and every export order it so)."""
    out = {t: tuple(w) for t, w in waits.items() if t != RELEASE_TYPE}
    if release:
        out = {t: (*out.get(t, ()), (RELEASE_TYPE, COMPLETED)) for t in types}
    return out


Released = list[tuple[str, Say | None]]  # (type to start now, or "" for none; the line that says why, once)
Met = Callable[[str, str], bool]  # (type, condition): is it met now?
Conditions = tuple[tuple[str, str], ...]  # (type, condition) per dependency


class StartOrder:
    """The types whose first start waits, what each waits for, and until when."""

    def __init__(self, after: Mapping[str, Iterable[str | tuple[str, str]]] | None = None,
                 boot_timeouts: Mapping[str, float] | None = None, quiet: Iterable[str] = ()) -> None:
        self.after = {t: tuple((d, READY) if isinstance(d, str) else d for d in deps)  # a bare name: ready
                      for t, deps in (after or {}).items()}
        self.boot_timeouts = boot_timeouts or {}
        self.quiet = frozenset(quiet)  # dependencies not said per type (release: said once)
        self._held: dict[str, tuple[Conditions, float | None, float]] = {}  # type -> (waits for, give up at, wait)

    def hold(self, started: Iterable[str], now: float) -> list[Say]:
        """At the first start: the types that wait, and a line for each dependency not started here."""
        started = set(started)
        lines: list[Say] = []
        for type_name, deps in self.after.items():
            if type_name not in started:
                continue
            for dep, _ in deps:
                if dep not in started:
                    lines.append(Say(f"{type_name} starts after {dep}, which this session does not start; "
                                     f"not waiting for it"))
            waits = tuple((d, c) for d, c in deps if d in started)
            if not waits:
                continue
            ready = [d for d, c in waits if c == READY]
            wait = max((self.boot_timeouts.get(d, BOOT_TIMEOUT) for d in ready), default=0.0)
            self._held[type_name] = (waits, now + wait if ready else None, wait)
            said = [(d, c) for d, c in waits if d not in self.quiet]
            if said:
                lines.append(Say(f"{type_name} waits for {_conditions(said)} before it starts"))
        for dep in sorted(self.quiet & started):
            held = self.waiting_on(dep)
            if held:
                lines.append(Say(f"{dep} runs first; {', '.join(held)} start{'s' * (len(held) == 1)} once it completes"))
        return lines

    def holds(self, type_name: str) -> bool:
        return type_name in self._held

    def waiting_for(self, type_name: str) -> tuple[str, ...]:
        held = self._held.get(type_name)
        return tuple(d for d, _ in held[0]) if held else ()

    def waiting_on(self, dep: str) -> list[str]:
        """The held types that wait for ``dep``."""
        return [t for t, (deps, _, _) in self._held.items() if any(d == dep for d, _ in deps)]

    def released(self, met: Met) -> Released:
        """After an instance became ready or completed: each held type whose conditions all are met."""
        why: dict[str, list[str]] = {}  # one line for the types released for the same reason
        for type_name, (deps, _, _) in list(self._held.items()):
            if all(met(d, c) for d, c in deps):
                del self._held[type_name]
                said = tuple((d, c) for d, c in deps if d not in self.quiet) or deps
                why.setdefault(_conditions(said, done=True), []).append(type_name)
        return [(t, Say(f"{reason}; starting {', '.join(types)}") if i == 0 else None)  # type: ignore[misc]
                for reason, types in why.items() for i, t in enumerate(types)]

    def expired(self, now: float, met: Met) -> Released:
        """Held types whose wait for readiness is over: they start anyway, unless they also wait
        for a one-shot to complete (that wait has no end but its failure)."""
        out: Released = []
        for type_name, (deps, give_up, wait) in list(self._held.items()):
            if give_up is None or now < give_up:
                continue
            late = [d for d, c in deps if c == READY and not met(d, c)]
            pending = tuple((d, c) for d, c in deps if c == COMPLETED and not met(d, c))
            if pending:
                self._held[type_name] = (pending, None, wait)
                out.append(("", Say(f"{', '.join(late)} not ready after {wait:g}s; {type_name} still waits for "
                                    f"{_conditions(pending)}")))
                continue
            del self._held[type_name]
            out.append((type_name, Say(f"{', '.join(late)} not ready after {wait:g}s; starting {type_name} anyway")))
        return out

    def deadlines(self) -> list[float]:
        return [give_up for _, give_up, _ in self._held.values() if give_up is not None]

    def any_held(self) -> bool:
        return bool(self._held)


def _conditions(deps: Conditions, done: bool = False) -> str:
    """``db to be ready and migrate to complete``, or once met ``db ready, migrate completed``."""
    words = {READY: "ready", COMPLETED: "completed"} if done else {READY: "to be ready", COMPLETED: "to complete"}
    groups: dict[str, list[str]] = {}
    for dep, condition in deps:
        groups.setdefault(condition, []).append(dep)
    return " and ".join(f"{', '.join(names)} {words[c]}" for c, names in groups.items())
