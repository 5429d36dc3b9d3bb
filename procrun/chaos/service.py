"""Chaos as a session service: draws the schedule, asks the Machine to disrupt."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from procrun.chaos.schedule import DESCRIPTIONS, Candidate, ChaosConfig, Disruption, Schedule
from procrun.diagnose.report import Event
from procrun.supervise.session import Service

if TYPE_CHECKING:
    from procrun.supervise.shared import Shared
    from procrun.supervise.session import Session


class ChaosService(Service):
    def __init__(self, session: Session, shared: Shared, config: ChaosConfig, enabled: bool = True) -> None:
        super().__init__(session)
        self.shared = shared
        self.config = config
        self.schedule = Schedule(config, random.Random(config.seed))
        self.enabled = enabled
        self._timer: asyncio.TimerHandle | None = None
        self.next_at: float | None = None

    async def start(self) -> None:
        self.session.report.seed = self.config.seed
        if self.enabled:
            self._announce()
            self._arm()

    async def close(self) -> None:
        self._cancel()

    def _announce(self) -> None:
        self.session.report.scheduled = True
        c = self.config
        self.session.say(f"seed {self.config.seed} (replay with --chaos-seed {self.config.seed}); a disruption every "
                         f"{c.interval:g}s on average; actions: {', '.join(c.actions)}; "
                         f"types: {', '.join(c.types) or 'all'}", "chaos")

    def set_enabled(self, on: bool) -> None:
        if on == self.enabled:
            return
        self.enabled = on
        if on:
            self._announce()
            self._arm()
        else:
            self._cancel()
            self.session.say("off", "chaos")

    def status(self) -> dict[str, object]:
        now = self.session.clock()
        return {"enabled": self.enabled, "seed": self.config.seed, "interval": self.config.interval,
                "actions": list(self.config.actions), "types": list(self.config.types),
                "next_in": None if self.next_at is None else max(0.0, self.next_at - now),
                "disruptions": len(self.session.report.events)}

    def candidates(self) -> list[Candidate]:
        now = self.session.clock()
        return [Candidate(p.name, p.instance.type, now - (p.started or now) - (p.ready_after or 0.0),
                          p.ready_after is not None)
                for p in self.session.machine.disruptable() if p.name not in self.shared.taps]  # not attached

    def now(self, victim: str | None = None, action: str | None = None) -> Disruption | None:
        """Disrupt at once (``procrun chaos now``); returns what was done."""
        disruption = self.schedule.pick(self.candidates(), action, victim)
        if disruption is not None:
            self._carry_out(disruption)
        return disruption

    def _arm(self) -> None:
        delay = self.schedule.next_delay()
        self.next_at = self.session.clock() + delay
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self.next_at = None, None

    def _fire(self) -> None:
        self._timer = None
        if self.session.machine.ending is not None:
            return
        disruption = self.schedule.pick(self.candidates())
        if disruption is not None:
            self._carry_out(disruption)
        self._arm()

    def _carry_out(self, d: Disruption) -> None:
        extra = f" for {d.pause_for:.1f}s" if d.action == "pause" else ""
        self.session.say(f"{d.action} {d.victim}{extra} ({DESCRIPTIONS[d.action]})", "chaos")
        self.session.report.add_event(Event(round(time.time(), 3), d.victim, d.action,
                                            round(d.pause_for, 3) if d.action == "pause" else 0.0))
        self.session.apply(self.session.machine.disrupt(d.victim, d.action, self.session.clock(), d.pause_for))
