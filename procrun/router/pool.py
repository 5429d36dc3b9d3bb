"""Keep-alive connections to the instances, one pool per instance generation.

A pool belongs to one ``Target`` (name, port, pid): when an instance stops, pauses or is
relocated its target leaves the ready set and its pool is closed, so a connection is never
reused across a restart (chaos and non-stickiness stay what they are).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from procrun.router.proxy import Backend

POOL_SIZE = 64  # idle connections kept per instance


class Target(NamedTuple):
    """One ready instance as the router reaches it; its pid makes each generation distinct."""

    name: str
    port: int
    pid: int


class Pools:
    """Idle backend connections by target, at most ``size`` each."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._idle: dict[Target, list[Backend]] = {}

    def keep_only(self, ready: Iterable[Target]) -> None:
        """Connections to an instance that stopped, paused or moved are never reused."""
        ready = set(ready)
        for target in [t for t in self._idle if t not in ready]:
            for backend in self._idle.pop(target):
                backend.close()

    def take(self, target: Target, recent: float | None) -> Backend | None:
        """An idle connection to ``target``; with ``recent``, only one used that recently."""
        pool = self._idle.get(target)
        now = time.monotonic()
        while pool:
            backend = pool.pop()
            if backend.usable and (recent is None or now - backend.last_used <= recent):
                return backend
            backend.close()
        return None

    def give_back(self, backend: Backend, ready: bool) -> None:
        """A connection whose exchange ended cleanly; kept if its instance is still ``ready``."""
        pool = self._idle.get(backend.target)
        if pool is None and ready:
            pool = self._idle[backend.target] = []
        if pool is not None and backend.usable and len(pool) < self.size:
            pool.append(backend)
        else:
            backend.close()

    def forget(self, backend: Backend) -> None:
        """A connection that closed while idle."""
        pool = self._idle.get(backend.target)
        if pool and backend in pool:
            pool.remove(backend)

    def close(self) -> None:
        for pool in self._idle.values():
            for backend in pool:
                backend.close()
        self._idle.clear()
