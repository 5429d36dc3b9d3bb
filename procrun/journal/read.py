"""Reading the journal back: sessions, their records in order, tolerantly (a bad or
truncated line is skipped and counted, never a traceback), and following a running one."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from procrun.errors import SessionError
from procrun.statedir import holder, shown
from procrun.journal.store import META, SESSIONS, segment_number

Record = dict[str, object]


def session_dir(state_dir: str, ident: str | None) -> str:
    """The named session, or the newest (the running or last one)."""
    base = os.path.join(state_dir, SESSIONS)
    try:
        names = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
    except OSError:
        names = []
    if ident is not None:
        if ident not in names:
            known = ", ".join(names[-5:]) or "none"
            raise SessionError(f"no session {ident!r} in {base}; recent sessions: {known}")
        return os.path.join(base, ident)
    if not names:
        raise SessionError(f"no session journal in {shown(base)}; run 'procrun start' first (a session keeps its "
                           "output there unless started with --no-journal)")
    return os.path.join(base, names[-1])


def meta(directory: str) -> Record:
    try:
        with open(os.path.join(directory, META)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def segments(directory: str) -> list[tuple[int, str]]:
    found = []
    for name in os.listdir(directory):
        number = segment_number(name)
        if number is not None:
            found.append((number, os.path.join(directory, name)))
    return sorted(found)


def text_of(record: Record) -> str:
    """An output record's lines as text (bytes that are not UTF-8 shown with replacement)."""
    if "s" in record:
        return str(record["s"])
    try:
        return base64.b64decode(str(record.get("b", ""))).decode(errors="replace")
    except ValueError:
        return ""


class Reader:
    """The records of one session, oldest first; ``skipped`` counts the unreadable lines.

    The segment being read stays open, so one the size cap removes meanwhile is still read to
    its end (an unlinked file lives on while open); only a segment removed before it was ever
    opened is lost, and that is a gap: ``gap`` says one came just now."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.skipped = 0
        self.rotated = False  # the oldest segments were dropped by the size cap before reading began
        self.gap = False  # segments were lost between the last record read and the next
        self._number = 0
        self._file: BinaryIO | None = None
        self._partial = b""

    def records(self) -> Iterator[Record]:
        """Everything written so far; call again to get what came since."""
        while True:
            later = [(n, p) for n, p in segments(self.directory) if n > self._number]  # listed first: a
            yield from self._drain()  # later segment means the current one is complete, drained now
            if not later:
                return
            self._close()
            number, path = later[0]
            if self._number == 0 and number > 1:
                self.rotated = True
            elif self._number and number > self._number + 1:
                self.gap = True
            self._number = number
            try:
                self._file = open(path, "rb")
            except OSError:  # removed between the listing and now: the next one
                continue

    def _drain(self) -> Iterator[Record]:
        if self._file is None:
            return
        try:
            data = self._file.read()
        except OSError:
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and isinstance(record.get("t"), (int, float)) and "k" in record:
                yield record
            else:
                self.skipped += 1

    def __del__(self) -> None:  # a reader dropped before finish() closes its segment
        if self._file is not None:
            self._file.close()

    def _close(self) -> None:
        if self._partial:  # a segment ended in a torn line: a SIGKILL or a full disk
            self.skipped += 1
            self._partial = b""
        if self._file is not None:
            self._file.close()
            self._file = None

    def finish(self) -> None:
        """At the end of reading: a last line without its newline was torn; one line on stderr
        says how many lines were skipped."""
        self._close()
        if self.skipped:
            sys.stdout.flush()
            print(f"procrun: skipped {self.skipped} unreadable journal line(s) in {self.directory}", file=sys.stderr)


def running(state_dir: str, pid: object) -> bool:
    """Is the session with this pid still holding the session lock?"""
    record = holder(state_dir)
    return record is not None and record.get("pid") == pid


def follow(reader: Reader, alive: Callable[[], bool], interval: float = 0.2) -> Iterator[Record]:
    """Like ``tail -f``: the records as they are written, until the session ends; while records
    keep coming it reads again at once (a chatty session must not outrun the size cap's rotation)."""
    while True:
        ended = not alive()  # asked before reading, so nothing written before the end is missed
        got = False
        for record in reader.records():
            got = True
            yield record
            if record["k"] == "end":
                return
        if ended:
            return
        if not got:
            time.sleep(interval)


def saved_report(root: str, ident: str) -> dict[str, object]:
    """The report a finished session saved beside its journal."""
    from procrun.statedir import REPORT, locate

    directory = session_dir(locate(root), ident)
    try:
        with open(os.path.join(directory, REPORT)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise SessionError(f"session {ident} saved no report (it is still running, or was killed)")
    return data
