"""One try of a probe, each kind: ``None`` when it passed, else what failed, in words.

port: the instance's port accepts a TCP connection. http: GET on it answers a status the probe
accepts. exec: a command exits 0; it runs in a process group of its own, is killed (the whole
group) at its timeout, and is reaped by the session's own reaper (``Commands.exited``), never
by a second waiter. log: a line of the instance's own output matched (``LogLines``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping

from procrun.project.probes import Probe
from procrun.supervise.states import describe_exit

_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]")  # colours and cursor moves are not part of a line


async def port(number: int, timeout: float = 1.0) -> str | None:
    """Something accepts TCP connections on 127.0.0.1:number."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", number), timeout)
    except TimeoutError:
        return f"no connection within {timeout:g}s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    writer.close()
    await writer.wait_closed()
    return None


async def http(number: int, probe: Probe) -> str | None:
    """GET ``probe.target`` on 127.0.0.1:number: its status passes (2xx/3xx, or ``status``)."""
    try:
        return await asyncio.wait_for(_get(number, probe), probe.timeout)
    except TimeoutError:
        return f"no answer within {probe.timeout:g}s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


async def _get(number: int, probe: Probe) -> str | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", number)
    try:
        writer.write(f"GET {probe.target} HTTP/1.1\r\nHost: 127.0.0.1:{number}\r\nUser-Agent: procrun-probe\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1", "replace"))
        line = await reader.readline()
    finally:
        writer.close()
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return "no HTTP answer" if not line else "an answer that is not HTTP"
    status = int(parts[1])
    return None if probe.passes(status) else f"status {status}"


class Commands:
    """exec probes' commands: each in a group of its own, killed at its timeout, reaped by the
    session (its SIGCHLD handler reaps every child and hands ours back through ``exited``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: dict[int, asyncio.Future[int]] = {}

    def exited(self, pid: int, returncode: int) -> bool:
        """A reaped child: whether it was one of ours."""
        future = self.waiting.pop(pid, None)
        if future is not None and not future.done():
            future.set_result(returncode)
        return future is not None

    async def run(self, probe: Probe, env: Mapping[str, str], cwd: str) -> str | None:
        try:
            popen = subprocess.Popen(["/bin/sh", "-c", probe.target], env=dict(env), cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        except OSError as exc:
            return f"could not run it ({exc.strerror})"
        done = self.waiting[popen.pid] = self.loop.create_future()
        try:
            code = await asyncio.wait_for(asyncio.shield(done), probe.timeout)
        except TimeoutError:
            _kill(popen.pid)
            await done  # reaped by the session
            return f"no exit within {probe.timeout:g}s"
        except asyncio.CancelledError:
            _kill(popen.pid)  # the session is ending: the group dies now, its reaper collects it
            raise
        finally:
            popen.returncode = done.result() if done.done() and not done.cancelled() else -signal.SIGKILL
        return None if code == 0 else describe_exit(code)


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LogLines:
    """log probes: the instance's own output lines, matched as the relays pass them on (one
    watcher for every log probe; none while no instance has one)."""

    def __init__(self, watchers: list[Callable[[str, list[bytes]], None]]) -> None:
        self.watchers = watchers
        self.patterns: dict[str, re.Pattern[bytes]] = {}
        self.seen: dict[str, int] = {}  # instance -> matching lines so far
        self.on_match: dict[str, Callable[[], None]] = {}

    def follow(self, name: str, pattern: str, on_match: Callable[[], None] | None = None) -> None:
        if not self.patterns:
            self.watchers.append(self._lines)
        self.patterns[name] = re.compile(pattern.encode("utf-8", "surrogateescape"))
        self.seen.setdefault(name, 0)
        if on_match is not None:
            self.on_match[name] = on_match

    def forget(self, name: str) -> None:
        self.patterns.pop(name, None)
        self.seen.pop(name, None)
        self.on_match.pop(name, None)
        if not self.patterns and self._lines in self.watchers:
            self.watchers.remove(self._lines)

    def _lines(self, name: str, lines: list[bytes]) -> None:
        pattern = self.patterns.get(name)
        if pattern is None or not any(pattern.search(_ESCAPES.sub(b"", line.rstrip(b"\r\n"))) for line in lines):
            return
        self.seen[name] += 1
        callback = self.on_match.pop(name, None)
        if callback is not None:
            callback()
