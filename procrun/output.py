"""Output formatting: pure functions from (time, name, bytes) to bytes.

Child output is relayed as bytes, never decoded, so text that is not UTF-8
passes through untouched. ``LineSplitter`` keeps the partial last line of each
stream until its newline (or EOF) arrives, so every line is written whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

SYSTEM = "system"
# honcho's palette, in honcho's order: cyan, yellow, green, magenta, red, blue, then bright ones.
PALETTE = ("36", "33", "32", "35", "31", "34", "36;1", "33;1", "32;1", "35;1", "31;1", "34;1")
RESET = "\033[0m"


def colour_for(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


@dataclass
class Style:
    """How prefixes look; terminal detection happens once, at the edge."""

    colour: bool = True
    prefix: bool = True
    width: int = len(SYSTEM)

    def widen(self, names: list[str] | tuple[str, ...]) -> None:
        self.width = max([self.width, *map(len, names)])


@dataclass
class Prefixer:
    """Builds ``HH:MM:SS name | `` prefixes, caching the clock string per second."""

    style: Style
    clock: callable = time.time  # type: ignore[valid-type]
    _second: int = field(default=-1, repr=False)
    _stamp: str = field(default="", repr=False)

    def stamp(self) -> str:
        now = int(self.clock())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%H:%M:%S", time.localtime(now))
        return self._stamp

    def prefix(self, name: str, colour: str | None) -> bytes:
        if not self.style.prefix:
            return b""
        text = f"{self.stamp()} {name.ljust(self.style.width)} | "
        if self.style.colour and colour:
            text = f"{RESET}\033[{colour}m{text}{RESET}"
        return text.encode()


def render(prefix: bytes, lines: list[bytes]) -> bytes:
    """Join whole lines (without their newlines) under one prefix each."""
    if not prefix:
        return b"\n".join(lines) + b"\n"
    return prefix + (b"\n" + prefix).join(lines) + b"\n"


class LineSplitter:
    """Accumulates a byte stream and hands out complete lines, in order."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        end = chunk.rfind(b"\n")
        if end < 0:
            self._partial += chunk
            return []
        lines = (self._partial + chunk[:end]).split(b"\n") if self._partial else chunk[:end].split(b"\n")
        self._partial = chunk[end + 1:]
        return lines

    def flush(self) -> list[bytes]:
        """At EOF: the last line, even without its newline."""
        rest, self._partial = self._partial, b""
        return [rest] if rest else []
