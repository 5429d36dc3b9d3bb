"""Output formatting: pure functions from (time, name, bytes) to bytes.

Child output is relayed as bytes, never decoded, so text that is not UTF-8
passes through untouched. ``LineSplitter`` keeps the partial last line of each
stream until its newline (or EOF) arrives, so every line is written whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SYSTEM = "system"
# honcho's palette, in honcho's order: cyan, yellow, green, magenta, red, blue, then bright ones.
PALETTE = ("36", "33", "32", "35", "31", "34", "36;1", "33;1", "32;1", "35;1", "31;1", "34;1")
RESET = "\033[0m"


def clock(t: float) -> str:
    """``HH:MM:SS`` of a wall-clock time, as every prefix (and ``procrun logs``) shows it."""
    return time.strftime("%H:%M:%S", time.localtime(t))


def label(stamp: str, name: str, width: int) -> str:
    """``HH:MM:SS web.1  | ``: the prefix of a line, here and in ``procrun logs``."""
    return f"{stamp} {name.ljust(width)} | "


def colour_for(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


class Style:
    """How prefixes look; terminal detection happens once, at the edge."""

    def __init__(self, colour: bool = True, prefix: bool = True, width: int = len(SYSTEM)) -> None:
        self.colour = colour
        self.prefix = prefix
        self.width = width

    def widen(self, names: list[str] | tuple[str, ...]) -> None:
        self.width = max([self.width, *map(len, names)])


class Prefixer:
    """Builds ``HH:MM:SS name | `` prefixes, caching the clock string per second."""

    def __init__(self, style: Style, clock: Callable[[], float] = time.time) -> None:
        self.style = style
        self.clock = clock
        self._second = -1
        self._stamp = ""

    def stamp(self) -> str:
        now = int(self.clock())
        if now != self._second:
            self._second = now
            self._stamp = clock(now)
        return self._stamp

    def prefix(self, name: str, colour: str | None) -> bytes:
        if not self.style.prefix:
            return b""
        text = label(self.stamp(), name, self.style.width)
        if self.style.colour and colour:
            text = f"{RESET}\033[{colour}m{text}{RESET}"
        return text.encode("utf-8", "surrogateescape")


def render(prefix: bytes, lines: list[bytes]) -> bytes:
    """Join whole lines (without their newlines) under one prefix each."""
    if not prefix:
        return b"\n".join(lines) + b"\n"
    return prefix + (b"\n" + prefix).join(lines) + b"\n"


MAX_LINE = 1024 * 1024
# Ends each piece of a line longer than MAX_LINE but the last (documented in the README).
CONTINUED = b" [procrun: line continues]"


class LineSplitter:
    """Accumulates a byte stream and hands out complete lines, in order.

    Linear in the stream whatever its shape: the partial line is a bytearray
    (amortised appends), and a line longer than ``MAX_LINE`` is handed out in
    pieces of ``MAX_LINE`` bytes, each but the last ending with ``CONTINUED``,
    so memory stays bounded.
    """

    __slots__ = ("_partial", "limit")

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._partial = bytearray()
        self.limit = limit

    def feed(self, chunk: bytes) -> list[bytes]:
        end = chunk.rfind(b"\n")
        if end < 0:
            self._partial += chunk
            return self._pieces()
        longest = len(self._partial) + end  # no line can be longer than this
        if self._partial:
            self._partial += chunk[:end]
            lines = bytes(self._partial).split(b"\n")
        else:
            lines = chunk[:end].split(b"\n")
        self._partial = bytearray(chunk[end + 1:])
        if longest > self.limit:
            lines = self._bounded(lines)
        return lines + self._pieces()

    def _pieces(self) -> list[bytes]:
        """Whole pieces of an over-long partial line (it holds no newline); a piece is cut
        only once more of the line follows it, so a line of exactly ``limit`` bytes stays whole."""
        out = []
        while len(self._partial) > self.limit:
            out.append(bytes(self._partial[:self.limit]) + CONTINUED)
            del self._partial[:self.limit]
        return out

    def _bounded(self, lines: list[bytes]) -> list[bytes]:
        out = []
        for line in lines:
            while len(line) > self.limit:
                out.append(line[:self.limit] + CONTINUED)
                line = line[self.limit:]
            out.append(line)
        return out

    def flush(self) -> list[bytes]:
        """At EOF: the last line, even without its newline."""
        rest, self._partial = bytes(self._partial), bytearray()
        return [rest] if rest else []
