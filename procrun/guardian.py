"""The guardian: kills what a session started if the session itself dies.

Run as ``python -S -E guardian.py MARKER [--keep]`` with stdin the read end of a pipe
whose write end only the session holds. When the session ends in any way, even
by SIGKILL, the pipe reaches EOF and the guardian SIGKILLs every process whose
environment carries ``PROCRUN_SESSION=MARKER``, daemonised ones included, then
removes the temporary roots the session sent it (one path per line). The
only imports are os and signal so it stays small (one helper process).
"""

import os
import signal
import sys

MARKER_VAR = "PROCRUN_SESSION"


def marked_pids(needle):
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/" + entry + "/environ", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if needle in b"\0" + data:
            yield int(entry)


def main():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    needle = b"\0" + MARKER_VAR.encode() + b"=" + sys.argv[1].encode() + b"\0"
    received = b""
    while True:  # lines sent by the session: temporary roots to remove if it dies
        chunk = os.read(0, 4096)
        if not chunk:
            break
        received += chunk
    for _ in range(20):  # repeat: a process may fork while we sweep
        found = False
        for pid in marked_pids(needle):
            found = True
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not found:
            break
    if sys.argv[2:] != ["--keep"]:
        for line in received.split(b"\n"):
            if line.startswith(b"/"):
                remove_tree(line)


def remove_tree(path):
    """rm -rf without shutil: the guardian imports only os, signal and sys."""
    try:
        for root, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                full = os.path.join(root, name)
                if os.path.islink(full):
                    os.unlink(full)
                else:
                    os.rmdir(full)
        os.rmdir(path)
    except OSError:
        pass


if __name__ == "__main__":
    main()
