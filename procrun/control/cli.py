"""The client commands: ps, scale, restart, stop, quit, chaos, report, logs. One function per verb;
each sends one request and prints the reply. Imports nothing of the session (start-up time)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    import argparse
    from typing import Any

from procrun.control.client import Connection, Refused, request
from procrun.errors import UsageError

COMMANDS = ("ps", "scale", "restart", "stop", "quit", "chaos", "report", "logs", "attach", "top")
QUIT_WAIT = 120.0
CHAOS_ACTIONS = ("restart", "kill", "relocate", "pause")  # chaos.schedule.ACTIONS, restated: clients import nothing else


# Verbs that take only switches (and -d DIR): a plain command line of one of these is parsed by
# procrun.quick without argparse; argparse declares the same switches from this table for --help and errors.
SWITCHES: dict[str, dict[str, str]] = {"ps": {"--json": "machine-readable output"}, "quit": {}, "top": {}}


class _Skipped:
    """A verb not being parsed this time: its arguments are not built (argparse is slow to build)."""

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        pass


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser], only: str | None = None) -> None:
    import argparse

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _Skipped()  # type: ignore[return-value]
        p = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
        p.add_argument("-d", "--app-root", metavar="DIR", default=argparse.SUPPRESS,
                       help="app root of the session (default: .)")
        for switch, says in SWITCHES.get(name, {}).items():
            p.add_argument(switch, action="store_true", help=says)
        return p

    verb("ps", "list the processes of the running session")
    verb("scale", "change the running formation: web=3 worker=0 (none: print it)").add_argument(
        "counts", nargs="*", metavar="TYPE=N", help="how many of a type should run (none: print the formation that runs)")
    verb("restart", "gracefully restart processes (all when none named)").add_argument(
        "targets", nargs="*", metavar="TYPE|NAME", help="a type (web: all its instances) or an instance (web.2)")
    verb("stop", "stop processes of the running session (scale starts them again)").add_argument(
        "targets", nargs="+", metavar="TYPE|NAME", help="a type (web: all its instances) or an instance (web.2)")
    verb("quit", "shut the running session down")
    p = verb("chaos", "control chaos in the running session: on, off, now, status")
    p.add_argument("op", choices=("on", "off", "now", "status"),
                   help="on/off: the schedule; now: one disruption at once; status: what it did")
    p.add_argument("name", nargs="?", help="with now: the instance to disrupt (default: a random one)")
    from procrun.backing.faults import KINDS  # (built only when chaos is the verb parsed)

    p.add_argument("--action", choices=CHAOS_ACTIONS + tuple(k for k in KINDS if k not in CHAOS_ACTIONS),
                   help="with now: what to do")
    p.add_argument("--backing", metavar="NAME", help="with now: fault a proxied backing service (DATABASE_URL) "
                                                     "instead of an instance; --action " + "|".join(KINDS) + " (the README's fault table)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="with now --backing: a fault's parameter (seconds, direction, toxicity, or its own)")
    verb("attach", "connect this terminal to an instance of a tty type (detach: Ctrl-])").add_argument(
        "name", metavar="NAME", help="the instance, like console.1")
    verb("top", "a live view of the running session, with keys to act on it")
    _reading(verb)


def _reading(verb: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The verbs that read a session's files, the running one's or an earlier one's."""
    p = verb("report", "hidden-local-state findings of the running or last session")
    p.add_argument("--json", action="store_true", help="machine-readable output (versioned: see \"schema\")")
    p.add_argument("--fail-on", choices=("suspected", "confirmed"),
                   help="exit 1 when there are findings at least this sure (for CI)")
    p.add_argument("--html", nargs="?", const="", metavar="FILE",
                   help="write the session's timeline page (default: into .procrun/sessions/ID/report.html)")
    p.add_argument("--session", metavar="ID", help="an earlier session (see .procrun/sessions/)")
    p = verb("logs", "the output of the running or last session, from its journal")
    p.add_argument("names", nargs="*", metavar="NAME|TYPE", help="only these instances or types")
    p.add_argument("-f", "--follow", action="store_true", help="go on printing lines as they come, until the session ends")
    p.add_argument("--since", metavar="DURATION", help="only lines from the last 30s, 10m, 2h...")
    p.add_argument("--grep", metavar="RE", help="only lines matching this regular expression")
    p.add_argument("--json", action="store_true", help="the journal's records as JSON lines (events too)")
    p.add_argument("--session", metavar="ID", help="an earlier session (see .procrun/sessions/)")


def _checked(reply: dict[str, Any]) -> dict[str, Any]:
    if not reply.get("ok"):
        raise Refused(str(reply.get("error", "the session refused the request")))
    return reply


def run(command: str, root: str, ns: argparse.Namespace) -> int:
    return VERBS[command](root, ns)


def _ask(root: str, message: dict[str, Any]) -> dict[str, Any]:
    return _checked(request(root, message))


def _ps(root: str, ns: argparse.Namespace) -> int:
    reply = _ask(root, {"cmd": "ps"})
    processes = reply["processes"]
    if ns.json:
        print(json.dumps(processes, indent=2))
    else:
        from procrun.control.table import table

        print(table(processes))
        for b in reply.get("backing", []):
            own = ", ".join(f"{name} :{port}" for name, port in b.get("instances", {}).items())
            print(f"backing: {b['var']} {b['url']} " + (f"through {b['proxy']}" if "proxy" in b else
                                                        f"not proxied: {b['reason']}") + (f"; {own}" if own else ""))
    return 0


def _scale(root: str, ns: argparse.Namespace) -> int:
    from procrun.project.plan import parse_formation

    counts: dict[str, int] = {}
    for item in ns.counts:
        if "=" not in item:
            raise UsageError(f"scale: {item!r} is not TYPE=N; write it like web=3")
        counts.update(parse_formation(item, "scale"))
    formation = _ask(root, {"cmd": "scale", "formation": counts})["formation"]
    print(" ".join(f"{t}={n}" for t, n in formation.items()))
    return 0


def _restart_or_stop(root: str, ns: argparse.Namespace) -> int:
    names = _ask(root, {"cmd": ns.command, "targets": list(ns.targets)})["names"]
    print(f"{'restarting' if ns.command == 'restart' else 'stopping'} {', '.join(names)}")
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not (name and eq and value):
        raise UsageError(f"--param {text!r} is not NAME=VALUE; write it like --param rate=8")
    return name, value


def _chaos(root: str, ns: argparse.Namespace) -> int:
    message = {"cmd": "chaos", "op": ns.op, "targets": [ns.name] if ns.name else [], "action": ns.action}
    if ns.backing:
        message["backing"] = ns.backing
        message["params"] = dict(_pair(text) for text in ns.param)
    elif ns.param:
        raise UsageError("--param is for a backing fault: chaos now --backing NAME --action A --param NAME=VALUE")
    reply = _ask(root, message)
    if ns.op == "now":
        print(reply.get("described") or f"{reply['action']} {reply['victim']}")
    else:
        status = reply["chaos"]
        print(f"chaos {'on' if status['enabled'] else 'off'}: seed {status['seed']}, every "
              f"{status['interval']:g}s on average, {status['disruptions']} disruption(s) so far")
    return 0


def _quit(root: str, ns: argparse.Namespace) -> int:
    conn = Connection(root)
    try:
        reply = _checked(conn.request({"cmd": "quit"}))
        if not conn.wait_closed(QUIT_WAIT):
            print(f"the session (pid {reply['pid']}) is still shutting down", file=sys.stderr)
            return 1
    finally:
        conn.close()
    return 0


def _report(root: str, ns: argparse.Namespace) -> int:
    from procrun.diagnose.report import from_json

    if ns.html is not None:
        from procrun.errors import SessionError
        from procrun.journal.page import file_url, page_for

        try:
            data = _report_data(root, ns.session)
        except SessionError:  # a session killed before it saved its report: the journal alone
            data = {}
        print(f"wrote {file_url(page_for(root, ns.session, data, ns.html or None))}")
        return 0
    data = _report_data(root, ns.session)
    report = from_json(data)
    if ns.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.summary(limit=20) or ["no disruptions and no findings yet"]))
    return 1 if ns.fail_on and report.failing(ns.fail_on) else 0


def _report_data(root: str, session: str | None) -> dict[str, Any]:
    """The running session's report, else the saved one (of the last or the named session)."""
    from procrun import statedir
    from procrun.errors import SessionError

    if session is not None:
        from procrun.journal.read import saved_report

        return saved_report(root, session)
    try:
        return _ask(root, {"cmd": "report"})["report"]  # type: ignore[no-any-return]
    except SessionError:
        data = statedir.load_json(root, statedir.REPORT)
        if not isinstance(data, dict):
            where = statedir.shown(statedir.locate(root))
            raise SessionError(f"no running session and no saved report in {where}; run 'procrun start "
                               "--chaos' or '--fresh' first (every session saves its report there)") from None
        return data


def _logs(root: str, ns: argparse.Namespace) -> int:
    from procrun.journal import logs

    return logs.run(root, ns.names, ns.follow, ns.since, ns.grep, ns.json, ns.session)


def _attach(root: str, ns: argparse.Namespace) -> int:
    from procrun.control import attach

    return attach.run(root, ns.name)


def _top(root: str, ns: argparse.Namespace) -> int:
    from procrun.control import top

    return top.run(root)


VERBS: dict[str, Callable[[str, argparse.Namespace], int]] = {
    "ps": _ps, "scale": _scale, "restart": _restart_or_stop, "stop": _restart_or_stop, "quit": _quit,
    "chaos": _chaos, "report": _report, "logs": _logs, "attach": _attach,
    "top": _top}
