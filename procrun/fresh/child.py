"""Walks of a whole tree, done in a child process.

A walk of 50,000 files is Python work between system calls. On a thread of procrun it would
take the GIL back from the event loop at each call the loop makes (a callback with a few system
calls then waits up to 5 ms for each: a ps answer took 30 ms while a copy was compared). In a
child, procrun's worker thread only waits on a pipe. Two jobs, each answering one JSON line:

    snapshot APP DEST IGNORE LINKED   the slug (``snapshot.take``): {left_out, folders, links, files, size}
    diff SLUG VIEW IGNORE             a copied directory against its slug: {created, changed, deleted}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOT = f"import sys; sys.path.insert(0, {ROOT!r}); from procrun.fresh.child import main; sys.exit(main(sys.argv[1:]))"


Hook = Callable[[subprocess.Popen[bytes] | None], None]


MARKED: dict[str, str] = {}  # the session's marker (set by the session): the guardian ends helpers too


def call(argv: Sequence[str], hook: Hook | None = None) -> tuple[int, bytes, bytes]:
    """Run a helper (a job here, ``cp``, ``rm``) to its end: (exit code, stdout, stderr). ``hook``
    is told the process, then None, so that the session's end can kill one that makes something.
    Helpers stay in procrun's process group (the end-of-session sweep knows them by it) and carry
    the session's marker (after a SIGKILL of procrun, the guardian ends them as it ends instances)."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               close_fds=True, env={**os.environ, **MARKED})
    if hook is not None:
        hook(process)
    try:
        out, err = process.communicate()
    finally:
        if hook is not None:
            hook(None)
    return process.returncode, out, err


def failed(code: int, err: bytes, what: str) -> OSError:
    lines = err.decode(errors="replace").strip().splitlines()
    return OSError(lines[-1] if lines else f"{what} stopped (exit {code})")


def run(args: Sequence[str], hook: Hook | None = None) -> Any:
    """Run one job in a child and return its answer. OSError when it fails or is killed."""
    code, out, err = call([sys.executable, "-I", "-S", "-c", BOOT, *args], hook)
    if code != 0:
        raise failed(code, err, args[0])
    try:
        return json.loads(out)
    except ValueError as exc:
        raise OSError(f"{args[0]} answered no JSON ({exc})") from None


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "snapshot":
            from procrun.fresh.snapshot import take

            taken = take(argv[1], argv[2], json.loads(argv[3]), json.loads(argv[4]))
            answer: dict[str, Any] = {"left_out": taken.left_out, "folders": taken.folders, "links": taken.links,
                                      "files": taken.files, "size": taken.size}
        elif argv[0] == "diff":
            from procrun.fresh.slug import diff
            from procrun.fresh.workdir import scan

            found = diff(scan(argv[1]), scan(argv[2]), json.loads(argv[3]))
            answer = found._asdict()
        else:
            raise ValueError(f"unknown job {argv[0]!r}")
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"{getattr(exc, 'strerror', None) or exc}\n")
        return 1
    sys.stdout.write(json.dumps(answer))
    return 0
