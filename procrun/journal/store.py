"""Writing the journal: one JSON line per relayed chunk or event, appended with one write(2).

Written at once, not buffered: the page cache keeps what was relayed even when procrun is
SIGKILLed. Segments rotate at a fifth of the size cap; past the cap the oldest segment is
deleted (``logs`` then says from when on it has lines). The last ``keep`` sessions are kept.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

SESSIONS = "sessions"
META = "meta.json"
PREFIX, SUFFIX = "journal-", ".jsonl"
SEGMENTS = 5  # segments per cap: rotation drops at most a fifth of the kept lines
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Bytes a JSON string holds as they are: printable ASCII but " and \ (and the newlines, escaped below).
_PLAIN = bytes(b for b in range(0x20, 0x80) if b not in b'"\\') + b"\n"


def segment_name(number: int) -> str:
    return f"{PREFIX}{number:06d}{SUFFIX}"


def segment_number(name: str) -> int | None:
    if name.startswith(PREFIX) and name.endswith(SUFFIX):
        digits = name[len(PREFIX):-len(SUFFIX)]
        if digits.isdigit():
            return int(digits)
    return None


def new_session(state_dir: str, meta: dict[str, object], now: float) -> str:
    """Make ``sessions/<id>/`` with its meta.json."""
    base = os.path.join(state_dir, SESSIONS)
    os.makedirs(base, mode=0o700, exist_ok=True)
    ident = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{os.getpid()}"
    directory = os.path.join(base, ident)
    os.makedirs(directory, mode=0o700)
    with open(os.path.join(directory, META), "w") as f:
        json.dump({"id": ident, **meta}, f, indent=1)
    return directory


def open_journal(state_dir: str, settings: Any, names: list[str], say: Callable[[str, str], None]) -> Journal | None:
    """The session's journal under sessions/<id>/, with what replays it (the seed joins the
    command line under chaos); None with --no-journal, or when it cannot be made (one warning
    says why)."""
    if not settings.journal:
        return None
    argv = ["procrun", *sys.argv[1:]]
    replay = argv + ([] if any(a.startswith("--chaos-seed") for a in argv) else ["--chaos-seed", str(settings.chaos_seed)])
    meta = {"pid": os.getpid(), "root": settings.app_root, "argv": argv, "seed": settings.chaos_seed,
            "replay": shlex.join(replay) if settings.chaos else None, "chaos": settings.chaos,
            "started": time.time(), "names": names}
    try:
        directory = new_session(state_dir, meta, meta["started"])
    except OSError as exc:
        say(f"no journal for this session: {exc.strerror or exc}", "warning")
        return None
    return Journal(directory, int(settings.journal_max_mb * 1_000_000),
                   on_error=lambda exc: say(f"journal stopped: {exc.strerror or exc}", "warning"))


def prune(current: str, keep: int) -> None:
    """Remove the oldest sessions beside ``current`` but the last ``keep - 1``. A start does this
    once its processes are up: it is housekeeping, and shutil costs ~5 ms to import."""
    base, own = os.path.split(current)
    names = sorted(name for name in os.listdir(base) if name != own)
    if len(names) > keep - 1:
        import shutil

        for old in names[:len(names) - (keep - 1)]:
            shutil.rmtree(os.path.join(base, old), ignore_errors=True)


class Journal:
    """Appends records to the session's segments. A failed write (ENOSPC...) turns the journal
    off and is reported once through ``on_error``; the session goes on."""

    def __init__(self, directory: str, cap_bytes: int, clock: Callable[[], float] = time.time,
                 on_error: Callable[[OSError], None] | None = None) -> None:
        self.directory = directory
        self.cap = cap_bytes
        self.segment_cap = max(cap_bytes // SEGMENTS, 64 * 1024)
        self.clock = clock
        self.on_error = on_error
        self.error: OSError | None = None
        self._segments: list[tuple[int, int]] = []  # (number, bytes) of the kept segments, oldest first
        self._fd = -1
        self._size = 0
        self._open(1)

    def output(self, name: str, lines: list[bytes]) -> None:
        """One relayed chunk: its whole lines, kept exactly (base64 when not UTF-8)."""
        data = b"\n".join(lines)
        head = {"t": round(self.clock(), 3), "k": "out", "n": name}
        if not data.translate(None, _PLAIN):  # the common case, ~10x faster than the json module
            self._write(_dumps(head)[:-1].encode() + b',"s":"', data.replace(b"\n", b"\\n"), b'"}\n')
            return
        try:
            head["s"] = data.decode()
        except UnicodeDecodeError:
            import base64  # here: only output that is not UTF-8 needs it, and a start imports this module early

            head["b"] = base64.b64encode(data).decode()
        self._append(head)

    def event(self, kind: str, fields: dict[str, object]) -> None:
        self._append({"t": round(self.clock(), 3), "k": kind, **fields})

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _append(self, record: dict[str, object]) -> None:
        # a lone surrogate (a file name that is not UTF-8) becomes its JSON escape, read back as it was
        self._write((_dumps(record) + "\n").encode("utf-8", "backslashreplace"))

    def _write(self, *parts: bytes) -> None:
        """One record, in one writev(2) (no copy of a large chunk to join its parts)."""
        if self._fd < 0:
            return
        size = sum(map(len, parts))
        try:
            if self._size and self._size + size > self.segment_cap:
                self._rotate()
            written = os.writev(self._fd, parts)
            if written < size:  # a short write (a signal, a nearly full disk): the rest, in order
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest):]
        except OSError as exc:
            self._failed(exc)
            return
        self._size += size

    def _open(self, number: int) -> None:
        path = os.path.join(self.directory, segment_name(number))
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._failed(exc)
            return
        self._segments.append((number, 0))
        self._size = 0

    def _rotate(self) -> None:
        number, _ = self._segments.pop()
        self._segments.append((number, self._size))
        os.close(self._fd)
        self._fd = -1
        while self._segments and sum(size for _, size in self._segments) + self.segment_cap > self.cap:
            old, _ = self._segments.pop(0)
            os.unlink(os.path.join(self.directory, segment_name(old)))
        self._open(number + 1)

    def _failed(self, exc: OSError) -> None:
        self.close()
        if self.error is None:
            self.error = exc
            if self.on_error is not None:
                self.on_error(exc)


class Off:
    """No journal (--no-journal, or before the session has one): records go nowhere."""

    error: OSError | None = None

    def output(self, name: str, lines: list[bytes]) -> None:
        pass

    def event(self, kind: str, fields: dict[str, object]) -> None:
        pass

    def close(self) -> None:
        pass


OFF: Journal = Off()  # type: ignore[assignment]
