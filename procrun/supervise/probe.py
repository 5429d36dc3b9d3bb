"""Ready probes: an instance with a port is ready once the port accepts a TCP connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Probes:
    """One task per starting instance; each backs off to 0.5 s between tries and ends with the process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, alive: Callable[[int], bool],
                 ready: Callable[[str, int], None]) -> None:
        self.loop = loop
        self.alive = alive  # is this pid still the instance's process?
        self.ready = ready
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, name: str, pid: int, port: int) -> None:
        task = self.loop.create_task(self._probe(name, pid, port))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _probe(self, name: str, pid: int, port: int) -> None:
        delay = 0.01
        while self.alive(pid):
            if await accepts(port):
                self.ready(name, pid)
                return
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 2)

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


async def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
