"""Manifests of a directory tree and their difference. Pure: no I/O.

A manifest maps a relative path to what identifies its content cheaply:
(kind, size, mtime_ns) for files, the target for symlinks. Copies made with
``cp -a`` keep mtimes, so an untouched file compares equal.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import NamedTuple

Entry = tuple[str, int, int] | tuple[str, str]
# Compiler caches are regenerated anywhere and never state worth reporting.
ALWAYS_IGNORED = ("__pycache__", "*.pyc", "*.pyo")
# Not copied into the slug at all.
NEVER_COPIED = (".git", ".procrun", ".hg", ".svn")
# Large dependency folders: linked into the slug instead of copied.
LINKED = (".venv", "venv", "node_modules")


def ignored(path: str, patterns: Iterable[str]) -> bool:
    """True if any component of ``path`` (or the whole path) matches a pattern."""
    parts = path.split("/")
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*"):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


class Diff(NamedTuple):
    """What an instance left in its directory compared with the slug."""

    created: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.created or self.changed or self.deleted)

    @property
    def paths(self) -> tuple[str, ...]:
        return self.created + self.changed + self.deleted


def diff(before: Mapping[str, Entry], after: Mapping[str, Entry], ignore: Iterable[str] = ()) -> Diff:
    """Files created, changed and deleted between two manifests, ignored paths skipped."""
    patterns = (*ALWAYS_IGNORED, *ignore)
    created = sorted(p for p in after if p not in before and after[p][0] != "dir" and not ignored(p, patterns))
    deleted = sorted(p for p in before if p not in after and before[p][0] != "dir" and not ignored(p, patterns))
    changed = sorted(p for p in after if p in before and after[p] != before[p]
                     and after[p][0] != "dir" and not ignored(p, patterns))
    return Diff(tuple(created), tuple(changed), tuple(deleted))


def describe(name: str, lifetime: float, found: Diff, limit: int = 3) -> str:
    """One warning line: what an instance left behind that the next one will not see."""
    parts = []
    for verb, paths in (("wrote", found.created), ("changed", found.changed), ("deleted", found.deleted)):
        if paths:
            shown = " and ".join(paths[:limit]) if len(paths) <= limit else \
                ", ".join(paths[:limit]) + f" and {len(paths) - limit} more"
            parts.append(f"{verb} {shown}")
    return (f"{name} {'; '.join(parts)} during its {lifetime:.0f}s life; "
            "the next instance will not see "
            + ("them" if len(found.paths) > 1 else "it"))
