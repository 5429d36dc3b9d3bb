"""Rolling restarts, a part the Machine owns: a surge instance first, then each old instance
in turn, each waiting for the one before to be ready, then the surge removed. Driven by
the Machine's own events (ready, exit, timer), so the watch service only asks for one.
Pure; it changes the formation through the Machine's public transitions (scale, restart)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procrun.project.plan import type_of
from procrun.supervise.states import Action, Say

if TYPE_CHECKING:
    from procrun.supervise.machine import Machine

READY_TIMEOUT = 60.0  # a surge not ready by then: the type restarts in place


class Rollout:
    """A rolling restart in progress: one type, its surge, the old instances still to go."""

    def __init__(self, type: str, count: int, surge: str, waiting: list[str], deadline: float,
                 source: str = "watch") -> None:
        self.type = type
        self.count = count  # the formation to return to
        self.surge = surge
        self.waiting = waiting  # old instances still to restart, in order
        self.current = ""  # the one restarting now
        self.old_pid: int | None = None
        self.deadline = deadline
        self.source = source


class Rollouts:
    """The rolling restarts under way, one per type at most."""

    def __init__(self) -> None:
        self._by_type: dict[str, Rollout] = {}

    def begin(self, machine: Machine, type_name: str, names: list[str], now: float,
              source: str = "watch") -> list[Action]:
        """Restart ``names`` (instances of one type) without the type ever running dry."""
        count = machine.formation().get(type_name, len(names))
        actions = machine.scale(type_name, count + 1, now)
        surge = max(machine.of_type(type_name), key=lambda p: p.instance.index).name
        self._by_type[type_name] = Rollout(type_name, count, surge, list(names), now + READY_TIMEOUT, source)
        return [Say(f"rolling restart of {type_name}: {surge} first, then {', '.join(names)} one by one", source),
                *actions]

    def active(self, type_name: str) -> bool:
        return type_name in self._by_type

    def on_ready(self, machine: Machine, name: str, now: float) -> list[Action]:
        """An instance became ready: the surge (start restarting the old ones) or the one restarting."""
        rollout = self._by_type.get(type_of(name))
        if rollout is None or name not in (rollout.surge, rollout.current):
            return []
        return self._next(machine, rollout, now)

    def on_failure(self, machine: Machine, name: str, now: float) -> list[Action]:
        """The surge exited before it was ready: restart in place."""
        rollout = self._by_type.get(type_of(name))
        if rollout is None or name != rollout.surge or rollout.current:
            return []
        return self._back(machine, rollout, now)

    def tick(self, machine: Machine, now: float) -> list[Action]:
        actions: list[Action] = []
        for rollout in list(self._by_type.values()):
            if now < rollout.deadline:
                continue
            if not rollout.current:  # the surge did not get ready in time
                actions += self._back(machine, rollout, now)
            else:  # an old instance that does not get ready again: go on with the next
                actions += self._next(machine, rollout, now)
        return actions

    def deadlines(self) -> list[float]:
        return [r.deadline for r in self._by_type.values()]

    def _next(self, machine: Machine, rollout: Rollout, now: float) -> list[Action]:
        while rollout.waiting:
            name = rollout.waiting.pop(0)
            proc = machine.get(name)
            if proc is None or machine.ending is not None:
                continue
            rollout.current, rollout.old_pid = name, proc.pid
            rollout.deadline = now + READY_TIMEOUT
            return machine.restart_procs([name], now)
        del self._by_type[rollout.type]
        return machine.scale(rollout.type, rollout.count, now)

    def _back(self, machine: Machine, rollout: Rollout, now: float) -> list[Action]:
        del self._by_type[rollout.type]
        names = [n for n in rollout.waiting if machine.get(n) is not None]
        actions: list[Action] = [Say(f"{rollout.surge} did not become ready; restarting {rollout.type} in place",
                                     rollout.source)]
        actions += machine.scale(rollout.type, rollout.count, now)
        return actions + machine.restart_procs(names, now)
