"""File writes in fresh directories, as they happen: inotify read from the event loop.

Each fresh directory is watched (every folder in it, new ones as they appear) from
the moment its instance starts; no timer, so an idle session stays idle. The first
write to a path (grouped by pattern: ``uploads/<id>.txt``) is a ``warning`` line at
once, naming the instance, the path and, behind the router, the request it was
serving. The stop-time diff against the slug stays the complete record.
Linux only: elsewhere ``Writes.available`` is False and only the stop-time diff runs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from procrun.diagnose.report import compiled_at_run_time, pattern
from procrun.fresh.slug import ALWAYS_IGNORED, ignored
from procrun.project.plan import type_of

if TYPE_CHECKING:
    import asyncio

    from procrun.supervise.shared import Shared

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x80, 0x100, 0x200
IN_ISDIR, IN_Q_OVERFLOW, IN_IGNORED = 0x40000000, 0x4000, 0x8000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE
EVENT = struct.Struct("iIII")
LINKED = ""  # the owner of a linked folder's watches: not one instance
# Regenerated anywhere, never state: compiler and framework caches, pid files.
CACHES = (*ALWAYS_IGNORED, "tmp/cache", "tmp/cache/*", "bootsnap*", ".next/cache", "tmp/pids", "*.pid",
          ".pytest_cache", ".mypy_cache")
LOGS = ("*.log", "log/*", "logs/*")  # logs belong on stdout: their own kind

Say = Callable[[str, str], None]


class Writes:
    """One inotify descriptor for every fresh directory of the session."""

    def __init__(self, say: Say, shared: Shared, ignore: tuple[str, ...] = ()) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # see attach()
        self.say, self.ignore = say, (*CACHES, *ignore)
        self.in_flight = shared.in_flight  # the request each instance serves (attribution)
        self.shared = shared  # on_write: the diagnosis hears of every write, TMPDIR's included
        self.fd = -1
        self._dirs: dict[int, tuple[str, str, str]] = {}  # wd -> (instance, its root, the folder's relative path)
        self._scratch: set[str] = set()  # roots that are TMPDIRs: writes there are allowed, only noted
        self._seen: dict[str, set[str]] = {}  # type -> patterns already said
        self._linked: set[str] = set()  # linked folder names watched (once per session)
        self.written: dict[str, set[str]] = {}  # instance -> paths it wrote (joined with the memory findings)
        self.counts: dict[tuple[str, str, str], int] = {}  # (type, kind, pattern) -> writes
        self._libc = _libc()
        if self._libc is not None:
            self.fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read notifications on the loop; those that came before (the first processes may start
        before the loop exists) wait in the descriptor."""
        self.loop = loop
        if self.fd >= 0:
            loop.add_reader(self.fd, self._read)

    @property
    def available(self) -> bool:
        return self.fd >= 0

    def watch(self, instance: str, root: str) -> None:
        """Watch a fresh directory (its every folder) for the instance that runs in it, and once
        per session the linked dependency folders (.venv, node_modules: the app root's own)."""
        if not self.available:
            return
        self._watch_tree(instance, root)
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if os.path.islink(path) and os.path.isdir(path) and name not in self._linked:
                self._linked.add(name)
                self._watch_linked(os.path.realpath(path), name)

    def watch_scratch(self, instance: str, root: str) -> None:
        """Watch an instance's TMPDIR: scratch space, so a write there is no warning; the
        diagnosis hears of it (a later request naming it and failing elsewhere is evidence)."""
        if not self.available:
            return
        self._scratch.add(root)
        self._watch_tree(instance, root)

    def _watch_tree(self, instance: str, root: str) -> None:
        """Every folder under ``root``, linked ones left out (they are the app root's own)."""
        for folder, dirs, _ in os.walk(root):
            rel = os.path.relpath(folder, root)
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
            self._add(instance, root, "" if rel == "." else rel)

    def _watch_linked(self, target: str, name: str) -> None:
        """The folder itself and its caches (node_modules/.cache): what tools write at run time."""
        parent = os.path.dirname(target)
        self._add(LINKED, parent, name)
        cache = os.path.join(target, ".cache")
        for folder, _, _ in os.walk(cache) if os.path.isdir(cache) else ():
            self._add(LINKED, parent, os.path.join(name, os.path.relpath(folder, target)))

    def forget(self, instance: str) -> None:  # linked folders stay watched: other instances share them
        for wd in [wd for wd, (name, _, _) in self._dirs.items() if name == instance]:
            self._libc.inotify_rm_watch(self.fd, wd)  # type: ignore[union-attr]
            self._dirs.pop(wd, None)

    def _add(self, instance: str, root: str, rel: str) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(os.path.join(root, rel)), MASK)  # type: ignore[union-attr]
        if wd >= 0:
            self._dirs[wd] = (instance, root, rel)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 64 * 1024)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                self.close()
            return
        offset = 0
        while offset + EVENT.size <= len(data):
            wd, mask, _, length = EVENT.unpack_from(data, offset)
            name = data[offset + EVENT.size: offset + EVENT.size + length].rstrip(b"\0").decode(errors="replace")
            offset += EVENT.size + length
            self._event(wd, mask, name)

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_IGNORED:
            self._dirs.pop(wd, None)
            return
        where = self._dirs.get(wd)
        if where is None or not name:
            return
        instance, root, rel = where
        path = f"{rel}/{name}" if rel else name
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self._add(instance, root, path)
            return
        if instance == LINKED:
            if not ignored(path, ALWAYS_IGNORED):  # compiled bytecode in .venv is normal
                self._through_link(path)
            return
        if root in self._scratch:
            if not mask & IN_DELETE and self.shared.on_write is not None:
                self.shared.on_write(instance, path, True, self.in_flight.get(instance))
            return
        if ignored(path, self.ignore):
            return
        self._wrote(instance, path, "deleted" if mask & IN_DELETE else "wrote")

    def _wrote(self, instance: str, path: str, verb: str) -> None:
        if verb == "wrote":
            self.written.setdefault(instance, set()).add(path)
            if self.shared.on_write is not None:
                self.shared.on_write(instance, path, False, self.in_flight.get(instance))
        type_name = type_of(instance)
        kind = "logs" if ignored(path, LOGS) else "files"
        shown = pattern(path)
        key = (type_name, kind, shown)
        self.counts[key] = self.counts.get(key, 0) + 1
        if shown in self._seen.setdefault(type_name, set()):
            return
        self._seen[type_name].add(shown)
        request = self.in_flight.get(instance)
        during = f" while serving {request}" if request else ""
        advice = ("logs belong on stdout, where procrun and the platform collect them" if kind == "logs" else
                  "compile assets at build time, before the processes start" if compiled_at_run_time(path) else
                  "the next instance will not see it: keep it in a backing store")
        self.say(f"{instance} {verb} {path}{during}; {advice}", "warning")

    def _through_link(self, path: str) -> None:
        """A write into a linked folder reaches the user's repository, whichever instance made it."""
        shown = pattern(path)
        self.counts[("", "linked", shown)] = self.counts.get(("", "linked", shown), 0) + 1
        if shown in self._seen.setdefault("", set()):
            return
        self._seen[""].add(shown)
        folder = path.split("/", 1)[0]
        self.say(f"an instance wrote {path} through the linked {folder}/, which is your app root's own and "
                 "shared by every instance; point caches at TMPDIR", "warning")

    def close(self) -> None:
        if self.fd >= 0:
            if self.loop is not None:
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None
