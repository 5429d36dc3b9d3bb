"""``.env`` parsing compatible with honcho: text in, a dict out.

Each line is read with POSIX shlex like honcho does (so quoting, comments and
its token joining behave the same), ``\\n``/``\\t`` escapes are expanded, and
an ``export`` prefix is accepted as foreman does. Unlike honcho, a line that is
not an assignment is an error with its line number instead of being dropped.
"""

from __future__ import annotations

import re
import shlex

from procrun.errors import ConfigError
from procrun.project.procfile import lines

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse(text: str, path: str = ".env") -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(lines(text), start=1):
        try:
            tokens = list(shlex.shlex(line, posix=True))
        except ValueError as exc:
            raise ConfigError(path, number, f"cannot read value ({exc})", "close the quote") from None
        if not tokens:
            continue  # blank or comment
        if tokens[0] == "export" and len(tokens) > 1 and tokens[1] != "=":
            tokens = tokens[1:]
        if len(tokens) < 2 or tokens[1] != "=":
            raise ConfigError(path, number, f"expected KEY=value, got {line.strip()!r}",
                              "write NAME=value, or start the line with # to comment it out")
        name = tokens[0]
        if not _KEY.fullmatch(name):
            raise ConfigError(path, number, f"{name!r} is not a valid variable name",
                              "use letters, digits and '_', not starting with a digit")
        value = "".join(tokens[2:])
        if "\0" in value:
            raise ConfigError(path, number, f"the value of {name} contains a NUL byte", "remove it")
        values[name] = value.replace(r"\n", "\n").replace(r"\t", "\t")
    return values
