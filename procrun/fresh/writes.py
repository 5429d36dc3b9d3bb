"""File writes in fresh directories, as they happen: inotify read from the event loop.

Each fresh directory is watched from the moment its instance starts (a copy-on-write
view through its upper directory, which holds exactly what the instance touched; a copy,
every folder in it), new folders as they appear and scanned once watched (a file made right
after its folder is not missed), and every folder the app reaches through a symlink, named
by the link; no timer, so an idle session stays idle. The first
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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

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


class Watch(NamedTuple):
    """One watched folder: whose, where, the path it is shown as, what kind of tree it is in."""

    instance: str
    folder: str
    shown: str  # relative path as the app sees it ("" for the root)
    kind: str  # "app", "scratch" (a TMPDIR) or "linked" (reached through a symlink)
    lower: str | None = None  # the slug below an upper directory (copy-up is no write)


class Writes:
    """One inotify descriptor for every fresh directory of the session."""

    def __init__(self, say: Say, shared: Shared, ignore: tuple[str, ...] = ()) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # see attach()
        self.say, self.ignore = say, (*CACHES, *ignore)
        self.in_flight = shared.in_flight  # the request each instance serves (attribution)
        self.shared = shared  # on_write: the diagnosis hears of every write, TMPDIR's included
        self.fd = -1
        self._dirs: dict[int, Watch] = {}
        self._seen: dict[str, set[str]] = {}  # type -> patterns already said
        self._linked: dict[str, str] = {}  # symlinked folders watched (once per session): shown -> target
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

    def watch(self, instance: str, root: str, folders: Iterable[str] = ("",), lower: str | None = None,
              links: Iterable[tuple[str, str]] = ()) -> None:
        """Watch a fresh directory for the instance that runs in it: ``folders`` under ``root``
        (an upper directory: its root only), with ``lower`` the slug it started from (a file as
        it was there is no write), and once per session the folders its symlinks reach
        (``links``: shown path, target)."""
        if not self.available:
            return
        for rel in folders:
            self._add(Watch(instance, os.path.join(root, rel) if rel else root, rel, "app", lower))
        for shown, target in links:
            if shown not in self._linked:
                self._linked[shown] = target
                self._watch_linked(target, shown)

    def watch_scratch(self, instance: str, root: str) -> None:
        """Watch an instance's TMPDIR: scratch space, so a write there is no warning; the
        diagnosis hears of it (a later request naming it and failing elsewhere is evidence)."""
        if not self.available:
            return
        for folder, dirs, _ in os.walk(root):
            rel = os.path.relpath(folder, root)
            self._add(Watch(instance, folder, "" if rel == "." else rel, "scratch"))

    def _watch_linked(self, target: str, shown: str) -> None:
        """The folder itself and its caches (node_modules/.cache): what tools write at run time."""
        self._add(Watch(LINKED, target, shown, "linked"))
        cache = os.path.join(target, ".cache")
        for folder, _, _ in os.walk(cache) if os.path.isdir(cache) else ():
            self._add(Watch(LINKED, folder, os.path.join(shown, os.path.relpath(folder, target)), "linked"))

    def forget(self, instance: str, under: str | None = None) -> None:
        """Stop watching an instance's folders (only those ``under`` a path when given); linked
        folders stay watched: other instances share them."""
        for wd in [wd for wd, w in self._dirs.items()
                   if w.instance == instance and (under is None or w.folder.startswith(under + os.sep))]:
            self._libc.inotify_rm_watch(self.fd, wd)  # type: ignore[union-attr]
            self._dirs.pop(wd, None)

    def _add(self, watch: Watch) -> bool:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(watch.folder), MASK)  # type: ignore[union-attr]
        if wd >= 0:
            self._dirs[wd] = watch
        return wd >= 0

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
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self._new_folder(where, name)
            return
        self._file(where, name, deleted=bool(mask & IN_DELETE))

    def _new_folder(self, parent: Watch, name: str) -> None:
        """Watch a new folder, then look in it: what was written before the watch counts too."""
        watch = parent._replace(folder=os.path.join(parent.folder, name), shown=_join(parent.shown, name))
        if not self._add(watch):
            return
        try:
            entries = list(os.scandir(watch.folder))
        except OSError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                self._new_folder(watch, entry.name)
            else:
                self._file(watch, entry.name, deleted=False)

    def _file(self, where: Watch, name: str, deleted: bool) -> None:
        path = _join(where.shown, name)
        if where.kind == "linked":
            if not ignored(path, ALWAYS_IGNORED):  # compiled bytecode in .venv is normal
                self._through_link(path)
        elif where.kind == "scratch":
            if not deleted and self.shared.on_write is not None:
                self.shared.on_write(where.instance, path, True, self.in_flight.get(where.instance))
        elif not ignored(path, self.ignore):
            if where.lower is not None and not deleted:
                verb = _upper_entry(os.path.join(where.folder, name), os.path.join(where.lower, path))
                if verb is not None:
                    self._wrote(where.instance, path, verb)
            else:
                self._wrote(where.instance, path, "deleted" if deleted else "wrote")

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
        """A write through a symlinked folder (linked dependencies: the user's repository) reaches
        what every instance shares, whichever instance made it."""
        shown = pattern(path)
        self.counts[("", "linked", shown)] = self.counts.get(("", "linked", shown), 0) + 1
        if shown in self._seen.setdefault("", set()):
            return
        self._seen[""].add(shown)
        link = max((n for n in self._linked if path.startswith(n + "/")), key=len, default="")
        self.say(f"an instance wrote {path} through the linked {link}/ ({self._linked.get(link, '?')}), which is "
                 "outside its fresh directory and shared by every instance; point caches at TMPDIR", "warning")

    def close(self) -> None:
        if self.fd >= 0:
            if self.loop is not None:
                self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _upper_entry(path: str, below: str) -> str | None:
    """What an entry that appeared in an upper directory means: a whiteout is a deletion; a copy
    of a slug file whose size and mtime are unchanged (opened read-write, say) is no write."""
    from procrun.fresh.overlay import differs, whiteout

    try:
        st = os.lstat(path)
    except OSError:
        return None
    if whiteout(st):
        return "deleted"
    try:
        old = os.lstat(below)
    except OSError:
        return "wrote"
    return "wrote" if differs(st, old, path, below) else None


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None
