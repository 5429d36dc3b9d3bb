"""Command line: parse, run, and one exit path for every error.

A plain command line (`procrun ps`, `procrun start -t 3 web`) is parsed without argparse, which
would cost a client a third of its start-up (procrun.quick); everything else goes to the argparse
parser (procrun.arguments), which also gives the help and the usage errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    from argparse import Namespace
    from typing import Any

from procrun import quick
from procrun.control import cli as control
from procrun.errors import ProcrunError, SessionError, UsageError
from procrun.flags import words


def dispatch(ns: Namespace) -> int:
    if ns.command in control.COMMANDS:
        return control.run(ns.command, os.path.abspath(ns.app_root), ns)
    from procrun import app  # not for the control clients: they start fast

    flags, edge = settings_from(ns)
    if ns.command == "start":
        return app.start(flags, edge)
    if ns.command == "run":
        from procrun.oneoff import run

        return run(flags, edge, ns.argv)
    if ns.command == "check":
        line, checked = app.check(flags, edge)
        print("\n".join(checked))
        print(line, file=sys.stderr)  # (honcho's line, where honcho writes it)
        return 0
    if ns.command == "export":
        from procrun.export.run import export

        for path in export(flags, edge, ns.format, ns.location, ns.app, ns.image, ns.user, ns.log, ns.app_dir):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    raise UsageError(f"unknown command {ns.command!r}")


def settings_from(ns: Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(flags by setting name, what only the command line knows) from parsed arguments."""
    from procrun.project.settings import SETTINGS

    flags = {s.name: getattr(ns, s.name) for s in SETTINGS if getattr(ns, s.name, None) is not None}
    for s in SETTINGS:  # a repeatable flag's values, each already its words (-e a,b -e c)
        if s.repeatable and s.name in flags:
            flags[s.name] = tuple(w for value in flags[s.name] for w in value)
    watch = getattr(ns, "watch", None)
    if watch is not None:
        flags["watch"], flags["watch_paths"] = True, tuple(watch)
    edge = {"app_root": ns.app_root, "prefix": not ns.no_prefix,
            "colour": not ns.no_colour and not os.environ.get("NO_COLOR") and sys.stdout.isatty(),
            "quiet": frozenset(w for value in ns.quiet for w in words(value)),
            "types": tuple(getattr(ns, "types", ()))}
    return flags, edge


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if os.name != "posix" and "export" not in args:  # export is pure: it runs anywhere
        _say("procrun: running processes needs a POSIX system (Linux, macOS, a BSD); on Windows, use WSL")
        return 2
    closed = _open_standard_fds()
    if args[:1] in (["completion"], ["__names"]):  # shell completion: its own module, nothing else loaded
        from procrun.control.completion import main as completion

        return completion(args[1:] if args[0] == "completion" else args)
    try:
        ns = quick.parse(args) or _parsed(args)
        if 1 in closed and ns.command == "start":
            raise SessionError("standard output is closed, so nothing would show the processes' output; "
                               "redirect it instead (procrun start > /dev/null)")
        code = dispatch(ns)
        sys.stdout.flush()
        return code
    except ProcrunError as exc:
        _say(f"procrun: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (procrun ps | head -1)
        import signal  # here only: its enums cost a client command ~1 ms

        _discard_stdout()
        return 128 + signal.SIGPIPE
    except OSError as exc:
        _discard_stdout()
        _say(f"procrun: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 1
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("PROCRUN_DEBUG"):
            raise
        _say(f"procrun: internal error: {type(exc).__name__}: {exc} (PROCRUN_DEBUG=1 shows where; please report it)")
        return 70


def _parsed(args: list[str]) -> Namespace:
    """argparse's reading of the command line; bare `procrun` and `procrun help [VERB]` show the
    help (as --help does), and an unknown option points at the verb's own help."""
    from procrun.arguments import build_parser, parser_for

    if not args or args[0] == "help":
        if len(args) > 1 and args[1] != "help":
            return _parsed([args[1], "--help"])
        build_parser().print_help()
        raise SystemExit(0)
    ns, extra = parser_for(args).parse_known_args(args)
    if extra and getattr(ns, "command", None) != "run":
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}; see 'procrun {ns.command} --help'")
    return ns


def _open_standard_fds() -> set[int]:
    """fds 0-2 closed by the caller get /dev/null, so no pipe or socket we open takes their place."""
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if sys.stdout is None:  # Python found fd 1 closed at start-up
        sys.stdout = open(1, "w", closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)
    for stream in (sys.stdout, sys.stderr):  # a file or folder name that is not UTF-8 prints as it is
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    return closed


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush has nowhere to fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def _say(line: str) -> None:
    try:
        data = (line + "\n").encode("utf-8", "surrogateescape")  # a name that is not UTF-8, as it is
    except UnicodeEncodeError:
        data = (line + "\n").encode("utf-8", "replace")
    try:
        os.write(2, data)
    except OSError:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
