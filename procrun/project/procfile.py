"""Procfile parsing: text in, frozen data out. Never opens files.

Stricter than honcho, which silently skips lines it cannot read: here every
line is a ``name: command``, a ``#`` comment or blank, and anything else is an
error naming the line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from procrun.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9_-]+")
_LINE = re.compile(r"^([^:\s]*)\s*:\s*(.*)$")


_BREAK = re.compile(r"\r?\n")


def lines(text: str) -> list[str]:
    """Text split where a file's lines end (\\n, \\r\\n) and nowhere else: a form feed or U+2028
    inside a line is part of it (str.splitlines would count it as a line break, and an error
    would name the wrong line)."""
    return _BREAK.split(text)


class ProcessType(NamedTuple):
    """One Procfile line: a process type, its command and where it was declared."""

    name: str
    command: str
    line: int


class Procfile(NamedTuple):
    """A parsed Procfile: its path and its process types in file order."""

    path: str
    types: tuple[ProcessType, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def get(self, name: str) -> ProcessType | None:
        for t in self.types:
            if t.name == name:
                return t
        return None


def parse(text: str, path: str = "Procfile") -> Procfile:
    """Parse Procfile text; raise ConfigError at the first bad line."""
    types: list[ProcessType] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(path, number, f"expected 'name: command', got {_show(line)}",
                              "write the process type, a colon, then its command, or start the line with # to comment it out")
        name, command = match.group(1), match.group(2).strip()
        if not NAME.fullmatch(name):
            raise ConfigError(path, number, f"process type name {name!r} is not valid",
                              "use only letters, digits, '_' and '-' before the colon")
        if not command:
            raise ConfigError(path, number, f"process type {name!r} has no command",
                              "put the command to run after the colon")
        if "\0" in command:
            raise ConfigError(path, number, f"the command of {name!r} contains a NUL byte", "remove it")
        if name in seen:
            raise ConfigError(path, number, f"process type {name!r} is already defined on line {seen[name]}",
                              "give each process type a unique name")
        seen[name] = number
        types.append(ProcessType(name, command, number))
    if not types:
        raise ConfigError(path, None, "no process types defined", "add lines like 'web: python app.py'")
    return Procfile(path, tuple(types))


def _show(line: str, limit: int = 60) -> str:
    return repr(line if len(line) <= limit else line[: limit - 1] + "…")
