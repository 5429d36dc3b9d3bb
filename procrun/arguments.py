"""The argparse command line: honcho-compatible flags, built per verb from the settings' one declaration.

Options may come before or after the subcommand, as honcho accepts them: the
common options live on the main parser (with defaults) and again on each
subparser (with suppressed defaults, so they only override when given).
Building argparse parsers is slow for a CLI, so only the asked verb's parser is built.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    from typing import Any

from procrun import __version__
from procrun.control import cli as control
from procrun.errors import UsageError
from procrun.flags import OUTPUT


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
    from procrun.project.settings import flagged

    for setting in flagged(command):
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
            if setting.repeatable:
                kw["action"] = "append"
        parser.add_argument(*setting.flags, **kw)


def _add_output(parser: argparse.ArgumentParser, top: bool, verb: str = "") -> None:
    """What only the command line sets: app root and how the output looks (that: start only)."""
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    for o in OUTPUT:
        if not top and verb != "start" and o.dest != "app_root":
            continue
        kw: dict[str, Any] = {"action": "store_true"} if o.switch else {"metavar": o.metavar}
        if o.repeatable:
            kw["action"] = "append"
        parser.add_argument(*o.flags, dest=o.dest, default=default([] if o.repeatable else o.default), help=o.help, **kw)


def _running(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
    _add_settings(p, name)
    _add_output(p, top=False, verb=name)
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
    parser.add_argument("-v", "-V", "--version", action="version", version=f"procrun {__version__}")
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
    p.add_argument("--app-dir", metavar="DIR", default="/app",
                   help="where the app is in the image (kubernetes, compose: a type's cwd is a folder of it; default: /app)")


BUILDERS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "start": _start, "run": _run, "check": lambda p: None, "export": _export}
