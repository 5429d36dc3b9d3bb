"""Command line: honcho-compatible flags, one exit path for every error.

Options may come before or after the subcommand, as honcho accepts them: the
common options live on the main parser (with defaults) and again on each
subparser (with suppressed defaults, so they only override when given).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    from typing import Any

from procrun import __version__
from procrun.control import cli as control
from procrun.errors import ProcrunError, SessionError, UsageError


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # argparse builds a formatter per add_argument, each asking the terminal for its width
        width = _terminal_width()
        kwargs.setdefault("formatter_class", lambda prog: argparse.HelpFormatter(prog, width=width))
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _terminal_width() -> int:
    """What argparse would compute (shutil.get_terminal_size() - 2), without importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 80
    return columns - 2


def _checked(setting: Any) -> Callable[[str], object]:
    """An argparse type from a setting's declaration: its rule in words becomes the usage error."""
    from procrun.project.settings import from_text

    def convert(value: str) -> object:
        try:
            return from_text(setting, value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{value!r} {exc}") from None
    return convert


def _add_settings(parser: argparse.ArgumentParser, command: str, top: bool = False) -> None:
    """The flags of every setting this command takes, from the one declaration in SETTINGS.

    Options may come before or after the subcommand, as honcho accepts them: the main
    parser holds the common ones too, and a subcommand's copy only overrides when given."""
    from procrun.project.settings import SETTINGS

    for setting in SETTINGS:
        if not setting.flags or command not in setting.commands:
            continue
        kw: dict[str, Any] = {"dest": setting.name, "help": setting.help,
                              "default": None if top else argparse.SUPPRESS}
        if setting.negatable:
            kw["action"] = argparse.BooleanOptionalAction
        elif setting.switch:
            kw["action"] = "store_true"
        else:
            kw["metavar"] = setting.metavar
            kw["type"] = _checked(setting)
            if setting.choices:
                kw.update(type=str, choices=setting.choices)
            if setting.name == "env_files":
                kw["action"] = "append"
        parser.add_argument(*setting.flags, **kw)


def _add_output(parser: argparse.ArgumentParser, top: bool) -> None:
    """What only the command line sets: app root and how the output looks."""
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument("-d", "--app-root", metavar="DIR", default=default("."),
                        help="app root: holds the Procfile; processes run here (default: .)")
    parser.add_argument("--no-color", "--no-colour", dest="no_colour", action="store_true", default=default(False),
                        help="no coloured prefixes (also: NO_COLOR)")
    parser.add_argument("--no-prefix", action="store_true", default=default(False),
                        help="print lines without the time/name prefix")
    parser.add_argument("-q", "--quiet", metavar="TYPE[,TYPE]", action="append", default=default([]),
                        help="hide the output of these process types")


def _running(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help)
    _add_settings(p, name)
    _add_output(p, top=False)
    return p


def control_parser(only: str | None = None) -> Parser:
    """The client verbs alone (with ``only``: that one): what `procrun ps` needs, built in a
    fraction of the full parser's time."""
    parser = Parser(prog="procrun", description="Run a Procfile app as a twelve-factor platform would.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    control.add_parsers(sub, Parser, only)
    parser.set_defaults(app_root=".")
    return parser


def parser_for(argv: Sequence[str]) -> Parser:
    """Only what the command needs: `procrun ps` and `procrun start` are judged by their start-up."""
    words = [a for a in argv if not a.startswith("-")]
    verb = words[0] if words else None
    if verb in control.COMMANDS:
        return control_parser(verb)
    return build_parser(only=verb if verb in VERBS else None)


VERBS = {"start": "run the formation in the foreground", "run": "run one command with the app's environment",
         "check": "validate the Procfile, env files and procrun.yaml",
         "export": "write the formation for supervisord, systemd, kubernetes or compose"}


def build_parser(only: str | None = None) -> Parser:
    """The whole command line; with ``only``, that verb alone (argparse is slow to build: start-up time)."""
    parser = Parser(prog="procrun", description="Run a Procfile app as a twelve-factor platform would.")
    parser.add_argument("-v", "--version", action="version", version=f"procrun {__version__}")
    _add_settings(parser, "run", top=True)  # the options every command that reads the app takes
    _add_output(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for verb, help in VERBS.items():
        if only is None or only == verb:
            BUILDERS[verb](_running(sub, verb, help))
    if only is None:
        control.add_parsers(sub, Parser)
    return parser


def _start(p: argparse.ArgumentParser) -> None:
    p.add_argument("types", nargs="*", metavar="TYPE", help="process types to start (default: all)")
    p.add_argument("--watch", nargs="*", metavar="PATH", default=None,
                   help="restart affected processes when files change (default path: the app root); "
                        "put TYPE arguments before --watch")


def _run(p: argparse.ArgumentParser) -> None:
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD", help="the command and its arguments")


def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", metavar="FORMAT", help="supervisord, systemd, kubernetes or compose")
    p.add_argument("location", metavar="DIR", help="directory to write into")
    p.add_argument("-a", "--app", metavar="NAME", help="app name (default: the app root's name)")
    p.add_argument("--image", metavar="IMAGE", help="container image (kubernetes: required; compose: else build: the app root)")
    p.add_argument("-u", "--user", metavar="USER", help="run processes as this user (supervisord, systemd)")
    p.add_argument("-l", "--log", metavar="DIR", help="log directory (supervisord; default: DIR/log)")


BUILDERS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "start": _start, "run": _run, "check": lambda p: None, "export": _export}


def settings_from(ns: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(flags by setting name, what only the command line knows) from parsed arguments."""
    from procrun.project.settings import SETTINGS

    flags = {s.name: getattr(ns, s.name) for s in SETTINGS if getattr(ns, s.name, None) is not None}
    if "env_files" in flags:
        flags["env_files"] = tuple(f for files in flags["env_files"] for f in files)
    watch = getattr(ns, "watch", None)
    if watch is not None:
        flags["watch"], flags["watch_paths"] = True, tuple(watch)
    edge = {"app_root": ns.app_root, "prefix": not ns.no_prefix,
            "colour": not ns.no_colour and not os.environ.get("NO_COLOR") and sys.stdout.isatty(),
            "quiet": frozenset(t.strip() for v in ns.quiet for t in v.split(",") if t.strip()),
            "types": tuple(getattr(ns, "types", ()))}
    return flags, edge


def dispatch(ns: argparse.Namespace) -> int:
    if ns.command in control.COMMANDS:
        return control.run(ns.command, os.path.abspath(ns.app_root), ns)
    from procrun import app  # not for the control clients: they start fast

    flags, edge = settings_from(ns)
    if ns.command == "start":
        return app.start(flags, edge)
    if ns.command == "run":
        return app.run(flags, edge, ns.argv)
    if ns.command == "check":
        print(app.check(flags, edge), file=sys.stderr)
        return 0
    if ns.command == "export":
        for path in app.export(flags, edge, ns.format, ns.location, ns.app, ns.image, ns.user, ns.log):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    raise UsageError(f"unknown command {ns.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if os.name != "posix" and "export" not in args:  # export is pure: it runs anywhere
        _say("procrun: running processes needs a POSIX system (Linux, macOS, a BSD); on Windows, use WSL")
        return 2
    closed = _open_standard_fds()
    try:
        ns = parser_for(args).parse_args(args)
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
    return closed


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush has nowhere to fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def _say(line: str) -> None:
    try:
        os.write(2, (line + "\n").encode(errors="replace"))
    except OSError:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
