"""Start order (procrun.yaml ``types.T.after``) as Machine transitions. Pure; mixed into ``Machine``.

The session's first start of a type waits until every instance of the types it names is
ready (its port answers, or it was spawned, as configured), at most the longest boot timeout
among them; then it starts anyway, saying which never got ready. Only the first start waits:
restarts, scale-ups and chaos never do, which is how an app learns to cope without order.
"""

from __future__ import annotations

from collections.abc import Mapping

from procrun.supervise.states import MachineBase, Action, Proc, Say, State

BOOT_TIMEOUT = 60.0  # a type's default boot timeout: start order's wait, and probe.py's warning


class OrderMixin(MachineBase):
    _procs: dict[str, Proc]
    _held: dict[str, tuple[tuple[str, ...], float, float]]  # type -> (the types it waits for, give up at, wait)
    after: Mapping[str, tuple[str, ...]]
    boot_timeouts: Mapping[str, float]

    def _hold(self, now: float) -> list[Action]:
        """At the first start: the types that wait, and a line for each dependency not started here."""
        started = {p.type for p in self._procs.values()}
        actions: list[Action] = []
        for type_name, deps in self.after.items():
            if type_name not in started:
                continue
            for dep in deps:
                if dep not in started:
                    actions.append(Say(f"{type_name} starts after {dep}, which this session does not start; "
                                       f"not waiting for it"))
            waits = tuple(d for d in deps if d in started)
            if waits:
                wait = max(self.boot_timeouts.get(d, BOOT_TIMEOUT) for d in waits)
                self._held[type_name] = (waits, now + wait, wait)
                actions.append(Say(f"{type_name} waits for {', '.join(waits)} to be ready before it starts"))
        return actions

    def waiting_for(self, type_name: str) -> tuple[str, ...]:
        held = self._held.get(type_name)
        return held[0] if held else ()

    def _type_ready(self, type_name: str) -> bool:
        return all(p.pid is not None and p.ready_after is not None and p.state in (State.RUNNING, State.PAUSED)
                   for p in self.of_type(type_name))

    def _release(self, now: float) -> list[Action]:
        """After an instance became ready: start each held type whose dependencies all are."""
        actions: list[Action] = []
        for type_name, (deps, _, _) in list(self._held.items()):
            if all(self._type_ready(d) for d in deps):
                del self._held[type_name]
                actions += [Say(f"{', '.join(deps)} ready; starting {type_name}")] + self._start_held(type_name, now)
        return actions

    def _order_tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for type_name, (deps, give_up, wait) in list(self._held.items()):
            if now >= give_up:
                del self._held[type_name]
                late = [d for d in deps if not self._type_ready(d)]
                actions += [Say(f"{', '.join(late)} not ready after {wait:g}s; "
                                f"starting {type_name} anyway")] + self._start_held(type_name, now)
        return actions

    def _order_deadlines(self) -> list[float]:
        return [give_up for _, give_up, _ in self._held.values()]

    def _start_held(self, type_name: str, now: float) -> list[Action]:
        if self.ending is not None:
            return []
        actions: list[Action] = []
        for proc in self._procs.values():
            if proc.type == type_name and proc.state is State.WAITING:
                actions += self._spawn(proc, now)
        return actions
