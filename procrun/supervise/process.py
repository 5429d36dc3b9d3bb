"""Process effects: spawning groups, signalling, reaping; what the process table holds comes
from the platform backend (procrun.platform)."""

from __future__ import annotations

import os
import sys
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from procrun.errors import UsageError
from procrun.platform import backend
from procrun.project.plan import fd_budget

# Signals a parent shell may have set to "ignore"; an ignored disposition survives
# exec, so procrun resets them to default once and its children inherit that.
_RESET = ("SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM")


def become_subreaper() -> bool:
    """Orphaned descendants come back to us (Linux); False where the platform has no such thing."""
    return backend().become_subreaper()  # type: ignore[no-any-return]


def reset_ignored_signals() -> None:
    for name in _RESET:
        sig = getattr(signal, name)
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


class Child:
    """A spawned ``sh -c`` group leader and the read end of its output pipe."""

    __slots__ = ("popen", "fd", "tty")

    def __init__(self, popen: subprocess.Popen[bytes], fd: int, tty: bool = False) -> None:
        self.popen = popen
        self.fd = fd  # a pipe's read end, or a pseudo-terminal's master (read and write)
        self.tty = tty

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self, returncode: int) -> None:
        """Reaped by us (waitpid): Popen must not wait for it again."""
        self.popen.returncode = returncode


def spawn(command: str, env: Mapping[str, str], cwd: str, tty: bool = False, wrap: Sequence[str] = ()) -> Child:
    """Run ``/bin/sh -c command`` as the leader of a new session and group (behind ``wrap``, an
    argv prefix that execs it in the end: a fresh directory's copy-on-write view).

    stdout and stderr share one non-blocking pipe; stdin is /dev/null. With ``tty``, all three
    are a new pseudo-terminal instead, the child's controlling terminal (debuggers, REPLs, colours).
    """
    if tty:
        import pty

        ours, theirs = pty.openpty()  # the master end stays here, the child gets the terminal
        terminal_size(theirs)
        streams = (theirs, theirs, theirs)
    else:
        ours, theirs = os.pipe()
        streams = (subprocess.DEVNULL, theirs, theirs)
    try:
        popen = subprocess.Popen(
            [*wrap, "/bin/sh", "-c", command], stdin=streams[0], stdout=streams[1], stderr=streams[2], cwd=cwd,
            env=dict(env), start_new_session=True, close_fds=True, restore_signals=True,
            preexec_fn=_controlling_terminal if tty else None)
    except BaseException:
        os.close(ours)
        raise
    finally:
        os.close(theirs)
    os.set_blocking(ours, False)
    return Child(popen, ours, tty=tty)


def terminal_size(fd: int, rows: int = 24, columns: int = 80) -> None:
    """A pseudo-terminal's size (set on either end; the terminal's foreground group gets SIGWINCH)."""
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _controlling_terminal() -> None:
    """In the child, after setsid: the pseudo-terminal on fd 0 becomes its session's terminal."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


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


def descendants(root: int) -> list[tuple[int, int]]:
    """Live (non-zombie) descendants of ``root`` as (pid, pgrp), daemonised ones included."""
    return backend().descendants(root)  # type: ignore[no-any-return]


def group_usage(groups: set[int]) -> dict[int, tuple[float, int]]:
    """CPU seconds and RSS bytes summed over each process group."""
    return backend().group_usage(groups)  # type: ignore[no-any-return]


def cwd_of(pid: int) -> str | None:
    return backend().cwd_of(pid)  # type: ignore[no-any-return]


def listening_ports(group: int) -> set[int]:
    """TCP ports (IPv4 and IPv6, loopback included) on which any process of the group listens."""
    return backend().listening_ports(group)  # type: ignore[no-any-return]


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


class Effects(NamedTuple):
    """The process effects a Session uses; tests pass fakes (no real processes)."""

    spawn: Callable[..., Child]  # (command, env, cwd, tty, wrap=argv prefix)
    reap: Callable[[], list[tuple[int, int]]]
    signal_group: Callable[[int, int], None]
    descendants: Callable[[int], list[tuple[int, int]]]
    listening: Callable[[int], set[int]]  # the TCP ports a process group listens on
    guardian: bool = True  # start the SIGKILL guardian (a real /bin/sh)
    port_taken: Callable[[int], str | None] = lambda port: None  # who listens on a port already
    halted: Callable[[int], bool] = lambda pid: False  # stopped (SIGSTOP) or held by a debugger


def real_effects() -> Effects:
    return Effects(spawn, reap, signal_group, descendants, listening_ports, port_taken=port_taken,
                   halted=lambda pid: backend().halted(pid))


def kill_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass



def port_taken(port: int) -> str | None:
    """Whether something listens on ``port`` now (checked before an instance that should bind it
    starts): None when it is free, else who holds it, in words ("pid 4242 (python3 -m
    http.server)", or "another process" when the system does not say)."""
    chosen = backend()
    found = chosen.listens_on(port)  # listeners only: a connection's local port is none (None: cannot tell)
    free = not found if found is not None else _binds(port)
    if free:
        return None
    holder = chosen.port_holder(port)
    return f"pid {holder[0]} ({holder[1]})" if holder else "another process"


def _binds(port: int) -> bool:
    """Elsewhere than Linux: whether the port can be bound now (connections in TIME_WAIT aside)."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))  # fails when any address holds the port (127.0.0.1 or all)
            return True
        except OSError:
            return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing uses now (for web instances behind the router), below the range the
    system gives outgoing connections where it says which (Linux): an instance restarted later on
    the same port never finds it taken by some connection's local end (EADDRINUSE)."""
    import random
    import socket

    low = backend().outgoing_ports_start()
    for port in ([random.randrange(10000, low) for _ in range(50)] if low > 11000 else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free TCP port")


def without_tls() -> None:
    """A session speaks no TLS: keep asyncio from loading OpenSSL, several MiB per session.

    asyncio treats a missing ssl module as "no TLS support", which is exactly right here.
    """
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]
