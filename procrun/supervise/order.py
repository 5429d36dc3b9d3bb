"""Start order (procrun.yaml ``types.T.after``), a part the Machine owns. Pure.

The session's first start of a type waits until every instance of the types it names is
ready (its port answers, or it was spawned, as configured), at most the longest boot timeout
among them; then it starts anyway, saying which never got ready. Only the first start waits:
restarts, scale-ups and chaos never do, which is how an app learns to cope without order.
``StartOrder`` decides which types wait and when each may go; the Machine spawns them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from procrun.supervise.states import Say

BOOT_TIMEOUT = 60.0  # a type's default boot timeout: start order's wait, and probe.py's warning

Released = list[tuple[str, Say]]  # (type to start now, the line that says why)


class StartOrder:
    """The types whose first start waits, what each waits for, and until when."""

    def __init__(self, after: Mapping[str, tuple[str, ...]] | None = None,
                 boot_timeouts: Mapping[str, float] | None = None) -> None:
        self.after = after or {}
        self.boot_timeouts = boot_timeouts or {}
        self._held: dict[str, tuple[tuple[str, ...], float, float]] = {}  # type -> (waits for, give up at, wait)

    def hold(self, started: Iterable[str], now: float) -> list[Say]:
        """At the first start: the types that wait, and a line for each dependency not started here."""
        started = set(started)
        lines: list[Say] = []
        for type_name, deps in self.after.items():
            if type_name not in started:
                continue
            for dep in deps:
                if dep not in started:
                    lines.append(Say(f"{type_name} starts after {dep}, which this session does not start; "
                                     f"not waiting for it"))
            waits = tuple(d for d in deps if d in started)
            if waits:
                wait = max(self.boot_timeouts.get(d, BOOT_TIMEOUT) for d in waits)
                self._held[type_name] = (waits, now + wait, wait)
                lines.append(Say(f"{type_name} waits for {', '.join(waits)} to be ready before it starts"))
        return lines

    def holds(self, type_name: str) -> bool:
        return type_name in self._held

    def waiting_for(self, type_name: str) -> tuple[str, ...]:
        held = self._held.get(type_name)
        return held[0] if held else ()

    def released(self, type_ready: Callable[[str], bool]) -> Released:
        """After an instance became ready: each held type whose dependencies all are."""
        out: Released = []
        for type_name, (deps, _, _) in list(self._held.items()):
            if all(type_ready(d) for d in deps):
                del self._held[type_name]
                out.append((type_name, Say(f"{', '.join(deps)} ready; starting {type_name}")))
        return out

    def expired(self, now: float, type_ready: Callable[[str], bool]) -> Released:
        """Held types whose wait is over: they start anyway."""
        out: Released = []
        for type_name, (deps, give_up, wait) in list(self._held.items()):
            if now >= give_up:
                del self._held[type_name]
                late = [d for d in deps if not type_ready(d)]
                out.append((type_name, Say(f"{', '.join(late)} not ready after {wait:g}s; "
                                           f"starting {type_name} anyway")))
        return out

    def deadlines(self) -> list[float]:
        return [give_up for _, give_up, _ in self._held.values()]

    def any_held(self) -> bool:
        return bool(self._held)
