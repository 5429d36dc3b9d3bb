"""The chaos schedule: Poisson arrivals of (delay, victim, action). Pure.

All randomness comes from one seeded ``random.Random`` drawn in a fixed order
(delay when scheduling; victim, action and pause length when firing), so a
seed replays the same sequence for the same formation.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from procrun.chaos.types import chaos_types

if TYPE_CHECKING:
    from procrun.project.files import App

ACTIONS = ("restart", "kill", "relocate", "pause")
DESCRIPTIONS = {
    "restart": "SIGTERM, grace, SIGKILL, start again",
    "kill": "SIGKILL, as a crash or the OOM killer would",
    "relocate": "stop, then start in a fresh working directory with a fresh TMPDIR",
    "pause": "SIGSTOP, then SIGCONT",
}


@dataclass(frozen=True)
class ChaosConfig:
    """What chaos may do, to which types, how often, from which seed."""

    interval: float = 30.0
    actions: tuple[str, ...] = ACTIONS
    types: tuple[str, ...] = ()  # empty: every type
    min_uptime: float = 0.0
    seed: int | None = None
    pause_min: float = 0.5
    pause_max: float = 5.0


@dataclass(frozen=True)
class Candidate:
    """An instance chaos may disrupt now, and how long it has been up since it became ready.
    The schedule waits for readiness (killing a boot tests the boot, not statelessness, and a
    seeded demo relocated web.3 twice in one second); `chaos now NAME` does not."""

    name: str
    type: str
    uptime: float
    ready: bool = True


@dataclass(frozen=True)
class Disruption:
    """One drawn disruption: the victim, the action and, for a pause, how long."""

    victim: str
    action: str
    pause_for: float = 0.0


class Schedule:
    def __init__(self, config: ChaosConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng

    def next_delay(self) -> float:
        """Seconds until the next disruption (exponential: Poisson arrivals)."""
        return self.rng.expovariate(1.0 / self.config.interval)

    def eligible(self, candidates: Iterable[Candidate]) -> list[Candidate]:
        types = self.config.types
        return sorted((c for c in candidates if (not types or c.type in types)
                       and c.ready and c.uptime >= self.config.min_uptime), key=lambda c: c.name)

    def pick(self, candidates: Iterable[Candidate], action: str | None = None,
             victim: str | None = None) -> Disruption | None:
        """Choose a victim among eligible running instances, and an action."""
        pool: Sequence[Candidate] = self.eligible(candidates)
        if victim is not None:
            pool = [c for c in candidates if c.name == victim]
        if not pool:
            return None
        chosen = pool[self.rng.randrange(len(pool))]
        act = action or self.config.actions[self.rng.randrange(len(self.config.actions))]
        pause = self.rng.uniform(self.config.pause_min, self.config.pause_max) if act == "pause" else 0.0
        return Disruption(chosen.name, act, round(pause, 3))


def chaos_config(app: App) -> ChaosConfig:
    """The chaos settings, checked against the Procfile (types that opt out in procrun.yaml left out)."""
    s = app.settings
    return ChaosConfig(s.chaos_interval, s.chaos_actions, chaos_types(s, app.procfile), s.chaos_min_uptime, s.chaos_seed)
