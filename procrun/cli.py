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

from procrun import __version__, app, ranges
from procrun.chaos import ACTIONS
from procrun.control import cli as control
from procrun.errors import ProcrunError, SessionError, UsageError
from procrun.machine import POLICIES


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _checked(check: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a range check: its words become the usage error."""
    def convert(value: str) -> object:
        try:
            return check(value)
        except ValueError as exc:
            text = str(exc)
            raise argparse.ArgumentTypeError(text if text.startswith("'") else f"{value!r} {text}") from None
    return convert


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("is not an integer seed") from None


_timeout = _checked(ranges.parse_seconds)
_interval = _checked(lambda v: ranges.parse_seconds(v, ranges.interval))
_seed = _checked(lambda v: ranges.seed(_int(v)))


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    s = None if top else argparse.SUPPRESS

    def add(*flags: str, **kw: object) -> None:
        if not top:
            kw["default"] = argparse.SUPPRESS
        parser.add_argument(*flags, **kw)  # type: ignore[arg-type]

    add("-f", "--procfile", metavar="FILE", default=s, help="Procfile path, relative to the app root (default: $PROCFILE or Procfile)")
    add("-e", "--env", metavar="FILE[,FILE]", action="append", default=[] if top else s,
        help="env file(s), comma-separated and repeatable; later ones win (default: .env)")
    add("-d", "--app-root", metavar="DIR", default="." if top else s, help="app root: holds the Procfile; processes run here (default: .)")
    add("-p", "--port", metavar="N", default=s, help="base port (default: $PORT or 5000)")
    add("-m", "-c", "--formation", "--concurrency", dest="formation", metavar="TYPE=N,...", default=s,
        help="how many of each type: web=2,worker=3 or all=N")
    add("-t", "--timeout", metavar="SECONDS", type=_timeout, default=s,
        help="grace period between SIGTERM and SIGKILL (default: 5)")
    add("--restart", choices=POLICIES, default=s,
        help="restart processes that exit: never (default: the session ends), on-failure, always")
    add("--no-color", "--no-colour", dest="no_colour", action="store_true", default=False if top else s,
        help="no coloured prefixes (also: NO_COLOR)")
    add("--no-prefix", action="store_true", default=False if top else s, help="print lines without the time/name prefix")
    add("-q", "--quiet", metavar="TYPE[,TYPE]", action="append", default=[] if top else s,
        help="hide the output of these process types")


def build_parser() -> Parser:
    parser = Parser(prog="procrun", description="Run a Procfile app as a twelve-factor platform would.")
    parser.add_argument("-v", "--version", action="version", version=f"procrun {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("start", help="run the formation in the foreground")
    _common(p, top=False)
    g = p.add_argument_group("chaos and fresh working directories")
    g.add_argument("--chaos", action="store_true", default=None, help="disrupt running instances at random (restart policy becomes on-failure)")
    g.add_argument("--chaos-interval", type=_interval, metavar="SECONDS", help="mean time between disruptions (default: 30)")
    g.add_argument("--chaos-actions", metavar="A[,A]", help="restart, kill, relocate, pause (default: all)")
    g.add_argument("--chaos-types", metavar="TYPE[,TYPE]", help="types to disrupt (default: all)")
    g.add_argument("--chaos-min-uptime", type=_timeout, metavar="SECONDS", help="spare instances younger than this")
    g.add_argument("--chaos-seed", type=_seed, metavar="N", help="replay a run: same seed, same disruptions")
    g.add_argument("--fresh", action="store_true", default=None, help="start every instance in a fresh copy of the app (ephemeral disk)")
    g.add_argument("--keep-dirs", action="store_true", default=None, help="keep fresh directories after exit, for inspection")
    g = p.add_argument_group("router")
    g.add_argument("--router", action=argparse.BooleanOptionalAction, default=None,
                   help="listen on the base port and spread requests over ready web.N, never sticky (default: on with --chaos)")
    g.add_argument("--router-host", metavar="HOST", help="address the router listens on (default: 127.0.0.1)")
    g.add_argument("--router-mode", choices=("http", "tcp"), help="balance per HTTP request (default) or per TCP connection")
    g.add_argument("--router-timeout", type=_interval, metavar="SECONDS",
                   help="answer 504 when an instance has not started its response by then (default: 30)")
    p.add_argument("types", nargs="*", metavar="TYPE", help="process types to start (default: all)")
    g = p.add_argument_group("watch")
    g.add_argument("--watch", nargs="*", metavar="PATH", default=None,
                   help="restart affected processes when files change (default path: the app root); "
                        "put TYPE arguments before --watch")

    p = sub.add_parser("run", help="run one command with the app's environment")
    _common(p, top=False)
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD", help="the command and its arguments")

    p = sub.add_parser("check", help="validate the Procfile and env files")
    _common(p, top=False)

    p = sub.add_parser("export", help="write the formation for supervisord, systemd, kubernetes or compose")
    _common(p, top=False)
    p.add_argument("format", metavar="FORMAT", help="supervisord, systemd, kubernetes or compose")
    p.add_argument("location", metavar="DIR", help="directory to write into")
    p.add_argument("-a", "--app", metavar="NAME", help="app name (default: the app root's name)")
    p.add_argument("--image", metavar="IMAGE", help="container image (kubernetes: required; compose: else build: the app root)")
    p.add_argument("-u", "--user", metavar="USER", help="run processes as this user (supervisord, systemd)")
    p.add_argument("-l", "--log", metavar="DIR", help="log directory (supervisord; default: DIR/log)")
    p.add_argument("--chaos", action="store_true", default=None, help="kubernetes: also write Chaos Mesh schedules")
    p.add_argument("--chaos-interval", type=_interval, metavar="SECONDS")
    p.add_argument("--chaos-actions", metavar="A[,A]")
    p.add_argument("--chaos-types", metavar="TYPE[,TYPE]")

    p = sub.add_parser("ps", help="list the processes of the running session")
    _root_only(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("scale", help="change the running formation: web=3 worker=0 (none: print it)")
    _root_only(p)
    p.add_argument("counts", nargs="*", metavar="TYPE=N")
    p = sub.add_parser("restart", help="gracefully restart processes (all when none named)")
    _root_only(p)
    p.add_argument("targets", nargs="*", metavar="TYPE|NAME")
    p = sub.add_parser("stop", help="stop processes of the running session")
    _root_only(p)
    p.add_argument("targets", nargs="+", metavar="TYPE|NAME")
    p = sub.add_parser("quit", help="shut the running session down")
    _root_only(p)
    p = sub.add_parser("chaos", help="control chaos in the running session: on, off, now, status")
    _root_only(p)
    p.add_argument("op", choices=("on", "off", "now", "status"))
    p.add_argument("name", nargs="?", help="with now: the instance to disrupt (default: a random one)")
    p.add_argument("--action", choices=ACTIONS, help="with now: what to do")
    p = sub.add_parser("report", help="hidden-local-state findings of the running or last session")
    _root_only(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _root_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--app-root", metavar="DIR", default=argparse.SUPPRESS,
                        help="app root of the session (default: .)")


def options(ns: argparse.Namespace) -> app.Options:
    colour = not ns.no_colour and not os.environ.get("NO_COLOR") and sys.stdout.isatty()
    return app.Options(
        app_root=ns.app_root, procfile=ns.procfile, env_files=tuple(ns.env), port=ns.port,
        formation=ns.formation, timeout=ns.timeout, restart=ns.restart, colour=colour,
        prefix=not ns.no_prefix, quiet=frozenset(t for v in ns.quiet for t in _csv(v)),
        types=tuple(getattr(ns, "types", ())), chaos=getattr(ns, "chaos", None),
        chaos_interval=getattr(ns, "chaos_interval", None), chaos_actions=getattr(ns, "chaos_actions", None),
        chaos_types=getattr(ns, "chaos_types", None), chaos_min_uptime=getattr(ns, "chaos_min_uptime", None),
        chaos_seed=getattr(ns, "chaos_seed", None), fresh=getattr(ns, "fresh", None),
        keep_dirs=getattr(ns, "keep_dirs", None), router=getattr(ns, "router", None),
        router_host=getattr(ns, "router_host", None), router_mode=getattr(ns, "router_mode", None),
        router_timeout=getattr(ns, "router_timeout", None),
        watch=None if getattr(ns, "watch", None) is None else True,
        watch_paths=tuple(getattr(ns, "watch", None) or ()))


def dispatch(ns: argparse.Namespace) -> int:
    if ns.command in control.COMMANDS:
        return control.run(ns.command, os.path.abspath(ns.app_root), ns)
    opts = options(ns)
    if ns.command == "start":
        return app.start(opts)
    if ns.command == "run":
        return app.run(opts, ns.argv)
    if ns.command == "check":
        print(app.check(opts), file=sys.stderr)
        return 0
    if ns.command == "export":
        for path in app.export(opts, ns.format, ns.location, ns.app, ns.image, ns.user, ns.log):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    raise UsageError(f"unknown command {ns.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    closed = _open_standard_fds()
    try:
        ns = build_parser().parse_args(argv)
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
