"""The slug: the app root as an instance should see it, made once per code version.

A tree of hard links to the app root's files (0.5 s for 50,000 files, whatever their
size; a file that cannot be linked, across file systems or under
``fs.protected_hardlinks``, is copied), so the slug costs no space and is taken in time
that does not grow with the bytes. Left out: VCS and state folders, ``fresh.ignore``,
FIFOs, sockets and devices (reading one never ends), and what cannot be read (named once).
Folders matching ``fresh.link`` (``.venv``, ``venv``, ``node_modules`` at any depth) are
symlinks to the app root's own. Made under a temporary name and renamed when complete:
a half-made slug is never used. Runs in a child process (``fresh.child``).

The caveat of links: an editor that saves *in place* (truncate and write, as some do to
keep a file's links) changes the slug's file too, so instances not yet restarted see the
edit; an editor that saves by rename (most) leaves the slug as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable
from typing import NamedTuple

from procrun.fresh import slug
from procrun.fresh.workdir import private_dir

SPECIAL = {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFCHR: "device", stat.S_IFBLK: "device"}


class Taken(NamedTuple):
    """A slug made: what was left out (kind -> paths), its folders, and the folders outside it
    its symlinks reach (path, target)."""

    path: str
    left_out: dict[str, list[str]]
    folders: list[str]
    links: list[tuple[str, str]]
    files: int = 0
    size: int = 0  # bytes


def take(app_root: str, dest: str, ignore: Iterable[str] = (), linked: Iterable[str] = slug.LINKED) -> Taken:
    """Make the slug at ``dest``; on any error nothing is left at ``dest`` (a process killed
    meanwhile leaves ``dest.partial``, which its parent removes)."""
    partial = dest + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    walk = _Walk(app_root, partial, tuple(ignore), tuple(linked))
    try:
        walk.run()
        os.rename(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Taken(dest, walk.left_out, walk.folders, walk.links, walk.files, walk.size)


class _Walk:
    def __init__(self, src: str, dst: str, ignore: tuple[str, ...], linked: tuple[str, ...]) -> None:
        self.src, self.dst, self.ignore, self.linked = src, dst, ignore, linked
        self.left_out: dict[str, list[str]] = {}
        self.modes: list[tuple[str, int]] = []  # folders whose mode is set last (a read-only one stays fillable)
        self.folders: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.files = self.size = 0

    def run(self) -> None:
        stack = [""]
        hold = float(os.environ.get("PROCRUN_TEST_HOLD_SNAPSHOT", 0))  # a test hook: the window made wide
        while stack:
            rel = stack.pop()
            stack += self._folder(rel)
            if hold > 0:
                import time

                time.sleep(hold)
                hold = 0.0
        for path, mode in reversed(self.modes):
            os.chmod(path, mode)

    def _folder(self, rel: str) -> list[str]:
        """Copy one folder's entries; return its sub-folders to walk."""
        source = os.path.join(self.src, rel) if rel else self.src
        try:
            entries = list(os.scandir(source))
            st = os.stat(source)
        except PermissionError:
            self._leave("unreadable", rel)
            return []
        target = os.path.join(self.dst, rel) if rel else self.dst
        private_dir(target)
        self.folders.append(rel)
        self.modes.append((target, stat.S_IMODE(st.st_mode) | stat.S_IWUSR | stat.S_IXUSR))
        folders = []
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.name in slug.NEVER_COPIED or slug.ignored(path, self.ignore):
                continue
            if entry.is_symlink():
                self._symlink(entry, path, os.path.join(target, entry.name))
            elif entry.is_dir(follow_symlinks=False):
                if slug.ignored(path, self.linked):  # dependencies: the app root's own, linked
                    os.symlink(entry.path, os.path.join(target, entry.name))
                    self.links.append((path, entry.path))
                else:
                    folders.append(path)
            else:
                self._file(entry, path, os.path.join(target, entry.name))
        return folders

    def _symlink(self, entry: os.DirEntry[str], path: str, target: str) -> None:
        """Kept as it is, except that a relative link out of the app root (``data -> ../shared``)
        is made absolute, so it reaches the same place from the slug."""
        link = os.readlink(entry.path)
        reached = os.path.normpath(os.path.join(os.path.dirname(entry.path), link))
        outside = not reached.startswith(self.src.rstrip("/") + "/")
        if outside and not os.path.isabs(link):
            link = reached
        os.symlink(link, target)
        if outside and os.path.isdir(reached):
            self.links.append((path, os.path.realpath(reached)))

    def _file(self, entry: os.DirEntry[str], path: str, target: str) -> None:
        st = entry.stat(follow_symlinks=False)
        kind = SPECIAL.get(stat.S_IFMT(st.st_mode))
        if kind is not None:
            self._leave(kind, path)
            return
        if not os.access(entry.path, os.R_OK):
            self._leave("unreadable", path)
            return
        try:
            os.link(entry.path, target, follow_symlinks=False)
        except OSError as exc:  # another file system, protected_hardlinks, too many links
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
                raise
            shutil.copy2(entry.path, target, follow_symlinks=False)
        self.files += 1
        self.size += st.st_size

    def _leave(self, kind: str, path: str) -> None:
        self.left_out.setdefault(kind, []).append(path or ".")


def left_out_line(left_out: dict[str, list[str]], limit: int = 3) -> str | None:
    """One line naming what the slug left out, or None."""
    if not left_out:
        return None
    parts = []
    for kind, paths in sorted(left_out.items()):
        shown = ", ".join(sorted(paths)[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
        parts.append(f"{len(paths)} {kind}{'' if len(paths) == 1 or kind == 'unreadable' else 's'} ({shown})")
    return ("fresh directories leave out " + "; ".join(parts)
            + ": FIFOs, sockets and devices are not copied, and what procrun cannot read is skipped")
