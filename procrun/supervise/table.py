"""The Machine's table of processes, a part it owns: every instance's record, the pid index,
the formation asked for, and the queries callers ask. Pure; only the Machine changes it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from procrun.errors import ProcrunError
from procrun.project.plan import RELEASE_TYPE, Instance, port_clash
from procrun.supervise.order import COMPLETED
from procrun.supervise.states import DISRUPTABLE_STATES, DONE_STATES, AfterStop, Proc, State


class Table:
    """Instances in Procfile order then index, by name and by pid."""

    def __init__(self, instances: Iterable[Instance], counts: Mapping[str, int] | None = None) -> None:
        self._procs: dict[str, Proc] = {i.name: Proc(i) for i in instances}
        self._by_pid: dict[int, str] = {}
        self._wanted: dict[str, int] = dict(counts or {})
        for proc in self._procs.values():
            self._wanted.setdefault(proc.type, 0)
            if counts is None:
                self._wanted[proc.type] += 1

    # -- queries
    def get(self, name: str) -> Proc | None:
        return self._procs.get(name)

    def __getitem__(self, name: str) -> Proc:
        return self._procs[name]

    def all(self) -> list[Proc]:
        return list(self._procs.values())

    def names(self) -> list[str]:
        return list(self._procs)

    def of_type(self, type_name: str) -> list[Proc]:
        return [p for p in self._procs.values() if p.type == type_name]

    def ready(self, type_name: str) -> list[Proc]:
        """Running (ready: its port answered), not paused, with a port."""
        return [p for p in self.of_type(type_name)
                if p.state is State.RUNNING and p.pid is not None and p.instance.port is not None]

    def type_ready(self, type_name: str) -> bool:
        """Every instance of the type is up and has been ready (start order waits for this)."""
        return all(p.pid is not None and p.ready_after is not None and p.state in (State.RUNNING, State.PAUSED)
                   for p in self.of_type(type_name))

    def met(self, type_name: str, condition: str) -> bool:
        """A start-order condition: every instance of the type ready, or (one-shots) completed."""
        if condition == COMPLETED:
            procs = self.of_type(type_name)
            return bool(procs) and all(p.state is State.COMPLETED for p in procs)
        return self.type_ready(type_name)

    def disruptable(self) -> list[Proc]:
        """What chaos may pick: running or starting, never the release phase (a deploy step)."""
        return [p for p in self._procs.values()
                if p.pid is not None and p.state in DISRUPTABLE_STATES and p.type != RELEASE_TYPE]

    def live(self) -> list[Proc]:
        return [p for p in self._procs.values() if p.pid is not None]

    def name_of(self, pid: int) -> str | None:
        return self._by_pid.get(pid)

    def formation(self) -> dict[str, int]:
        """The formation asked for (at start or by scale), zeros included."""
        return dict(self._wanted)

    def running(self) -> dict[str, int]:
        """The formation that runs: per type, its instances not exited or stopped, at most as many
        as asked for (those a scale-down is stopping are not counted)."""
        active: dict[str, int] = {}
        for proc in self._procs.values():
            if proc.state not in DONE_STATES:
                active[proc.type] = active.get(proc.type, 0) + 1
        return {t: min(wanted, active.get(t, 0)) for t, wanted in self._wanted.items()}

    def resolve(self, targets: Iterable[str]) -> list[str]:
        """Instance names for TYPE or NAME targets; all when none. ValueError names the unknown."""
        targets = list(targets)
        if not targets:
            return list(self._procs)
        names: list[str] = []
        for target in targets:
            found = [n for n, p in self._procs.items() if target in (n, p.type)]
            if not found:
                raise ValueError(f"no process or type named {target!r}; running: {', '.join(self._procs) or 'none'}")
            names += [n for n in found if n not in names]
        return names

    # -- changes, made by the Machine
    def bind(self, proc: Proc, pid: int) -> None:
        proc.pid = pid
        self._by_pid[pid] = proc.name

    def unbind(self, pid: int) -> Proc | None:
        name = self._by_pid.pop(pid, None)
        return self._procs[name] if name is not None else None

    def remove(self, proc: Proc) -> None:
        del self._procs[proc.name]

    def forget_type(self, type_name: str) -> None:
        """A type gone from the Procfile (after scaling it to 0)."""
        self._wanted.pop(type_name, None)

    def ask(self, type_name: str, count: int) -> list[Proc]:
        """Record the formation asked for; the type's instances not being removed, those that
        ran first, then by index."""
        self._wanted[type_name] = count
        return sorted((p for p in self.of_type(type_name) if p.after_stop is not AfterStop.REMOVE),
                      key=lambda p: (p.state in DONE_STATES, p.instance.index))

    def new(self, type_name: str, count: int, make: Callable[[str, int], Instance] | None, cap: int) -> list[Proc]:
        """Records for the instances a type needs to have ``count`` (those being removed do not
        count), on the lowest free indices, built and checked (cap, port range, port clash)
        before any is added; ValueError says why not."""
        if count > cap:
            raise ValueError(f"{type_name}={count} is more than {cap} instances of a type; "
                             "set max_instances in procrun.yaml if you mean it")
        if make is None:
            raise RuntimeError("scaling needs make_instance")
        how_many = count - sum(p.after_stop is not AfterStop.REMOVE for p in self.of_type(type_name))
        used = {p.instance.index for p in self.of_type(type_name)}
        indices = [i for i in range(1, len(used) + how_many + 1) if i not in used][:max(0, how_many)]
        try:
            added = [Proc(make(type_name, index)) for index in indices]
        except ProcrunError as exc:
            raise ValueError(str(exc)) from None
        taken = {p.instance.port: p.name for p in self._procs.values() if p.instance.port is not None}
        clash = port_clash([p.instance for p in added], taken)
        if clash is not None:
            raise ValueError(clash)
        return added

    def add(self, procs: Iterable[Proc]) -> None:
        """New records, kept in Procfile order then index."""
        for proc in procs:
            self._procs[proc.name] = proc
        order = {t: i for i, t in enumerate(dict.fromkeys(p.type for p in self._procs.values()))}
        self._procs = dict(sorted(self._procs.items(), key=lambda kv: (order[kv[1].type], kv[1].instance.index)))
