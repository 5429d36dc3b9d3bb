"""--watch: file changes become restarts, applied by the Machine.

A code change restarts the affected types (``web`` behind the router rolling: a
surge instance is ready before each old one stops, so the router never runs dry); a ``.env``
change restarts everything with the new values; a Procfile change is re-read
and only the difference applied. A Procfile broken by an edit is reported and
the running formation kept.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import watchfiles

from procrun.fresh import slug
from procrun.errors import ConfigError
from procrun.project.plan import RELEASE_TYPE, Instance, type_of, with_port
from procrun.supervise.machine import DONE_STATES, AfterStop, State
from procrun.project.procfile import Procfile
from procrun.project.settings import TypeSettings
from procrun.supervise.session import Service
from procrun.watch.plan import RestartGuard, classify, procfile_diff

if TYPE_CHECKING:
    from procrun.supervise.session import Session
    from procrun.supervise.shared import Shared



class Live(Protocol):
    """The app definitions a watch can change: supplied by procrun.app."""

    root: str
    procfile: Procfile
    procfile_path: str
    env_paths: tuple[str, ...]
    config_path: str

    def reload_procfile(self) -> Procfile: ...
    def reload_env(self) -> None: ...
    def make_instance(self, type_name: str, index: int) -> Instance: ...
    def add_type(self, type_name: str) -> None: ...


class Filter(watchfiles.DefaultFilter):
    """watchfiles' defaults (.git, caches, editor files) plus .procrun and configured patterns."""

    def __init__(self, root: str, patterns: Iterable[str]) -> None:
        super().__init__(ignore_dirs=(*watchfiles.DefaultFilter.ignore_dirs, ".procrun"))
        self.root = root
        self.patterns = tuple(patterns)
        self.own = _own_output_files()

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        rel = os.path.relpath(path, self.root)
        return not slug.ignored(rel, (*slug.ALWAYS_IGNORED, *self.patterns)) and not self._is_own(path)

    def _is_own(self, path: str) -> bool:
        """procrun's own stdout/stderr redirected into the app root (procrun start > out.txt)."""
        if not self.own:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self.own


def _own_output_files() -> frozenset[tuple[int, int]]:
    found = set()
    for fd in (1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.add((st.st_dev, st.st_ino))
    return frozenset(found)


class WatchService(Service):
    def __init__(self, session: Session, shared: Shared, live: Live, paths: Iterable[str], ignore: Iterable[str] = (),
                 debounce: float = 0.3, globs: Mapping[str, tuple[str, ...]] | None = None,
                 rolling: Iterable[str] = ("web",)) -> None:
        super().__init__(session)
        self.shared = shared
        self.live = live
        self.paths = [os.path.join(live.root, p) for p in paths] or [live.root]
        self.filter = Filter(live.root, ignore)
        self.debounce = debounce
        self.globs = dict(globs or {})
        self.rolling = set(rolling)
        self.guard = RestartGuard()
        self._deploying: list[str] = []  # the types a deploy restarts once its release completes
        shared.exited.append(self._exited)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        session = self.session
        for path in self.paths:
            if not os.path.exists(path):
                raise ConfigError(path, None, "watch path does not exist", "name a file or folder in the app root")
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._ended)
        shown = ", ".join(os.path.relpath(p, self.live.root) for p in self.paths)
        session.say(f"watching {shown} for changes", "watch")

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A watcher that dies must say so, not leave the user waiting for restarts."""
        if not task.cancelled() and task.exception() is not None:
            self.session.say(f"stopped watching: {task.exception()!r}", "watch")

    async def _run(self) -> None:
        async for batch in watchfiles.awatch(*self.paths, watch_filter=self.filter, debounce=int(self.debounce * 1000),
                                             step=50, stop_event=self._stop, rust_timeout=5000):
            paths = {os.path.relpath(p, self.live.root) for _, p in batch}
            self.apply(paths)

    def apply(self, paths: set[str]) -> None:
        session = self.session
        if session.machine.ending is not None:
            return
        rel = lambda p: os.path.relpath(p, self.live.root)  # noqa: E731
        changes = classify(paths, rel(self.live.procfile_path), [rel(p) for p in self.live.env_paths],
                           rel(self.live.config_path), self.globs, list(self.live.procfile.names))
        shown = ", ".join(changes.paths[:3]) + (f" and {len(changes.paths) - 3} more" if len(changes.paths) > 3 else "")
        session.say(f"changed: {shown}", "watch")
        if changes.config:
            session.say(f"{rel(self.live.config_path)} changed: restart procrun to apply it", "watch")
        restart: set[str] = set()
        if changes.procfile:
            restart |= self._procfile()
        if changes.env:
            try:
                self.live.reload_env()
            except ConfigError as exc:
                session.say(f"{exc} (keeping the running processes)", "watch")
            else:
                restart |= set(session.machine.formation())
        restart |= set(changes.types)
        if changes.types and session.fresh is not None:
            session.fresh.refresh()  # fresh directories get the new code
        ordered = [t for t in self.live.procfile.names if t in restart and self._allowed(t, changes.paths)
                   and t != RELEASE_TYPE]
        release = session.machine.get(f"{RELEASE_TYPE}.1")
        if release is not None and ordered and (changes.types or changes.env):
            self.deploy(release.name, ordered)
            return
        self.restart(ordered)

    def restart(self, types: Iterable[str]) -> None:
        for type_name in sorted(types, key=lambda t: t in self.rolling):  # instant restarts first
            self.restart_type(type_name)

    def deploy(self, release: str, types: list[str]) -> None:
        """A deploy with a release phase: release runs again (the new code, the new .env), and the
        types restart once it completes; if it fails the running formation is kept."""
        session = self.session
        self._deploying = list(dict.fromkeys([*self._deploying, *types]))
        self._redefine(release)
        session.say(f"running {release} before restarting {', '.join(self._deploying)}", "watch")
        session.apply(session.machine.restart_procs([release], session.clock()))

    def _exited(self, name: str) -> None:
        """An instance ended: a deploy's release that completed lets its restarts go."""
        proc = self.session.machine.get(name)
        if not self._deploying or proc is None or proc.type != RELEASE_TYPE or proc.state not in DONE_STATES:
            return
        types, self._deploying = self._deploying, []
        if proc.state is State.COMPLETED:
            self.restart(types)
        else:
            self.session.say(f"not restarting {', '.join(types)}: {name} did not complete", "watch")

    def _allowed(self, type_name: str, paths: Iterable[str]) -> bool:
        allowed, why = self.guard.allow(type_name, paths, self.session.clock())
        if why is not None:
            self.session.say(why, "watch")
        return allowed

    def restarted(self, names: Iterable[str]) -> None:
        """`procrun restart` resumes watch restarts of those types."""
        self.guard.resume({type_of(name) for name in names})

    def _procfile(self) -> set[str]:
        """Apply a Procfile edit; returns the types whose command changed."""
        session = self.session
        old = self.live.procfile
        try:
            new = self.live.reload_procfile()
        except ConfigError as exc:
            session.say(f"{exc} (keeping the running formation)", "watch")
            return set()
        added, removed, changed = procfile_diff(old, new)
        now = session.clock()
        for type_name in removed:
            session.say(f"Procfile: {type_name} removed; stopping it", "watch")
            session.apply(session.machine.scale(type_name, 0, now))
            session.machine.forget_type(type_name)
        for type_name in added:
            session.say(f"Procfile: {type_name} added; starting it", "watch")
            self.live.add_type(type_name)
            session.apply(session.machine.scale(type_name, 1, now))
        if changed:
            session.say(f"Procfile: command of {', '.join(changed)} changed", "watch")
        if not (added or removed or changed):
            session.say("Procfile: no change to apply", "watch")
        return set(changed)

    def _redefine(self, name: str) -> None:
        """Next start of ``name`` uses the current command and environment, on its port."""
        machine = self.session.machine  # type: ignore[union-attr]
        proc = machine.get(name)
        assert proc is not None
        fresh = self.live.make_instance(proc.instance.type, proc.instance.index)
        if proc.instance.port is not None:
            fresh = with_port(fresh, proc.instance.port)
        machine.redefine(name, fresh)

    def restart_type(self, type_name: str) -> None:
        """A new release of the type: its instances restart with the new definition (web rolling)."""
        session = self.session
        machine = session.machine
        names = [p.name for p in sorted(machine.of_type(type_name), key=lambda p: p.instance.index)
                 if p.after_stop is not AfterStop.REMOVE]
        if not names:
            return
        self.shared.release += 1  # what the new instances answer is never compared with the old ones
        for name in names:
            self._redefine(name)
        running = [n for n in names if machine.get(n).pid is not None]  # type: ignore[union-attr]
        if type_name not in self.rolling or not running or machine.rolling(type_name):
            session.say(f"restarting {', '.join(names)}", "watch")
            session.apply(machine.restart_procs(names, session.clock()))
            return
        session.apply(machine.roll(type_name, names, session.clock()))


def type_globs(types: Mapping[str, TypeSettings]) -> dict[str, tuple[str, ...]]:
    """procrun.yaml ``types.X.watch`` globs, for the types that have them."""
    return {t: c.watch for t, c in types.items() if c.watch}
