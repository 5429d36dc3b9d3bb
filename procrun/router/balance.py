"""Which ready instance gets a request: never sticky, by design. Pure; randomness is passed in.

``spread`` (the default): a request from a known client (its session cookies or
Authorization; without them, its keep-alive connection) goes to the ready instance that has served this client *on this path* least
recently, so every path a client uses reaches every ready instance in turn, whatever the
order of its requests (one global round-robin counter pins paths: a client alternating two
paths over two instances sends each path to one instance forever). A new (client, path)
pair, and every anonymous request, gets a seeded random choice. ``random``: a seeded random
choice always. ``round-robin``: one counter over the ready instances, as before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

MODES = ("spread", "random", "round-robin")
T = TypeVar("T")


class Balancer:
    """Orders the ready instances for one request: the first choice, then the retries.
    Instances are anything with a ``name``; clients are opaque keys ("" for anonymous)."""

    def __init__(self, mode: str = "spread", rng: random.Random | None = None, limit: int = 10_000) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown balance mode {mode!r}; choose from {', '.join(MODES)}")
        self.mode = mode
        self.rng = rng or random.Random(0)
        self.limit = limit  # (client, path) pairs remembered, the oldest forgotten first
        self._served: dict[tuple[object, str], dict[str, int]] = {}  # pair -> instance -> when it last served
        self._tick = 0
        self._counter = 0

    def order(self, ready: Sequence[T], client: object, path: str) -> list[T]:
        if len(ready) <= 1:
            return list(ready)
        if self.mode == "round-robin":
            self._counter += 1
            start = self._counter % len(ready)
            return [*ready[start:], *ready[:start]]
        first = self._pick(ready, client, path) if self.mode == "spread" and client else self.rng.randrange(len(ready))
        return [ready[first], *ready[first + 1:], *ready[:first]]

    def _pick(self, ready: Sequence[T], client: object, path: str) -> int:
        """The index of the instance that served this pair least recently (never: first), ties at random."""
        pair = (client, path)
        served = self._served.pop(pair, None)
        if served is None:
            served = {}
            while len(self._served) >= self.limit:
                del self._served[next(iter(self._served))]
        self._served[pair] = served  # most recently used last
        names = [getattr(t, "name") for t in ready]
        oldest = min(served.get(name, -1) for name in names)
        candidates = [i for i, name in enumerate(names) if served.get(name, -1) == oldest]
        chosen = candidates[0] if len(candidates) == 1 else candidates[self.rng.randrange(len(candidates))]
        self._tick += 1
        served[names[chosen]] = self._tick
        if len(served) > 4 * len(names):  # instances long gone (restarted ones keep their names)
            for name in [n for n in served if n not in names]:
                del served[name]
        return chosen
