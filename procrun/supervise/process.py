"""Process effects: spawning groups, signalling, reaping, finding descendants."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from procrun.errors import UsageError
from procrun.project.plan import fd_budget

PR_SET_CHILD_SUBREAPER = 36
# Signals a parent shell may have set to "ignore"; an ignored disposition survives
# exec, so procrun resets them to default once and its children inherit that.
_RESET = ("SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM")


def become_subreaper() -> bool:
    """Orphaned descendants get reparented to us, so we can reap and kill them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reset_ignored_signals() -> None:
    for name in _RESET:
        sig = getattr(signal, name)
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


@dataclass
class Child:
    """A spawned ``sh -c`` group leader and the read end of its output pipe."""

    popen: subprocess.Popen[bytes]
    fd: int  # a pipe's read end, or a pseudo-terminal's master (read and write)
    tty: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self, returncode: int) -> None:
        """Reaped by us (waitpid): Popen must not wait for it again."""
        self.popen.returncode = returncode


def spawn(command: str, env: Mapping[str, str], cwd: str, tty: bool = False) -> Child:
    """Run ``/bin/sh -c command`` as the leader of a new session and group.

    stdout and stderr share one non-blocking pipe; stdin is /dev/null. With ``tty``, all three
    are a new pseudo-terminal instead, the child's controlling terminal (debuggers, REPLs, colours).
    """
    if tty:
        return _spawn_tty(command, env, cwd)
    read_fd, write_fd = os.pipe()
    try:
        popen = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd,
            cwd=cwd, env=dict(env), start_new_session=True, close_fds=True, restore_signals=True)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Child(popen, read_fd)


def _spawn_tty(command: str, env: Mapping[str, str], cwd: str) -> Child:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        popen = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=dict(env),
            start_new_session=True, close_fds=True, restore_signals=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))  # after setsid: the session's terminal
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return Child(popen, master, tty=True)


def signal_group(pid: int, sig: int) -> None:
    """Signal the whole group led by ``pid``; the leader alone if the group is gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    except PermissionError:
        pass


def reap() -> list[tuple[int, int]]:
    """Collect every finished child (ours or reparented orphans) without blocking.

    Returns (pid, returncode) with Popen's convention: -N for death by signal N.
    """
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        done.append((pid, os.waitstatus_to_exitcode(status)))
    return done


def _processes() -> list[tuple[int, list[bytes]]]:
    """Every process as (pid, the fields of /proc/PID/stat after the command name).

    Field 0 is the state, 1 the parent pid, 2 the process group, 11/12 user/system
    CPU ticks and 21 the RSS in pages. Processes that vanish while reading are skipped.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        found.append((int(entry), data[data.rfind(b")") + 2:].split()))
    return found


def descendants(root: int) -> list[tuple[int, int]]:
    """Live (non-zombie) descendants of ``root`` as (pid, pgrp), from /proc."""
    children: dict[int, list[tuple[int, int]]] = {}
    for pid, fields in _processes():
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append((pid, int(fields[2])))
    found, queue = [], [root]
    while queue:
        for pid, pgrp in children.get(queue.pop(), ()):
            found.append((pid, pgrp))
            queue.append(pid)
    return found


def group_usage(groups: set[int]) -> dict[int, tuple[float, int]]:
    """CPU seconds and RSS bytes summed over each process group, from /proc."""
    hz = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    usage: dict[int, tuple[float, int]] = {}
    for _, fields in _processes():
        pgrp = int(fields[2])
        if pgrp in groups:
            cpu, rss = usage.get(pgrp, (0.0, 0))
            usage[pgrp] = (cpu + (int(fields[11]) + int(fields[12])) / hz, rss + int(fields[21]) * page)
    return usage


def cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def ensure_open_files(instances: int) -> None:
    """Raise the soft RLIMIT_NOFILE as far as the formation needs (up to the hard limit),
    or refuse before anything starts."""
    import resource

    need = fd_budget(instances)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
        if soft < need:
            raise UsageError(f"{instances} instances need about {need} open files, but the limit is {soft} "
                             "(ulimit -n); run fewer instances or raise the limit")


@dataclass(frozen=True)
class Effects:
    """The process effects a Session uses; tests pass fakes (no real processes)."""

    spawn: Callable[..., Child]  # (command, env, cwd, tty=False)
    reap: Callable[[], list[tuple[int, int]]]
    signal_group: Callable[[int, int], None]
    descendants: Callable[[int], list[tuple[int, int]]]
    listening: Callable[[int], set[int]]  # the TCP ports a process group listens on
    guardian: bool = True  # start the SIGKILL guardian (a real /bin/sh)


def real_effects() -> Effects:
    return Effects(spawn, reap, signal_group, descendants, listening_ports)


def kill_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass



LISTEN = "0A"


def listening_ports(group: int) -> set[int]:
    """TCP ports (IPv4 and IPv6, loopback included) on which any process of the group listens."""
    inodes: set[str] = set()
    for pid, pgrp in _group_members(group):
        try:
            links = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in links:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    if not inodes:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                ports |= {port for port, inode in parse_listeners(f.read()) if inode in inodes}
        except OSError:
            continue
    return ports


def parse_listeners(text: str) -> list[tuple[int, str]]:
    """(port, socket inode) of each LISTEN row of /proc/net/tcp or tcp6."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == LISTEN:
            out.append((int(fields[1].rsplit(":", 1)[1], 16), fields[9]))
    return out


def _group_members(group: int) -> list[tuple[int, int]]:
    return [(pid, int(fields[2])) for pid, fields in _processes() if int(fields[2]) == group]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (for web instances behind the router)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
