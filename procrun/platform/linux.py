"""The Linux backend: the child subreaper and /proc. The only module that reads /proc."""

from __future__ import annotations

import os

PR_SET_CHILD_SUBREAPER = 36
LISTEN = "0A"

# (guardian_command puts the trap of every stopping signal before it)
GUARDIAN = r'''
marker="$1"; keep="$2"; roots=""; cg=""
ended() {  # the session's cgroup (when it has one): whatever is still in it, killed by the kernel
    [ -n "$cg" ] || return 0
    echo 1 > "$cg/cgroup.kill" 2>/dev/null || while read -r p; do kill -9 "$p"; done < "$cg/cgroup.procs"
    n=0; while ! rmdir "$cg" 2>/dev/null && [ $n -lt 15 ]; do sleep 0.1; n=$((n + 1)); done
}
while IFS= read -r line; do
    case "$line" in
        clean) ended; exit 0 ;;
        cgroup:*) cg="${line#cgroup:}" ;;
        /*) roots="$roots
$line" ;;
    esac
done
ended
pass=0
while [ $pass -lt 20 ]; do
    found=0
    for env in /proc/[0-9]*/environ; do
        pid=${env#/proc/}; pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        if grep -qxzF "PROCRUN_SESSION=$marker" "$env" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null && found=1
        fi
    done
    [ $found = 0 ] && break
    pass=$((pass + 1))
done
if [ "$keep" != keep ]; then
    printf '%s\n' "$roots" | while IFS= read -r root; do
        [ -n "$root" ] || continue
        find "$root" -type d ! -perm -u+rwx -exec chmod u+rwx {} \; 2>/dev/null
        rm -rf -- "$root"
    done
fi
'''


def guardian_command(marker: str, keep: bool) -> list[str]:
    """A tiny /bin/sh (about 1 MiB, no Python) that scans /proc/*/environ for the marker."""
    from procrun.platform import stopping_signals

    ignore = "trap '' " + " ".join(map(str, stopping_signals())) + "\n"  # a signal to procrun's group spares it
    return ["/bin/sh", "-c", ignore + GUARDIAN, "procrun-guardian", marker, "keep" if keep else ""]


def copy_command() -> list[str]:
    """Copies a fresh directory when overlay views cannot be made: clones where the file system
    can (btrfs, XFS), a plain copy elsewhere; modes, times and symlinks kept."""
    return ["cp", "-a", "--reflink=auto"]


def become_subreaper() -> bool:
    """Orphaned descendants get reparented to us, so we can reap and kill them."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


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
    """Live (non-zombie) descendants of ``root`` as (pid, pgrp): as a subreaper, the orphans too."""
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
    """CPU seconds and RSS bytes summed over each process group."""
    hz = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    usage: dict[int, tuple[float, int]] = {}
    for _, fields in _processes():
        pgrp = int(fields[2])
        if pgrp in groups:
            cpu, rss = usage.get(pgrp, (0.0, 0))
            usage[pgrp] = (cpu + (int(fields[11]) + int(fields[12])) / hz, rss + int(fields[21]) * page)
    return usage


def halted(pid: int) -> bool:
    """The process is stopped (SIGSTOP, Ctrl-Z) or held by a debugger (ptrace): not dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2:][:1] in (b"T", b"t")


def cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def listening_ports(group: int) -> set[int]:
    """TCP ports (IPv4 and IPv6, loopback included) on which any process of the group listens."""
    inodes: set[str] = set()
    for pid, fields in _processes():
        if int(fields[2]) != group:
            continue
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


def listens_on(port: int) -> set[str] | None:
    """The socket inodes listening on ``port`` (empty: none), from /proc/net/tcp and tcp6; None
    when those cannot be read. A connection that merely uses the port locally does not count."""
    inodes, read = set(), False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                inodes |= {inode for found, inode in parse_listeners(f.read()) if found == port}
            read = True
        except OSError:
            continue
    return inodes if read else None


def port_holder(port: int) -> tuple[int, str] | None:
    """The pid and command line of a process listening on ``port``, when /proc shows it (the
    user's own processes, or all as root); None otherwise."""
    wanted = {f"socket:[{inode}]" for inode in listens_on(port) or ()}
    for pid, _ in _processes() if wanted else ():
        try:
            links = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in links):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    return pid, f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
    return None


def parse_listeners(text: str) -> list[tuple[int, str]]:
    """(port, socket inode) of each LISTEN row of /proc/net/tcp or tcp6."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == LISTEN:
            out.append((int(fields[1].rsplit(":", 1)[1], 16), fields[9]))
    return out


def outgoing_ports_start() -> int:
    """The first port the system gives outgoing connections (ip_local_port_range), 0 unknown."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def cgroup_enter(name: str) -> str | None:
    """Move procrun into a new cgroup (v2) of its own, below its current one, so that everything
    it starts is in it whatever it does to its session or environment (a daemon that calls
    setsid and clears its environment included): the guardian kills the cgroup if procrun dies.
    The path, or None where the system does not let us (no cgroup2, not delegated)."""
    parent = own_cgroup()
    if parent is None:
        return None
    path = os.path.join(parent, name)
    _sweep(parent)
    try:
        os.mkdir(path, 0o755)
    except OSError:
        return None
    try:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write("0")
    except OSError:
        os.rmdir(path)
        return None
    return path


def own_cgroup() -> str | None:
    """This process's cgroup (v2) folder, or None without a cgroup2 mount."""
    try:
        with open("/proc/self/mountinfo") as f:
            mount = next(line.split()[4] for line in f if " - cgroup2 " in line)
        with open("/proc/self/cgroup") as f:
            own = next(line.strip().split(":", 2)[2] for line in f if line.startswith("0::"))
    except (OSError, StopIteration, IndexError):
        return None
    return os.path.join(mount, own.lstrip("/"))


def _sweep(parent: str) -> None:
    """Remove the empty cgroups of sessions whose procrun is gone (their guardian was killed
    before it could: a SIGKILL of the whole process tree, say); a populated one is left alone."""
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        pid = entry[len("procrun-"):]
        if entry.startswith("procrun-") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.rmdir(os.path.join(parent, entry))
            except OSError:
                pass


def cgroup_leave(path: str) -> None:
    """Back to the cgroup procrun came from (the guardian then empties and removes this one)."""
    try:
        with open(os.path.join(os.path.dirname(path), "cgroup.procs"), "w") as f:
            f.write("0")
    except OSError:
        pass
