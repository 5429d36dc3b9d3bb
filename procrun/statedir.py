"""Where a session keeps its lock and control socket.

Preferred: ``<app root>/.procrun`` (the only place procrun writes in the app
root). When the socket path would not fit AF_UNIX's ~107 bytes, or the app
root is not writable, a per-user runtime directory is used instead.
"""

from __future__ import annotations

import json
import os
import sys
import time

from procrun import errors

SOCKET = "control.sock"
LOCK = "session.lock"
# AF_UNIX paths: 108 bytes with the NUL on Linux, 104 on macOS and the BSDs
MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103


def preferred(root: str) -> str:
    return os.path.join(root, ".procrun")


def fallback(root: str) -> str:
    """The per-user directory for an app root procrun cannot use (too deep for a socket path, or
    not writable). The same for every process of the user whatever its environment (TMPDIR and
    XDG_RUNTIME_DIR differ between shells; a client must find the session): /run/user/UID when
    it is the user's, else /tmp."""
    import hashlib  # only for app roots too deep for a socket path

    run = f"/run/user/{os.getuid()}"
    try:
        base = run if os.stat(run).st_uid == os.getuid() else "/tmp"
    except OSError:
        base = "/tmp"
    digest = hashlib.sha256(os.fsencode(os.path.abspath(root))).hexdigest()[:16]
    return os.path.join(base, f"procrun-{os.getuid()}", digest)


def shown(path: str) -> str:
    """A state path as the user would type it from here: ./.procrun/sessions under the current
    folder, absolute elsewhere (the per-user fallback)."""
    return "./" + os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path


def fits(directory: str) -> bool:
    return len(os.fsencode(os.path.join(directory, SOCKET))) <= MAX_SOCKET_PATH  # (any name: not UTF-8 too)


def locate(root: str) -> str:
    """The directory a running session of this app root uses (for clients): the one whose lock a
    live session holds; with none running, the one used last (a read-only root may keep a
    .procrun an earlier session left while the session runs from the fallback)."""
    first = preferred(root)
    if fits(first) and holder(first) is not None:  # the common case, answered without the fallback's hash
        return first
    candidates = [first, fallback(root)] if fits(first) else [fallback(root)]
    if holder(candidates[-1]) is not None:
        return candidates[-1]
    used = [(os.stat(os.path.join(d, LOCK)).st_mtime, -i, d) for i, d in enumerate(candidates)
            if os.path.exists(os.path.join(d, LOCK))]
    return max(used)[2] if used else candidates[0]  # none yet: where a session would go


def create(root: str) -> str:
    """Make (mode 0700) and return the directory a new session should use."""
    for directory in (preferred(root), None):
        directory = directory or fallback(root)
        if not fits(directory):
            continue
        try:
            if directory != preferred(root):
                _private(os.path.dirname(directory))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            _private(directory)
            return directory
        except OSError:
            continue
    raise OSError("no writable directory for the control socket")


def _private(directory: str) -> None:
    """Create if needed; refuse a directory another user owns (shared /tmp)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.stat(directory).st_uid != os.getuid():
        raise OSError(f"{directory} belongs to another user")
    os.chmod(directory, 0o700)


class SessionLock:
    """An flock held for the session's life: a second session in the same root is refused.

    The kernel drops the lock when the holder dies, however it dies, so a
    stale lock never blocks a new session.
    """

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOCK)
        self.fd: int | None = None

    def acquire(self, info: str) -> str | None:
        """Take the lock and record ``info``; return the holder's info if it is taken."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip()
            os.close(fd)
            return holder or "another session"
        os.ftruncate(fd, 0)
        os.write(fd, os.fsencode(info))
        self.fd = fd
        return None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder(directory: str) -> dict[str, object] | None:
    """The record ({"pid": ...}) of the live session holding this directory's lock ({} when it
    cannot be read), None when no session holds it. A holder may have no socket yet (a session
    starts its processes first) or none any more (it is ending)."""
    import fcntl
    import json

    try:
        fd = os.open(os.path.join(directory, LOCK), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        try:
            record = json.loads(os.read(fd, 4096) or b"{}")
        except ValueError:
            return {}
        return record if isinstance(record, dict) else {}
    finally:
        os.close(fd)


REPORT = "report.json"


def save_json(directory: str, name: str, data: object) -> None:
    """Write a session file atomically (a reader never sees half of it)."""
    import json

    path = os.path.join(directory, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def load_json(root: str, name: str) -> object | None:
    """A session file of the running or last session of this app root; None if absent or broken."""
    import json

    try:
        with open(os.path.join(locate(root), name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def lock_session(root: str) -> SessionLock:
    """The session's lock in its state directory (a .gitignore beside it in the app's own
    .procrun/); SessionError while another session holds it."""
    try:
        directory = create(root)
    except OSError as exc:
        raise errors.SessionError(f"cannot create the session directory: {exc}") from None
    if directory == preferred(root):
        ignore = os.path.join(directory, ".gitignore")
        if not os.path.exists(ignore):
            with open(ignore, "w") as f:
                f.write("# procrun session state\n*\n")
    lock = SessionLock(directory)
    info = json.dumps({"pid": os.getpid(), "started": time.strftime("%H:%M:%S"), "root": root})
    holder = lock.acquire(info)
    if holder is not None:
        try:
            data = json.loads(holder)
            who = f"pid {data['pid']}, started {data['started']}"
        except (ValueError, KeyError, TypeError):
            who = holder
        raise errors.SessionError(f"a procrun session is already running in {root} ({who}); "
                           "use 'procrun ps' to see it or 'procrun quit' to stop it")
    return lock
