"""``procrun run``: one command with the app's environment (.env, PORT), its exit code passed
through, as honcho and foreman run it: the Procfile is not read."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from procrun.errors import UsageError
from procrun.project.files import load


def run(flags: Mapping[str, Any], edge: Mapping[str, Any], argv: Sequence[str]) -> int:
    """``procrun run``: exec the command with the app's environment; never returns on success."""
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv or not argv[0]:
        raise UsageError("run needs a command, like: procrun run python manage.py migrate")
    app = load(flags, edge, with_procfile=False)  # like honcho and foreman: only the environment
    env = app.environment()
    if "PORT" not in app.dotenv:
        env["PORT"] = str(app.settings.port)
    sys.stdout.flush()
    sys.stderr.flush()
    from procrun.supervise.process import reset_ignored_signals

    reset_ignored_signals()
    args = list(argv)
    if len(args) == 1 and any(c in args[0] for c in " \t\n$|&;<>()*?[]~`'\"\\"):
        args = ["/bin/sh", "-c", args[0]]
    return _exec(args, env)


def _exec(args: list[str], env: Mapping[str, str]) -> int:
    try:
        os.execvpe(args[0], args, env)
    except FileNotFoundError:
        print(f"procrun: {shlex.quote(args[0])}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"procrun: {shlex.quote(args[0])}: permission denied", file=sys.stderr)
        return 126
    except OSError as exc:
        print(f"procrun: {shlex.quote(args[0])}: {exc.strerror}", file=sys.stderr)
        return 126
    except ValueError as exc:  # a NUL byte in an argument
        raise UsageError(f"run: cannot run {shlex.quote(args[0])}: {exc}") from None
    return 0  # not reached: exec replaced us
