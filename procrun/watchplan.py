"""What a batch of file changes means for the formation. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from procrun.procfile import Procfile


@dataclass(frozen=True)
class Changes:
    procfile: bool = False  # re-read it and apply the difference
    env: bool = False  # restart everything with the new values
    config: bool = False  # procrun.yaml: needs a new session
    types: frozenset[str] = frozenset()  # code changes: restart these types
    paths: tuple[str, ...] = ()


def matches(path: str, globs: Iterable[str]) -> bool:
    """fnmatch on the relative path, its file name, or a directory prefix (``templates/``)."""
    name = path.rsplit("/", 1)[-1]
    for glob in globs:
        glob = glob.rstrip("/")
        if fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(name, glob) or path.startswith(glob + "/"):
            return True
    return False


def classify(paths: Iterable[str], procfile: str, env_files: Sequence[str], config: str,
             globs: Mapping[str, tuple[str, ...]], types: Sequence[str]) -> Changes:
    """Paths are relative to the app root; a type without globs is affected by any code change."""
    paths = sorted(set(paths))
    procfile_changed = procfile in paths
    env_changed = any(p in env_files for p in paths)
    config_changed = config in paths
    code = [p for p in paths if p != procfile and p not in env_files and p != config]
    affected = {t for t in types if code and (t not in globs or any(matches(p, globs[t]) for p in code))}
    return Changes(procfile_changed, env_changed, config_changed, frozenset(affected), tuple(paths))


def procfile_diff(old: Procfile, new: Procfile) -> tuple[list[str], list[str], list[str]]:
    """(added, removed, command changed) type names."""
    added = [t for t in new.names if old.get(t) is None]
    removed = [t for t in old.names if new.get(t) is None]
    changed = [t for t in new.names if old.get(t) is not None and old.get(t).command != new.get(t).command]  # type: ignore[union-attr]
    return added, removed, changed
