"""Ready probes: an instance with a port is ready once the port accepts a TCP connection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from procrun.supervise.order import BOOT_TIMEOUT
from procrun.project.plan import ROUTED_TYPE, type_of

if TYPE_CHECKING:
    import asyncio

    from procrun.project.settings import Settings

    from procrun.diagnose.findings import Findings


class Checks(NamedTuple):
    """What a session checks its instances for: readiness by port (these types), a boot
    timeout per type (default 60 s), and the findings procrun.yaml accepts (``allow``)."""

    probe_types: frozenset[str] = frozenset({"web"})
    boot_timeouts: Mapping[str, float] = MappingProxyType({})
    allow: tuple[str, ...] = ()

    def boot_timeout(self, name: str) -> float:
        return self.boot_timeouts.get(type_of(name), BOOT_TIMEOUT)

    @classmethod
    def of(cls, settings: Settings, types: tuple[str, ...]) -> Checks:
        """A session's checks: its web type is ready when its port answers, other types once
        spawned, unless procrun.yaml says otherwise (``types.T.ready``)."""
        per_type = settings.type_settings
        probed = {t for t in types if (per_type[t].ready if t in per_type and per_type[t].ready
                                       else "port" if t == ROUTED_TYPE else "spawn") == "port"}
        return cls(frozenset(probed), {t: c.boot_timeout for t, c in per_type.items() if c.boot_timeout},
                   settings.allow)


LOOK_AFTER = 1.0  # seconds without an answer on $PORT before looking at what the instance listens on
LOOK_EVERY = 2.0


class Probes:
    """One task per starting instance; each backs off to 0.5 s between tries and ends with the process.

    An instance that does not answer on $PORT but listens elsewhere is named (port binding);
    one that binds nothing within its boot timeout gets a warning instead of staying
    'starting' silently."""

    def __init__(self, loop: asyncio.AbstractEventLoop, alive: Callable[[int], bool],
                 ready: Callable[[str, int], None], say: Callable[[str, str], None],
                 findings: Callable[[], Findings], checks: Checks, listening: Callable[[int], set[int]]) -> None:
        self.loop = loop
        self.alive = alive  # is this pid still the instance's process?
        self.ready = ready
        self.say, self.findings, self.checks, self.listening = say, findings, checks, listening
        self.tasks: set[asyncio.Task[None]] = set()
        self._held: list[tuple[str, int, int, str | None]] | None = []  # until release(): the services are up

    def release(self) -> None:
        """Probe from now on: the session's services are up, so the router listens before any
        web instance is said to be ready."""
        held, self._held = self._held or [], None
        for name, pid, port, taken in held:
            self._launch(name, pid, port, taken is not None)

    def start(self, name: str, pid: int, port: int, taken: str | None = None) -> None:
        """Probe ``port``; ``taken``: who already listened on it when the instance was spawned."""
        if taken is not None:  # said at once: the instance will most likely fail to bind it
            self.say(f"{name}: port {port} is in use by {taken}; pick another base port with -p", "warning")
        if self._held is not None:
            self._held.append((name, pid, port, taken))
        else:
            self._launch(name, pid, port, taken is not None)

    def _launch(self, name: str, pid: int, port: int, taken: bool) -> None:
        task = self.loop.create_task(self._probe(name, pid, port, taken))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _probe(self, name: str, pid: int, port: int, taken: bool) -> None:
        """Ready once the port accepts a connection; a port another process held at spawn counts
        only once the instance itself listens on it (its answer was the other process's)."""
        import asyncio  # here, not at the top: a session launches its processes before it imports asyncio

        delay, started, looked, told, warned = 0.01, self.loop.time(), 0.0, False, False
        timeout = self.checks.boot_timeout(name)
        while self.alive(pid):
            if (port in self.listening(pid)) if taken else await accepts(port):
                self.ready(name, pid)
                return
            waited = self.loop.time() - started
            if not told and waited >= LOOK_AFTER and (not looked or waited - looked >= LOOK_EVERY):
                looked = waited
                ports = self.listening(pid)
                if ports and port not in ports:
                    self.elsewhere(name, port, ports)
                    told = True
            if not warned and not told and waited >= timeout:
                self.silent(name, timeout)
                warned = True
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 2)

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


    def elsewhere(self, name: str, port: int, ports: set[int]) -> None:
        self.findings().ports(name, port, ports)

    def silent(self, name: str, timeout: float) -> None:
        self.say(f"{name} has bound no port {timeout:g}s after it started; it stays 'starting' until it "
                 "listens on $PORT (boot_timeout in procrun.yaml types.TYPE)", "warning")


async def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    import asyncio

    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
