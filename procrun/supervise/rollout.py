"""Rolling restarts as Machine transitions: a surge instance first, then each old instance
in turn, each waiting for the one before to be ready, then the surge removed. Driven by
the Machine's own events (ready, exit, timer), so the watch service only asks for one.
Pure; mixed into ``Machine``, which owns the table."""

from __future__ import annotations

from procrun.supervise.states import MachineBase, Action, Proc, Say


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
        self.done: list[str] = []


class RolloutMixin(MachineBase):
    _procs: dict[str, Proc]
    _rollouts: dict[str, Rollout]

    def roll(self, type_name: str, names: list[str], now: float, source: str = "watch") -> list[Action]:
        """Restart ``names`` (instances of one type) without the type ever running dry."""
        count = self.formation().get(type_name, len(names))
        actions = self.scale(type_name, count + 1, now)
        surge = max(self.of_type(type_name), key=lambda p: p.instance.index).name
        self._rollouts[type_name] = Rollout(type_name, count, surge, list(names), deadline=now + READY_TIMEOUT,
                                            source=source)
        return [Say(f"rolling restart of {type_name}: {surge} first, then {', '.join(names)} one by one", source),
                *actions]

    def rolling(self, type_name: str) -> bool:
        return type_name in self._rollouts

    def _roll_on_ready(self, name: str, now: float) -> list[Action]:
        """An instance became ready: the surge (start restarting the old ones) or the one restarting."""
        rollout = self._rollouts.get(name.rsplit(".", 1)[0])
        if rollout is None or name not in (rollout.surge, rollout.current):
            return []
        return self._roll_next(rollout, now)

    def _roll_next(self, rollout: Rollout, now: float) -> list[Action]:
        while rollout.waiting:
            name = rollout.waiting.pop(0)
            proc = self._procs.get(name)
            if proc is None or self.ending is not None:
                continue
            rollout.current, rollout.old_pid = name, proc.pid
            rollout.deadline = now + READY_TIMEOUT
            return self.restart_procs([name], now)
        del self._rollouts[rollout.type]
        return self.scale(rollout.type, rollout.count, now)

    def _roll_on_failure(self, name: str, now: float) -> list[Action]:
        """The surge exited before it was ready, or did not get ready in time: restart in place."""
        rollout = self._rollouts.get(name.rsplit(".", 1)[0])
        if rollout is None or name != rollout.surge or rollout.current:
            return []
        return self._roll_back(rollout, now)

    def _roll_back(self, rollout: Rollout, now: float) -> list[Action]:
        del self._rollouts[rollout.type]
        names = [n for n in rollout.waiting if n in self._procs]
        actions: list[Action] = [Say(f"{rollout.surge} did not become ready; restarting {rollout.type} in place",
                                     rollout.source)]
        actions += self.scale(rollout.type, rollout.count, now)
        return actions + self.restart_procs(names, now)

    def _roll_tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for rollout in list(self._rollouts.values()):
            if now < rollout.deadline:
                continue
            if not rollout.current:
                actions += self._roll_back(rollout, now)
            else:  # an old instance that does not get ready again: go on with the next
                actions += self._roll_next(rollout, now)
        return actions

    def _roll_deadlines(self) -> list[float]:
        return [r.deadline for r in self._rollouts.values()]
