"""Where procrun meets the operating system's process table, in two implementations.

``linux``: the child subreaper (orphans come back to procrun) and the kernel's process files; the fast
path, chosen on Linux. ``portable``: POSIX calls and psutil (descendants by session marker
and process group, CPU/RSS, working directories, listening sockets), for macOS and other
Unixes; ``PROCRUN_PLATFORM=portable`` forces it on Linux (CI runs the platform-sensitive
tests both ways). Every other module calls ``backend()``, never the process files directly.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

NAMES = ("linux", "portable")
_chosen: ModuleType | None = None


def name() -> str:
    forced = os.environ.get("PROCRUN_PLATFORM", "")
    if forced in NAMES:
        return forced
    return "linux" if sys.platform.startswith("linux") else "portable"


def backend() -> ModuleType:
    """The backend, chosen once per process."""
    global _chosen
    if _chosen is None:
        if name() == "linux":
            from procrun.platform import linux as chosen
        else:
            from procrun.platform import portable as chosen
        _chosen = chosen
    return _chosen


def stopping_signals() -> tuple[int, ...]:
    """Every signal whose default is to end a process and that another process sends: each
    stops a session as SIGTERM does (the children get their grace), exit 128 + N, and the
    guardian ignores them all (a signal to procrun's group must not end it). Left at their
    default: the ones the kernel raises for a fault in procrun itself (SEGV, BUS, FPE, ILL,
    ABRT, TRAP, SYS: handling them cannot help), SIGKILL and SIGSTOP (not catchable), SIGPIPE
    (Python ignores it; a closed output is handled where it is written)."""
    import signal

    names = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF",
             "SIGIO", "SIGPWR", "SIGXCPU", "SIGXFSZ", "SIGSTKFLT")
    found = [int(getattr(signal, name)) for name in names if hasattr(signal, name)]
    if hasattr(signal, "SIGRTMIN"):
        found += range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
    return tuple(dict.fromkeys(found))
