"""The guardian: kills what a session started if the session itself dies.

Run as ``python -S -E guardian.py MARKER`` with stdin the read end of a pipe
whose write end only the session holds. When the session ends in any way, even
by SIGKILL, the pipe reaches EOF and the guardian SIGKILLs every process whose
environment carries ``PROCRUN_SESSION=MARKER``, daemonised ones included. The
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
    while os.read(0, 4096):
        pass
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


if __name__ == "__main__":
    main()
