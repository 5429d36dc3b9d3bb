"""Fresh working directories: one pristine copy of the app root (the slug), then
a private copy of it per instance start, in a temporary root removed on exit.

The app root is only ever read.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterable
from typing import NamedTuple

from procrun.fresh import slug


GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ELOOP})


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


def count_files(root: str) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


class Workdir(NamedTuple):
    """One instance's fresh directory: the app copy it runs in and its TMPDIR."""

    name: str
    path: str  # the app copy; the process's cwd
    tmp: str  # its TMPDIR
    base: str  # holds both; removed when done


class Workdirs:
    """Owns the temporary root: the slug and every instance copy."""

    def __init__(self, app_root: str, ignore: Iterable[str] = (), linked: Iterable[str] = slug.LINKED,
                 keep: bool = False) -> None:
        self.app_root = app_root
        self.ignore = tuple(ignore)
        self.linked = tuple(linked)
        self.keep = keep
        self.root: str | None = None  # made on first use
        self.manifest: dict[str, slug.Entry] | None = None
        self._serial = 0

    @property
    def slug_path(self) -> str:
        if self.root is None:
            import tempfile

            self.root = tempfile.mkdtemp(prefix="procrun-")
        return os.path.join(self.root, "slug")

    def snapshot(self) -> None:
        """Copy the app root into the slug: VCS and state dirs skipped, dependency dirs linked."""
        if self.manifest is not None:
            return
        root = self.app_root

        def skip(directory: str, names: list[str]) -> list[str]:
            rel = os.path.relpath(directory, root)
            out = []
            for name in names:
                path = name if rel == "." else f"{rel}/{name}"
                if name in slug.NEVER_COPIED or slug.ignored(path, self.ignore) or (rel == "." and name in self.linked):
                    out.append(name)
            return out

        import shutil

        shutil.copytree(root, self.slug_path, symlinks=True, ignore=skip)
        for name in self.linked:
            source = os.path.join(root, name)
            if os.path.isdir(source):
                os.symlink(source, os.path.join(self.slug_path, name))
        self.manifest = scan(self.slug_path)

    def refresh(self) -> None:
        """Take a new slug (after a code change)."""
        if self.manifest is not None:
            _remove(self.slug_path)
            self.manifest = None
        self.snapshot()

    def create(self, name: str) -> Workdir:
        self.snapshot()
        self._serial += 1
        base = os.path.join(os.path.dirname(self.slug_path), f"{name}-{self._serial}")
        os.mkdir(base, 0o700)
        path, tmp = os.path.join(base, "app"), os.path.join(base, "tmp")
        os.mkdir(tmp, 0o700)
        subprocess.run(["cp", "-a", self.slug_path, path], check=True)
        return Workdir(name, path, tmp, base)

    def scratch(self, name: str) -> str:
        """An instance's own TMPDIR when it runs in the app root (behind the router, as on a
        machine of its own): the same one across its restarts."""
        path = os.path.join(os.path.dirname(self.slug_path), f"tmp-{name}")
        os.makedirs(path, 0o700, exist_ok=True)
        return path

    def inspect(self, workdir: Workdir) -> tuple[slug.Diff, int]:
        """What the instance changed in its directory, and how many files it left in TMPDIR."""
        assert self.manifest is not None
        return slug.diff(self.manifest, scan(workdir.path), self.ignore), count_files(workdir.tmp)

    def discard(self, workdir: Workdir) -> None:
        if not self.keep:
            _remove(workdir.base)

    def close(self) -> None:
        if not self.keep and self.root is not None:
            _remove(self.root)


def _remove(path: str) -> None:
    import shutil  # loaded only by sessions that use fresh directories

    shutil.rmtree(path, ignore_errors=True)
