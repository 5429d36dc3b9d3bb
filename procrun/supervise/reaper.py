"""The end of a session: daemonised descendants outside every tracked process group
(reparented to us, the subreaper) are signalled until none is left, SIGKILL once the
Machine's deadline has passed; then the session's exit code is delivered."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.supervise import process
from procrun.supervise.machine import Machine

if TYPE_CHECKING:
    import asyncio


class Stragglers:
    def __init__(self, loop: asyncio.AbstractEventLoop, machine: Machine, groups: Callable[[], set[int]],
                 keeper: Callable[[], int], clock: Callable[[], float],
                 descendants: Callable[[int], list[tuple[int, int]]] = process.descendants) -> None:
        self.loop, self.machine, self.clock = loop, machine, clock
        self.groups = groups  # the process groups of the children we track
        self.keeper = keeper  # the guardian's pid: never a straggler
        self.descendants = descendants
        self._finishing = False

    def find(self) -> list[int]:
        """Descendants outside every instance's group, neither the guardian nor one of procrun's
        own helpers (a copy, a diff: started in procrun's own group, which no instance's
        descendant can join, as instances start sessions of their own)."""
        groups, keeper, own = self.groups(), self.keeper(), os.getpgrp()
        return [pid for pid, pgrp in self.descendants(os.getpid()) if pgrp not in groups and pgrp != own
                and pid != keeper]

    def signal(self, sig: int) -> None:
        process.kill_all(self.find(), sig)

    def finish(self, done: Callable[[], None]) -> None:
        """Call ``done`` once no straggler is left (bounded by the Machine's deadline)."""
        if not self._finishing:
            self._finishing = True
            self.loop.call_soon(self._step, done)

    def _step(self, done: Callable[[], None]) -> None:
        stragglers = self.find()
        if not stragglers:
            done()
            return
        process.kill_all(stragglers, signal.SIGKILL if self.machine.overdue(self.clock()) else signal.SIGTERM)
        self.loop.call_later(0.02, self._step, done)
