"""Run a command in a copy-on-write view of the slug: a private mount namespace with an
overlay (the slug below, the instance's own upper directory above) mounted on its
working directory. Run as a script, never imported by procrun:

    python -I -S linux_mountns.py LOWER UPPER WORK MERGED [--cd=FOLDER] COMMAND [ARG...]

Unprivileged, it first enters a new user namespace that maps the user's own uid and gid
to themselves (the app never runs as namespace-root: Postgres refuses root, npm and pip
warn); the capabilities the mount needs are the namespace's until ``exec`` drops them.
As root, a mount namespace alone. The mount lives as long as the instance's processes:
when the last one ends the kernel removes it, so nothing outlives a SIGKILL of procrun.
A separate process because Python has no ``os.unshare`` before 3.12 and ``preexec_fn``
is unsafe with threads; exit 127 with one line when the view cannot be made.
"""

import ctypes
import os
import sys

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def _call(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def enter(lower, upper, work, merged, folder=""):
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    _call(libc.unshare(CLONE_NEWNS | (CLONE_NEWUSER if uid else 0)), "unshare")
    if uid:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _call(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}" + (",userxattr" if uid else "")
    _call(libc.mount(b"overlay", os.fsencode(merged), b"overlay", 0, options.encode()), "overlay mount")
    os.chdir(os.path.join(merged, folder))  # a folder of the app (procrun.yaml types.T.cwd)


def main(argv):
    folder = argv.pop(5)[len("--cd="):] if len(argv) > 5 and argv[5].startswith("--cd=") else ""
    if len(argv) < 6:
        sys.stderr.write("usage: linux_mountns.py LOWER UPPER WORK MERGED [--cd=FOLDER] COMMAND [ARG...]\n")
        return 2
    try:
        enter(*argv[1:5], folder)
        os.execvp(argv[5], argv[5:])
    except OSError as exc:
        sys.stderr.write(f"procrun: cannot make the fresh directory's copy-on-write view ({exc.strerror})\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
