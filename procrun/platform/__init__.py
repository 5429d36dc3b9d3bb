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

