"""What a batch of file changes means for the formation. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from procrun.project.procfile import Procfile


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


@dataclass
class RestartGuard:
    """Stops watch from restarting a type in a loop (an app, or procrun's own output
    redirected into the app root, rewriting a watched file at every start).

    More than ``limit`` restarts of a type within ``window`` seconds suspend watch
    restarts of that type until a change elsewhere, or ``resume()`` (procrun restart).
    """

    limit: int = 5
    window: float = 60.0
    history: dict[str, list[float]] = field(default_factory=dict)
    suspended: dict[str, frozenset[str]] = field(default_factory=dict)  # type -> the paths that kept changing

    def allow(self, type_name: str, paths: Iterable[str], now: float) -> tuple[bool, str | None]:
        """(restart it?, a line to say when the type is suspended now)."""
        paths = frozenset(paths)
        if type_name in self.suspended:
            if paths <= self.suspended[type_name]:
                return False, None
            self.resume([type_name])  # something else changed: a real edit
        times = [t for t in self.history.get(type_name, []) if now - t < self.window]
        if len(times) >= self.limit:
            self.suspended[type_name] = paths
            self.history[type_name] = times
            shown = ", ".join(sorted(paths)[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
            return False, (f"{type_name} restarted {len(times)} times in {self.window:g}s for changes to {shown}, "
                           f"which keeps changing; watch restarts of {type_name} are suspended until another "
                           f"file changes or 'procrun restart {type_name}'")
        self.history[type_name] = [*times, now]
        return True, None

    def resume(self, types: Iterable[str]) -> None:
        for type_name in types:
            self.suspended.pop(type_name, None)
            self.history.pop(type_name, None)
