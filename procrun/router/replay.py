"""A request sent once more, to one instance, outside the client's exchange: how the memory
diagnosis asks "does the instance that made this session still accept it?".

Only what the recorder allows (GET/HEAD, no body, no login/logout/token-like path) comes
here. Conditional headers are dropped (an instance must answer in full, not 304), the
request is marked ``X-Procrun-Replay: 1`` and ``Connection: close``, and it gets a short
deadline: a paused or stuck instance never holds it. Only the status and whether a
redirect points at a login page are kept; the answer's body is read and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.diagnose.memory import login_redirect

if TYPE_CHECKING:
    from procrun.router.http import Request

TIMEOUT = 2.0
CONDITIONAL = (b"if-none-match", b"if-modified-since", b"if-match", b"if-unmodified-since", b"if-range")
MAX_HEAD = 64 * 1024


def replay_head(request: Request) -> bytes:
    lines = [f"{request.method} ".encode() + request.target + b" HTTP/1.1"]
    lines += [line for line in request.passed if line.split(b":", 1)[0].strip().lower() not in CONDITIONAL]
    lines += [b"X-Procrun-Replay: 1", b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def answer_of(head: bytes) -> tuple[int, bool]:
    """(status, a redirect to a login page) from a response head; (0, False) when it is not one."""
    first, _, rest = head.partition(b"\r\n")
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0, False
    status = int(parts[1])
    location = None
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"location":
            location = value
    return status, login_redirect(status, location)


async def send(port: int, head: bytes, on_answer: Callable[[int, bool], None]) -> None:
    """Send ``head`` to 127.0.0.1:``port``; ``on_answer`` gets the verdict's material, or nothing
    when the instance does not answer in time (no answer decides nothing)."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        writer.write(head)
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return
    finally:
        if writer is not None:
            writer.close()
    status, login = answer_of(response[:MAX_HEAD])
    if status:
        on_answer(status, login)
