"""The portable backend: POSIX calls and psutil, for macOS and the other Unixes.

No subreaper here, so a descendant that daemonises (double fork, setsid) is reparented
to init, not to procrun. It is still found: every child inherits ``PROCRUN_SESSION=
<procrun's pid>-<random>``, which psutil reads from the environment of the user's own
processes. An orphan reparented to a PID 1 that never reaps counts as gone once it is a zombie.
"""

from __future__ import annotations

import os
import sys

MARKER_VAR = "PROCRUN_SESSION"

GUARDIAN = r'''
import os, shutil, signal, sys
marker, keep, roots = sys.argv[1], sys.argv[2], []
for sig in map(int, sys.argv[3].split()):  # a signal to procrun's group spares it
    signal.signal(sig, signal.SIG_IGN)
for line in sys.stdin:
    line = line.rstrip("\n")
    if line == "clean":
        sys.exit(0)
    if line.startswith("/"):
        roots.append(line)
import psutil
for _ in range(20):
    found = False
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get("PROCRUN_SESSION") == marker:
                proc.kill()
                found = True
        except psutil.Error:
            pass
    if not found:
        break
if keep != "keep":
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
'''


def guardian_command(marker: str, keep: bool) -> list[str]:
    """A small Python process that waits on its pipe and then kills by marker with psutil."""
    from procrun.platform import stopping_signals

    return [sys.executable, "-c", GUARDIAN, marker, "keep" if keep else "", " ".join(map(str, stopping_signals()))]


def copy_command() -> list[str]:
    """Copies a fresh directory: clonefile on macOS (APFS clones cost no space), else a plain
    copy; modes, times and symlinks kept."""
    return ["cp", "-c", "-pPR"] if sys.platform == "darwin" else ["cp", "-pPR"]


def become_subreaper() -> bool:
    return False


def _live(proc) -> bool:  # type: ignore[no-untyped-def]
    import psutil

    return proc.status() != psutil.STATUS_ZOMBIE


def descendants(root: int) -> list[tuple[int, int]]:
    """Live descendants of ``root`` as (pid, pgrp): its process tree, and every process whose
    environment carries a marker of the session ``root`` runs (daemonised orphans)."""
    import psutil

    found: dict[int, int] = {}
    try:
        tree = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        tree = []
    for proc in tree:
        try:
            if _live(proc):
                found[proc.pid] = os.getpgid(proc.pid)
        except (psutil.Error, OSError):
            continue
    prefix = f"{root}-"
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == root:
            continue
        try:
            if proc.environ().get(MARKER_VAR, "").startswith(prefix) and _live(proc):
                found[proc.pid] = os.getpgid(proc.pid)
        except (psutil.Error, OSError):
            continue
    return list(found.items())


def _members(groups: set[int]):  # type: ignore[no-untyped-def]
    """(process, its group) for every process in one of ``groups``."""
    import psutil

    for proc in psutil.process_iter():
        try:
            pgrp = os.getpgid(proc.pid)
        except OSError:
            continue
        if pgrp in groups:
            yield proc, pgrp


def group_usage(groups: set[int]) -> dict[int, tuple[float, int]]:
    """CPU seconds and RSS bytes summed over each process group."""
    import psutil

    usage: dict[int, tuple[float, int]] = {}
    for proc, pgrp in _members(groups):
        try:
            times, rss = proc.cpu_times(), proc.memory_info().rss
        except psutil.Error:
            continue
        cpu, total = usage.get(pgrp, (0.0, 0))
        usage[pgrp] = (cpu + times.user + times.system, total + rss)
    return usage


def halted(pid: int) -> bool:
    """The process is stopped (SIGSTOP, Ctrl-Z) or held by a debugger (ptrace): not dead."""
    import psutil

    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except psutil.Error:
        return False


def cwd_of(pid: int) -> str | None:
    import psutil

    try:
        return psutil.Process(pid).cwd() or None
    except psutil.Error:
        return None


def listening_ports(group: int) -> set[int]:
    """TCP ports on which any process of the group listens (psutil reads the user's own processes)."""
    import psutil

    ports = set()
    for proc, _ in _members({group}):
        try:
            connections = proc.net_connections(kind="tcp")
        except (psutil.Error, OSError):
            continue
        ports |= {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN and c.laddr}
    return ports


def port_holder(port: int) -> tuple[int, str] | None:
    """The pid and command line of a process listening on ``port``, when psutil may see it."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for c in connections:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            try:
                return c.pid, " ".join(psutil.Process(c.pid).cmdline())
            except psutil.Error:
                return c.pid, "?"
    return None


def listens_on(port: int) -> set[str] | None:
    """Here there is no cheap way to tell a listener from a connection's local port: None
    (the caller tries to bind the port instead)."""
    return None


def outgoing_ports_start() -> int:
    """The first port outgoing connections get: not known here (0)."""
    return 0


def cgroup_enter(name: str) -> str | None:
    """No cgroups here: the guardian finds what the session started by its marker alone."""
    return None


def cgroup_leave(path: str) -> None:
    """(Nothing to leave.)"""
