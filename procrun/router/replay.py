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

from procrun.diagnose.answers import CAP, Answer, Difference, around
from procrun.diagnose.memory import login_redirect

if TYPE_CHECKING:
    from procrun.router.http import Request
    from procrun.router.pool import Target

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
    parts = head.partition(b"\r\n")[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0, False
    status = int(parts[1])
    return status, login_redirect(status, _header(head, b"location") or None)


async def send(port: int, head: bytes, on_answer: Callable[[int, bool], None]) -> None:
    """Send ``head`` to 127.0.0.1:``port``; ``on_answer`` gets the verdict's material, or nothing
    when the instance does not answer in time (no answer decides nothing)."""
    answer = await _ask(port, head)
    if answer is not None:
        status, login = answer_of(answer[0])
        if status:
            on_answer(status, login)


async def fetch(port: int, head: bytes) -> Answer | None:
    """The whole answer to ``head`` from 127.0.0.1:``port`` (router.compare): status, content type
    and a body of at most ``CAP`` bytes whose length the head states; None when the instance does
    not answer in time, or answers otherwise."""
    answer = await _ask(port, head, whole=True)
    if answer is None:
        return None
    response, body = answer
    status, _ = answer_of(response)
    ctype = _header(response, b"content-type").split(b";", 1)[0].strip().lower().decode("latin-1")
    return Answer(status, ctype, body) if status else None


async def _ask(port: int, head: bytes, whole: bool = False) -> tuple[bytes, bytes] | None:
    """The head of the answer to ``head`` (its first ``MAX_HEAD`` bytes) and, when ``whole``, its
    body, which must state its length and be at most ``CAP`` bytes (chunked: None); None when the
    instance does not answer in time."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        writer.write(head)
        response = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT))[:MAX_HEAD]
        body = b""
        if whole:
            length = _header(response, b"content-length").strip()
            if not length.isdigit() or int(length) > CAP or _header(response, b"transfer-encoding"):
                return None
            body = await asyncio.wait_for(reader.readexactly(int(length)), TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    finally:
        if writer is not None:
            writer.close()
    return response, body


def _header(head: bytes, name: bytes) -> bytes:
    """A response head's header (its last value), or b"" when it has none."""
    found = b""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            found = value
    return found


async def compare_on(request: Request, mine: Target, others: list[Target], still: Callable[[Target], bool],
                     done: Callable[[list[Difference] | None, tuple[str, ...]], None]) -> None:
    """router.compare: ``request`` twice to ``mine`` (what changes between two answers of one
    instance is noise), once to each of ``others``, then once more to ``mine``: a difference
    counts only when the other instance's answer differs from ``mine``'s before and after it (data
    another client changed meanwhile is not state kept apart). ``done`` gets what differs (each
    place once), or None when an answer is missing or an instance restarted meanwhile (its memory
    went with it)."""
    head = replay_head(request)
    names = (mine.name, *(t.name for t in others))
    a, a2 = await fetch(mine.port, head), await fetch(mine.port, head)
    theirs = [await fetch(t.port, head) for t in others]
    a3 = await fetch(mine.port, head)
    if a is None or a2 is None or a3 is None or None in theirs or not all(still(t) for t in (mine, *others)):
        done(None, names)
        return
    found: dict[str, Difference] = {}
    own = identity(mine)
    for target, b in zip(others, theirs):
        for d in around(a, a2, b, a3, own, identity(target), (mine.name, target.name)):  # type: ignore[arg-type]
            found.setdefault(d.where, d)
    done(list(found.values()), names)


def identity(target: Target) -> set[str]:
    """What names an instance in its answers: its name, port and the pids of its process group
    (a server's workers print their own)."""
    from procrun.supervise.process import descendants

    return {target.name, str(target.port), str(target.pid), *(str(pid) for pid, _ in descendants(target.pid))}
