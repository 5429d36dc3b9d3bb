"""The Machine's transitions that change the formation or disturb instances on request:
stop, restart, scale, chaos disruptions. Pure; mixed into ``Machine``, which owns the table."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable

from procrun.errors import ProcrunError
from procrun.project.plan import Instance, port_clash
from procrun.supervise.states import MachineBase, Action, AfterStop, Kill, Proc, State


class FormationMixin(MachineBase):
    _procs: dict[str, Proc]
    _wanted: dict[str, int]
    make_instance: Callable[[str, int], Instance] | None
    cap: int

    def formation(self) -> dict[str, int]:
        """The formation asked for (at start or by scale), zeros included."""
        return dict(self._wanted)

    def forget_type(self, type_name: str) -> None:
        """A type gone from the Procfile (after scaling it to 0)."""
        self._wanted.pop(type_name, None)

    def resolve(self, targets: Iterable[str]) -> list[str]:
        """Instance names for TYPE or NAME targets; all when none. ValueError names the unknown."""
        targets = list(targets)
        if not targets:
            return list(self._procs)
        names: list[str] = []
        for target in targets:
            found = [n for n, p in self._procs.items() if target in (n, p.type)]
            if not found:
                known = ", ".join(self._procs) or "none"
                raise ValueError(f"no process or type named {target!r}; running: {known}")
            names += [n for n in found if n not in names]
        return names

    def stop(self, names: Iterable[str], now: float, then: AfterStop = AfterStop.NOTHING) -> list[Action]:
        actions: list[Action] = []
        for name in names:
            proc = self._procs[name]
            if proc.state is State.BACKOFF or (proc.pid is None and proc.state is not State.STOPPING):
                actions += self._not_running(proc, now, then)
                continue
            if then is not AfterStop.NOTHING:
                proc.after_stop = then
            if proc.state is State.STOPPING:
                continue
            paused = proc.state is State.PAUSED
            proc.state, proc.due, proc.stop_requested = State.STOPPING, now + self.grace(proc), now
            actions.append(Kill(name, proc.pid, self.stop_signal(proc)))  # type: ignore[arg-type]
            actions += self._continued(proc, paused)
        return actions

    def _not_running(self, proc: Proc, now: float, then: AfterStop) -> list[Action]:
        proc.due = None
        if then in (AfterStop.RESTART, AfterStop.RELOCATE):
            return self._spawn(proc, now)
        if then is AfterStop.REMOVE:
            del self._procs[proc.name]
        else:
            proc.state = State.EXITED
        return []

    def restart_procs(self, names: Iterable[str], now: float) -> list[Action]:
        return self.stop(names, now, then=AfterStop.RESTART)

    def disrupt(self, name: str, action: str, now: float, pause_for: float = 0.0) -> list[Action]:
        """A chaos action on one running instance. Never ends the session."""
        proc = self._procs.get(name)
        if proc is None or proc.pid is None or proc.state not in (State.RUNNING, State.STARTING):
            return []
        if action in ("restart", "relocate"):
            return self.stop([name], now, then=AfterStop(action))
        if action == "kill":
            proc.state, proc.after_stop, proc.stop_requested = State.STOPPING, AfterStop.RESTART, now
            return [Kill(name, proc.pid, signal.SIGKILL)]
        if action == "pause":
            proc.resume_to, proc.state, proc.due = proc.state, State.PAUSED, now + pause_for
            return [Kill(name, proc.pid, signal.SIGSTOP)]
        raise ValueError(f"unknown chaos action {action!r}")

    def scale(self, type_name: str, count: int, now: float) -> list[Action]:
        """After this, ``count`` instances of the type run (stopped ones are started again).

        Every new instance is built and checked (cap, port range, port clash) before
        anything changes, so a refused scale (ValueError) leaves the session as it was."""
        if count > self.cap:
            raise ValueError(f"{type_name}={count} is more than {self.cap} instances of a type; "
                             "set max_instances in procrun.yaml if you mean it")
        mine = sorted((p for p in self._procs.values() if p.type == type_name and p.after_stop is not AfterStop.REMOVE),
                      key=lambda p: (p.state is State.EXITED, p.instance.index))
        added = self._new_instances(type_name, count - len(mine))
        self._wanted[type_name] = count
        actions: list[Action] = []
        if mine[count:]:
            actions += self.stop([p.name for p in reversed(mine[count:])], now, then=AfterStop.REMOVE)
        for proc in mine[:count]:
            if proc.state is State.EXITED:  # stopped earlier (procrun stop): start it again
                actions += self._spawn(proc, now)
        for proc in added:
            self._procs[proc.name] = proc
            actions += self._spawn(proc, now)
        order = {t: i for i, t in enumerate(dict.fromkeys(p.type for p in self._procs.values()))}
        self._procs = dict(sorted(self._procs.items(), key=lambda kv: (order[kv[1].type], kv[1].instance.index)))
        return actions

    def _new_instances(self, type_name: str, how_many: int) -> list[Proc]:
        if self.make_instance is None:
            raise RuntimeError("scaling needs make_instance")
        used = {p.instance.index for p in self._procs.values() if p.type == type_name}
        indices = [i for i in range(1, len(used) + how_many + 1) if i not in used][:max(0, how_many)]
        try:
            added = [Proc(self.make_instance(type_name, index)) for index in indices]
        except ProcrunError as exc:
            raise ValueError(str(exc)) from None
        taken = {p.instance.port: p.name for p in self._procs.values() if p.instance.port is not None}
        clash = port_clash([p.instance for p in added], taken)
        if clash is not None:
            raise ValueError(clash)
        return added
