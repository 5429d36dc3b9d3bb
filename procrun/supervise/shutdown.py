"""The way out, a part the Machine owns: shutdown with escalation, the second interrupt, and
the end of the session. Pure."""

from __future__ import annotations

import signal

from procrun.supervise.states import Action, Finish, Kill, Rules, Say, State, Sweep, continued
from procrun.supervise.table import Table


class Ending:
    """Whether the session is ending, with which code, and until when each group has to stop."""

    def __init__(self) -> None:
        self.code: int | None = None
        self.deadline: float | None = None
        self.killed = False

    def begin(self, table: Table, rules: Rules, code: int, now: float, reason: str = "") -> list[Action]:
        """Stop everything: each stop signal now, SIGKILL at the deadline, then Finish."""
        if self.code is not None:
            return []
        self.code = code
        self.deadline = now + max([rules.timeout, *(rules.grace(p) for p in table.live())])
        actions: list[Action] = [Say(reason)] if reason else []
        for proc in table.all():
            proc.due = None
            if proc.pid is None:
                proc.state = State.COMPLETED if proc.state is State.COMPLETED else State.EXITED
                continue
            paused = proc.state is State.PAUSED
            proc.state = State.STOPPING
            proc.stop_requested = proc.stop_requested or now
            sig = rules.stop_signal(proc)
            actions.append(Say(f"sending {signal.Signals(sig).name} to {proc.name} (pid {proc.pid})"))
            actions.append(Kill(proc.name, proc.pid, sig))
            actions += continued(proc, paused)
        actions.append(Sweep(signal.SIGTERM))
        return actions + self.finished(table)

    def hurry(self, table: Table) -> list[Action]:
        """A second interrupt during shutdown: kill at once."""
        if self.code is None or self.killed:
            return []
        return self.kill_all(table, "second interrupt")

    def due(self, table: Table, now: float) -> list[Action]:
        """The deadline passed with groups still alive: kill them."""
        if self.deadline is not None and not self.killed and now >= self.deadline:
            return self.kill_all(table, "timeout")
        return []

    def overdue(self, now: float) -> bool:
        """Killing, or past the grace: what is left gets SIGKILL."""
        return self.killed or (self.deadline is not None and now >= self.deadline)

    def next_deadline(self) -> list[float]:
        return [self.deadline] if self.deadline is not None and not self.killed else []

    def finished(self, table: Table) -> list[Action]:
        if self.code is not None and not table.live():
            return [Finish(self.code)]
        return []

    def kill_all(self, table: Table, why: str) -> list[Action]:
        self.killed = True
        actions: list[Action] = []
        for proc in table.live():
            actions.append(Say(f"sending SIGKILL to {proc.name} (pid {proc.pid}) ({why})"))
            actions.append(Kill(proc.name, proc.pid, signal.SIGKILL))  # type: ignore[arg-type]
        actions.append(Sweep(signal.SIGKILL))
        return actions
