"""Fresh working directories: the slug (``snapshot``) once per code version, then a view of
it per instance start, in a temporary root removed on exit.

Two methods, chosen once per session (``PROCRUN_FRESH=overlay|copy`` forces one):
``overlay`` (Linux, where a mount namespace can be made: as root, or unprivileged with
user namespaces) gives each start a copy-on-write view in the time of a mount, and the
stop-time diff reads only what the instance touched; ``copy`` (elsewhere, or when the
namespace is refused) copies the slug (``cp --reflink=auto`` clones where the file system
can) and compares the copy with the slug. Every call here may take seconds on a large app
and is made off the event loop (``fresh.inspect``); walks of the whole tree and copies run in
child processes (``fresh.child``), so they never hold the GIL. The app root is only read.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import subprocess
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from procrun.fresh import slug

GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ELOOP})
METHODS = ("overlay", "copy")


def scan(root: str) -> dict[str, slug.Entry]:
    """Manifest of a tree; symlinks are recorded, never followed. A folder gone or unreadable is
    left out; any other error (out of descriptors, memory, I/O) is raised: a half-read tree
    would look like deleted files."""
    manifest: dict[str, slug.Entry] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel) if rel else root))
        except OSError as exc:
            if exc.errno in GONE:
                continue
            raise
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                manifest[path] = ("link", os.readlink(entry.path))
            elif entry.is_dir():
                manifest[path] = ("dir", 0, 0)
                stack.append(path)
            else:
                st = entry.stat(follow_symlinks=False)
                manifest[path] = ("file", st.st_size, st.st_mtime_ns)
    return manifest


def private_dir(path: str) -> None:
    """A folder only its owner can use. The mode is set, not left to the umask: this runs on the
    worker thread, and the control socket is bound under a tighter umask (0o177) on the loop's."""
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)


def count_files(root: str) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


class Slug:
    """One code version's slug, with the instances still made from it (removed after the last)."""

    def __init__(self, path: str, folders: list[str], links: list[tuple[str, str]]) -> None:
        self.path, self.users, self.current = path, 0, True
        self.folders, self.links = folders, links  # what a copy's watch covers; symlinked folders


class Workdir(NamedTuple):
    """One instance's fresh directory: the app view it runs in, and its TMPDIR."""

    name: str
    path: str  # the app view; the process's cwd
    tmp: str  # its TMPDIR (kept across restarts, replaced by a relocation)
    base: str  # holds the view (and its upper and work directories); removed when done
    slug: Slug
    wrap: tuple[str, ...] = ()  # the argv prefix that enters the view (overlay)

    @property
    def upper(self) -> str | None:
        return os.path.join(self.base, "upper") if self.wrap else None


class Workdirs:
    """Owns the temporary root: the slugs, every instance view and every TMPDIR."""

    def __init__(self, app_root: str, ignore: Iterable[str] = (), linked: Iterable[str] = slug.LINKED,
                 keep: bool = False) -> None:
        self.app_root = app_root
        self.ignore = tuple(ignore)
        self.linked = tuple(linked)
        self.keep = keep
        self.root: str | None = None  # open()
        self.slug: Slug | None = None  # the current code version's
        self.method: str | None = None  # chosen by the first snapshot
        self.why_copy: str | None = None  # why overlay was not used, when it was not forced
        self.left_out: dict[str, list[str]] = {}
        self.size = (0, 0)  # the slug's files and bytes
        self.stopped = False  # stop(): the session is ending; no new child work
        self._serial = itertools.count(1)  # (next() is atomic: the loop and the worker thread both name folders)
        self._child: subprocess.Popen[bytes] | None = None  # a snapshot, copy or diff under way

    def open(self, told: Callable[[str], None]) -> str:
        """Make the temporary root and tell ``told`` (the guardian) before anything is written in it."""
        if self.root is None:
            import tempfile

            # never inside the app root (a TMPDIR there): the slug would copy itself without end
            app = os.path.realpath(self.app_root) + os.sep
            base = next((d for d in (tempfile.gettempdir(), "/tmp", "/var/tmp")
                         if not (os.path.realpath(d) + os.sep).startswith(app)), tempfile.gettempdir())
            self.root = tempfile.mkdtemp(prefix="procrun-", dir=base)
            os.chmod(self.root, 0o700)  # (mode set, not left to the umask; see private_dir)
            told(self.root)
        return self.root

    def _path(self, name: str) -> str:
        assert self.root is not None, "open() first"
        return os.path.join(self.root, f"{name}-{next(self._serial)}")

    def snapshot(self) -> Slug:
        """The current slug, taken now if there is none (the first start, or after refresh())."""
        if self.slug is not None:
            return self.slug
        if self.method is None:
            self.method, self.why_copy = _choose(self._path("probe"))
        dest = self._path("slug")
        try:
            taken = self._in_child(True, "snapshot", self.app_root, dest, json.dumps(self.ignore),
                                   json.dumps(self.linked))
        except OSError:
            remove_tree(dest + ".partial")
            raise
        self.left_out, self.size = taken["left_out"], (taken["files"], taken["size"])
        self.slug = Slug(dest, taken["folders"], [tuple(link) for link in taken["links"]])
        return self.slug

    def _in_child(self, making: bool, *args: str) -> Any:
        """A job in a child; one that makes something (not a diff) is refused, or killed, once the
        session ends."""
        from procrun.fresh import child

        return child.run(args, self._making() if making else None)

    def _making(self) -> Callable[[subprocess.Popen[bytes] | None], None]:
        """The hook of a child that makes something: refused once the session ends, killed if it ends meanwhile."""
        if self.stopped:
            raise OSError(errno.ECANCELED, "the session is ending")
        return self._started

    def _started(self, process: subprocess.Popen[bytes] | None) -> None:
        """The child making something now (None: none), killed at once if the session has ended."""
        self._child = process
        if process is not None and self.stopped:
            process.kill()

    def refresh(self) -> None:
        """A code change: the next start takes a new slug; the old one goes with its last instance."""
        old, self.slug = self.slug, None
        if old is not None:
            old.current = False
            self._drop_slug(old)

    def create(self, name: str) -> Workdir:
        """A fresh view of the current slug for one instance start (its TMPDIR is the caller's)."""
        current = self.snapshot()
        base = self._path(name)
        private_dir(base)
        app = os.path.join(base, "app")
        try:
            if self.method == "overlay":
                for d in ("upper", "work", "app"):
                    private_dir(os.path.join(base, d))
                wrap = _overlay().wrap(current.path, os.path.join(base, "upper"), os.path.join(base, "work"), app)
            else:
                self._copy(current.path, app)
                wrap = ()
        except BaseException:
            remove_tree(base)
            raise
        current.users += 1
        return Workdir(name, app, "", base, current, wrap)

    def _copy(self, source: str, dest: str) -> None:
        from procrun.fresh import child
        from procrun.platform import backend

        # at a lower priority: the session's own work (signals, the router, output) comes first
        code, _, err = child.call(["nice", "-n", "10", *backend().copy_command(), source, dest], self._making())
        if code != 0:
            raise child.failed(code, err, "copy")

    def tmpdir(self, name: str) -> str:
        """A new TMPDIR for an instance (it keeps it until it is relocated)."""
        path = self._path(f"tmp-{name}")
        private_dir(path)
        return path

    def inspect(self, workdir: Workdir) -> slug.Diff:
        """What the instance changed in its directory compared with the slug it started from."""
        if workdir.upper is not None:
            return _overlay().changes(workdir.slug.path, workdir.upper, self.ignore)
        found = self._in_child(False, "diff", workdir.slug.path, workdir.path, json.dumps(self.ignore))
        return slug.Diff(*(tuple(found[k]) for k in slug.Diff._fields))

    def discard(self, workdir: Workdir) -> None:
        if not self.keep:
            remove_tree(workdir.base)
        workdir.slug.users -= 1
        self._drop_slug(workdir.slug)

    def drop_tmp(self, path: str) -> int:
        """Remove a TMPDIR no instance uses any more; the files it held."""
        count = count_files(path)
        if not self.keep:
            remove_tree(path)
        return count

    def _drop_slug(self, old: Slug) -> None:
        if not old.current and old.users <= 0 and not self.keep:
            remove_tree(old.path)

    def stop(self) -> None:
        """Stop a snapshot or copy under way, and any to come (the session is ending; diffs still run)."""
        self.stopped = True
        running = self._child
        if running is not None and running.returncode is None:
            running.kill()

    def close(self) -> None:
        if not self.keep and self.root is not None:
            remove_tree(self.root)


def _choose(probe: str) -> tuple[str, str | None]:
    """The method for this session, and why copy was chosen when it was not asked for."""
    forced = os.environ.get("PROCRUN_FRESH", "")
    if forced == "copy":
        return "copy", None
    from procrun.platform import name

    why = _overlay().unavailable(probe) if name() == "linux" else "the platform has no overlay mounts"
    if why is None:
        return "overlay", None
    if forced == "overlay":
        raise OSError(errno.EPERM, f"PROCRUN_FRESH=overlay, but copy-on-write views cannot be made here ({why})")
    return "copy", why


def _overlay():  # type: ignore[no-untyped-def]
    from procrun.fresh import overlay

    return overlay


def remove_tree(path: str) -> None:
    """Remove a tree of ours: ``rm -rf`` first (50,000 unlinks in a child, not Python work that
    would share the GIL with the loop), then what a folder an overlay made without permissions
    (its ``work/work``) kept: such a folder is given its owner's permissions back, never a file
    (the slug's files are the app root's own, linked)."""
    from procrun.fresh import child

    child.call(["rm", "-rf", "--", path])
    if not os.path.lexists(path):
        return
    import shutil  # loaded only by sessions that use fresh directories

    def unlock(func: object, failed: str, exc_info: object) -> None:
        try:
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
        except OSError:
            pass

    shutil.rmtree(path, onerror=unlock)
