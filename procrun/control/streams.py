"""The streaming requests of the control socket (protocol.STREAMS): ``attach`` and ``subscribe``."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from procrun.control.protocol import Request, encode

if TYPE_CHECKING:
    from procrun.control.commands import Controller
    from procrun.supervise.relay import Relay
    from procrun.supervise.session import Session
    from procrun.supervise.shared import Shared

LINES_PUSHED = 100  # lines of each instance a subscriber gets at most a push (the rest: counted as dropped)
TAP_BUFFER = 1 << 20  # bytes an attached client may leave unread before its output is dropped
PUSH_EVERY = 1.0  # a subscriber hears at least this often (uptime, CPU)
LOOK_EVERY = 0.25  # how soon a change reaches a subscriber


async def attach(session: Session, shared: Shared, request: Request, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    """The client's bytes to the instance's terminal, its output to the client, until either closes.
    The instance and the session go on; a restarted instance keeps the client."""
    name = request.targets[0]
    dropped = 0

    def out(data: bytes) -> None:
        """Bounded: a client that stops reading loses output (said once it reads again), never
        grows procrun (the main stream and the journal keep every line)."""
        nonlocal dropped
        if writer.is_closing():
            return
        if writer.transport.get_write_buffer_size() > TAP_BUFFER:
            dropped += len(data)
            return
        if dropped:
            writer.write(f"\r\n[procrun: {dropped:,} bytes not shown here: this terminal did not read them; "
                         "procrun logs has them]\r\n".encode())
            dropped = 0
        writer.write(data)

    shared.taps[name] = out  # the instance's relay (this one's and a restarted one's) sends it its output
    relay = _tty_relay(session, name)
    if relay is not None and request.size is not None:  # the instance sees the attaching terminal's size
        from procrun.supervise.process import terminal_size

        terminal_size(relay.fd, *request.size)
    try:
        while data := await reader.read(4096):
            await _type(session, name, data)
    except (ConnectionError, OSError):
        pass
    finally:
        shared.taps.pop(name, None)


def _tty_relay(session: Session, name: str) -> Relay | None:
    """The relay of an instance on a pseudo-terminal (attach types into it)."""
    from procrun.supervise.lifecycle import OnLoop

    proc = session.machine.get(name)
    child = session.children.get(proc.pid) if proc is not None and proc.pid is not None else None
    if child is None or not child.tty or not isinstance(session.stage, OnLoop):
        return None
    return session.stage.relays.relays.get(child.fd)


async def _type(session: Session, name: str, data: bytes) -> None:
    """Write to the terminal the instance has now (none between a crash and its restart)."""
    relay = _tty_relay(session, name)
    view = memoryview(data)
    for _ in range(200):  # a program not reading its terminal: give up on the keystrokes after 2 s
        if relay is None or not view:
            return
        try:
            view = view[os.write(relay.fd, view):]
        except BlockingIOError:
            await asyncio.sleep(0.01)
        except OSError:
            return


async def subscribe(controller: Controller, request: Request, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
    """The session's state as a JSON line when it changes (looked at every LOOK_EVERY seconds,
    while someone subscribes) and at least every PUSH_EVERY seconds, with the lines relayed
    since the last push (top's logs pane): the last LINES_PUSHED of each instance, the rest
    counted as dropped, so a chatty app never grows procrun nor crowds the others out of the
    view, and a subscriber adds no wakeup of its own."""
    from collections import deque

    session = controller.session
    seen, sent = -1, 0.0
    pending: dict[str, deque[str]] = {}
    lost = [0]

    def watch(name: str, lines: list[bytes]) -> None:
        kept = pending.setdefault(name, deque(maxlen=LINES_PUSHED))
        lost[0] += max(0, len(kept) + len(lines) - LINES_PUSHED)
        kept.extend(line.decode(errors="replace") for line in lines[-LINES_PUSHED:])

    controller.shared.watchers.append(watch)
    closed = asyncio.ensure_future(reader.read())  # the client closing ends the stream
    try:
        while not closed.done():
            now = time.monotonic()
            if session.generation != seen or now - sent >= PUSH_EVERY or pending:
                seen, sent = session.generation, now
                state = controller.state()
                if pending:
                    state |= {"lines": [(name, line) for name, kept in pending.items() for line in kept],
                              "dropped": lost[0]}
                    pending.clear()
                    lost[0] = 0
                writer.write(encode(state))
                await writer.drain()
            await asyncio.wait([closed], timeout=LOOK_EVERY)
    except (ConnectionError, OSError):
        pass
    finally:
        controller.shared.watchers.remove(watch)
        closed.cancel()
