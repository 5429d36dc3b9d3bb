"""The Machine's way out: shutdown with escalation, the second interrupt, and the end
of the session. Pure; mixed into ``Machine``, which owns the table."""

from __future__ import annotations

import signal

from procrun.supervise.states import MachineBase, Action, Finish, Kill, Proc, Say, State, Sweep


class ShutdownMixin(MachineBase):
    _procs: dict[str, Proc]
    ending: int | None
    deadline: float | None
    killed: bool

    def shutdown(self, code: int, now: float, reason: str = "") -> list[Action]:
        """Stop everything: the stop signal now, SIGKILL at the deadline, then Finish."""
        if self.ending is not None:
            return []
        self.ending = code
        self.deadline = now + max([self.timeout, *(self.grace(p) for p in self.live())])
        actions: list[Action] = [Say(reason)] if reason else []
        for proc in self._procs.values():
            proc.due = None
            if proc.pid is None:
                proc.state = State.EXITED
                continue
            paused = proc.state is State.PAUSED
            proc.state = State.STOPPING
            proc.stop_requested = proc.stop_requested or now
            sig = self.stop_signal(proc)
            actions.append(Say(f"sending {signal.Signals(sig).name} to {proc.name} (pid {proc.pid})"))
            actions.append(Kill(proc.name, proc.pid, sig))
            actions += self._continued(proc, paused)
        actions.append(Sweep(signal.SIGTERM))
        return actions + self._maybe_finish()

    def hurry(self, now: float) -> list[Action]:
        """A second interrupt during shutdown: kill at once."""
        if self.ending is None or self.killed:
            return []
        return self._kill_all("second interrupt")


    def _maybe_end(self, now: float) -> list[Action]:
        if self.ending is None and all(p.state is State.EXITED for p in self._procs.values()):
            return self.shutdown(0, now, "nothing left to supervise")
        return []

    def _maybe_finish(self) -> list[Action]:
        if self.ending is not None and not self.live():
            return [Finish(self.ending)]
        return []

    def _kill_all(self, why: str) -> list[Action]:
        self.killed = True
        actions: list[Action] = []
        for proc in self.live():
            actions.append(Say(f"sending SIGKILL to {proc.name} (pid {proc.pid}) ({why})"))
            actions.append(Kill(proc.name, proc.pid, signal.SIGKILL))  # type: ignore[arg-type]
        actions.append(Sweep(signal.SIGKILL))
        return actions
