"""Deadlines for every client connection with one timer, armed for the earliest only.

The hot path sets a deadline as an attribute (no timer per request); the sweep asks each
connection to act on what passed and to name its next deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

NEVER = float("inf")


class Sweeper:
    """One loop timer at the earliest deadline of ``clients()``; each client's ``check(now)``
    acts on a passed deadline and returns its next one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clients: Callable[[], Iterable[object]]) -> None:
        self.loop = loop
        self.clients = clients
        self._timer: asyncio.TimerHandle | None = None
        self._at = NEVER

    def expect(self, deadline: float) -> None:
        """Someone has a deadline then (time.monotonic()): sweep no later."""
        if deadline < self._at:
            if self._timer is not None:
                self._timer.cancel()
            self._at = deadline
            self._timer = self.loop.call_at(self.loop.time() + max(0.0, deadline - time.monotonic()) + 0.001,
                                            self._sweep)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self) -> None:
        self._timer, self._at = None, NEVER
        now = time.monotonic()
        soonest = min((client.check(now) for client in list(self.clients())), default=NEVER)  # type: ignore[attr-defined]
        if soonest != NEVER:
            self.expect(soonest)
