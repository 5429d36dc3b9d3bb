"""Copy-on-write fresh directories (Linux): the slug as an overlay's lower layer, one upper
directory per instance start. Nothing is copied until the instance writes, so a start costs a
mount whatever the app's size, and the upper directory is exactly what the instance touched:
the stop-time diff reads it, O(touched), never the whole tree.

What an overlay does that a copy would not, as in a container (Docker's overlay2 too):
renaming a folder that comes from the slug fails with EXDEV (``mv`` and ``shutil.move``
copy instead); opening a file read-write copies it up whole (compared by size and
mtime, an unchanged one is no change); deleting leaves a whiteout (a 0/0 device) in the
upper directory, and a folder replaced whole is marked opaque.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterable

from procrun.fresh import child, slug

HELPER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "platform", "linux_mountns.py")
OPAQUE = ("user.overlay.opaque", "trusted.overlay.opaque")


def wrap(lower: str, upper: str, work: str, merged: str) -> tuple[str, ...]:
    """The argv prefix that runs a command inside the view (see ``procrun.platform.linux_mountns``)."""
    return (sys.executable, "-I", "-S", HELPER, lower, upper, work, merged)


def unavailable(scratch: str) -> str | None:
    """Why copy-on-write views cannot be made here (None: they can), found by making one in
    ``scratch`` (removed after) and running ``true`` in it. Unprivileged user namespaces are
    blocked on some systems (recent Ubuntu, hardened kernels, most containers)."""
    dirs = [os.path.join(scratch, d) for d in ("lower", "upper", "work", "merged")]
    try:
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        code, _, err = child.call([*wrap(*dirs), "true"])
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        from procrun.fresh.workdir import remove_tree

        remove_tree(scratch)
    if code != 0:
        text = err.decode(errors="replace").strip().splitlines()
        return text[-1].removeprefix("procrun: cannot make the fresh directory's copy-on-write view ") \
            if text else f"exit {code}"
    return None


def changes(lower: str, upper: str, ignore: Iterable[str] = ()) -> slug.Diff:
    """What an instance changed, read from its upper directory: created (not in the slug),
    changed (in the slug, different size, mtime or link target), deleted (whiteouts, and
    what an opaque folder hides)."""
    patterns = (*slug.ALWAYS_IGNORED, *ignore)
    created: list[str] = []
    changed: list[str] = []
    deleted: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = os.path.join(upper, rel) if rel else upper
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        if rel and _opaque(folder):
            _hidden(lower, rel, {e.name for e in entries}, deleted)
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            below = _lstat(os.path.join(lower, path))
            if whiteout(st):  # deleted
                if below is not None and stat.S_ISDIR(below.st_mode):
                    deleted += _files_under(lower, path)
                elif below is not None:
                    deleted.append(path)
            elif stat.S_ISDIR(st.st_mode):
                if below is not None and not stat.S_ISDIR(below.st_mode):
                    deleted.append(path)  # a file replaced by a folder
                stack.append(path)
            elif below is None:
                created.append(path)
            elif stat.S_ISDIR(below.st_mode):
                deleted += _files_under(lower, path)
                created.append(path)
            elif differs(st, below, entry.path, os.path.join(lower, path)):
                changed.append(path)
    keep = lambda paths: tuple(sorted(p for p in paths if not slug.ignored(p, patterns)))  # noqa: E731
    return slug.Diff(keep(created), keep(changed), keep(deleted))


def whiteout(st: os.stat_result) -> bool:
    """An upper directory's mark of a deletion: a 0/0 character device."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def differs(st: os.stat_result, below: os.stat_result, path: str, lower_path: str) -> bool:
    """Whether an entry changed from the slug's: another link target, size or mtime (a copy-up
    keeps the mtime, so a file only opened read-write is the same)."""
    if stat.S_ISLNK(st.st_mode) or stat.S_ISLNK(below.st_mode):
        return not (stat.S_ISLNK(st.st_mode) and stat.S_ISLNK(below.st_mode)
                    and os.readlink(path) == os.readlink(lower_path))
    return (st.st_size, st.st_mtime_ns) != (below.st_size, below.st_mtime_ns)


def _opaque(folder: str) -> bool:
    for name in OPAQUE:
        try:
            if os.getxattr(folder, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _hidden(lower: str, rel: str, shown: set[str], deleted: list[str]) -> None:
    """An opaque folder hides everything the slug had there that the upper does not hold."""
    try:
        names = os.listdir(os.path.join(lower, rel))
    except OSError:
        return
    for name in names:
        if name not in shown:
            deleted += _files_under(lower, f"{rel}/{name}")


def _files_under(lower: str, path: str) -> list[str]:
    full = os.path.join(lower, path)
    if not os.path.isdir(full) or os.path.islink(full):
        return [path]
    from procrun.fresh.workdir import scan

    return [f"{path}/{p}" for p, e in scan(full).items() if e[0] != "dir"]


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None
