"""``procrun logs``: the journal of the running or last session, as the session printed it."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator

from procrun import statedir
from procrun.errors import UsageError
from procrun.journal.read import Reader, Record, follow, meta, running, session_dir, text_of
from procrun.supervise.output import clock, label

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SINCE = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def since_seconds(text: str) -> float:
    """``--since``: 90, 30s, 10m, 2h, 1d or combined like 1h30m."""
    parts = _SINCE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise UsageError(f"logs: --since {text!r} is not a duration; write it like 30s, 10m, 2h or 1h30m")
    return sum(float(n) * _UNITS[u or "s"] for n, u in parts)


def wanted(names: Iterable[str]) -> Callable[[str], bool]:
    """NAME (web.1) or TYPE (web): which instances' lines to show; none named: every line."""
    chosen = set(names)
    if not chosen:
        return lambda name: True
    return lambda name: name in chosen or name.split(".", 1)[0] in chosen


def _known(names: list[str], instances: list[str]) -> None:
    """A name that is no instance or type of the session is an error naming those it has (an
    instance added later by scale, web.7, is known by its type)."""
    types = sorted({n.split(".", 1)[0] for n in instances})
    for name in names:
        if name.split(".", 1)[0] not in types:
            raise UsageError(f"logs: no instance or type {name!r} in this session; instances: "
                             f"{', '.join(instances) or 'none'}; types: {', '.join(types) or 'none'}")


def run(root: str, names: list[str], follow_it: bool, since: str | None, grep: str | None,
        as_json: bool, ident: str | None) -> int:
    state_dir = statedir.locate(root)
    directory = session_dir(state_dir, ident)
    try:
        pattern = re.compile(grep) if grep is not None else None
    except re.error as exc:
        raise UsageError(f"logs: --grep {grep!r} is not a regular expression: {exc}") from None
    start = time.time() - since_seconds(since) if since else None
    reader = Reader(directory)
    info = meta(directory)
    pid = info.get("pid")
    _known(names, [str(n) for n in info.get("names", [])])  # type: ignore[union-attr]
    width = [max(map(len, ["system", *info.get("names", [])]))]  # type: ignore[arg-type]
    records = follow(reader, lambda: running(state_dir, pid)) if follow_it else reader.records()
    show = wanted(names)
    first = True
    last = None
    for record in records:
        if first and reader.rotated:
            _say(f"procrun: the oldest lines were dropped (journal size cap); lines from "
                 f"{clock(record['t'])} on")  # type: ignore[arg-type]
        if reader.gap:  # every gap said where it is: the cap removed lines before they were read
            reader.gap = False
            _say(f"procrun: lines from {clock(last)} to {clock(record['t'])} are missing here: the journal's size "  # type: ignore[arg-type]
                 "cap removed them before they were read (raise journal.max_mb)")
        first, last = False, record["t"]
        if record["k"] in ("out", "start"):  # as start widened its column: every name seen so far
            width[0] = max(width[0], len(str(record.get("n", ""))))
        if start is not None and record["t"] < start:  # type: ignore[operator]
            continue
        for line in _render(record, show, pattern, as_json, width):
            sys.stdout.write(line)
        if follow_it:
            sys.stdout.flush()
    reader.finish()
    return 0


def _render(record: Record, show: Callable[[str], bool], pattern: re.Pattern[str] | None,
            as_json: bool, width: list[int]) -> Iterator[str]:
    """The lines of one record as ``start`` printed them (``HH:MM:SS web.1  | line``), or as JSON."""
    name = str(record.get("n", ""))
    if as_json:
        if (record["k"] != "out" or pattern is None or pattern.search(text_of(record))) and (
                not name or show(name)):
            yield json.dumps(record) + "\n"
        return
    if record["k"] != "out" or not show(name):
        return
    prefix = label(clock(record["t"]), name, width[0])  # type: ignore[arg-type]
    for line in text_of(record).split("\n"):
        if pattern is None or pattern.search(line):
            yield prefix + line + "\n"


def _say(text: str) -> None:
    sys.stdout.flush()
    print(text, file=sys.stderr)

