"""The client commands: ps, scale, restart, stop, quit."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from procrun.control.client import Connection, request
from procrun.control.commands import table
from procrun.errors import ProcrunError, UsageError
from procrun.formation import parse_formation

COMMANDS = ("ps", "scale", "restart", "stop", "quit", "chaos", "report")
QUIT_WAIT = 120.0


class Refused(ProcrunError):
    """The session refused the request (unknown name, bad count...): bad input."""


def _checked(reply: dict[str, Any]) -> dict[str, Any]:
    if not reply.get("ok"):
        raise Refused(str(reply.get("error", "the session refused the request")))
    return reply


def _formation_text(formation: dict[str, int]) -> str:
    return " ".join(f"{t}={n}" for t, n in formation.items())


def run(command: str, root: str, ns: argparse.Namespace) -> int:
    if command == "scale":
        counts: dict[str, int] = {}
        for item in ns.counts:
            if "=" not in item:
                raise UsageError(f"scale: {item!r} is not TYPE=N; write it like web=3")
            counts.update(parse_formation(item, "scale"))
        message: dict[str, Any] = {"cmd": "scale", "formation": counts}
    elif command in ("restart", "stop"):
        message = {"cmd": command, "targets": list(ns.targets)}
    elif command == "chaos":
        message = {"cmd": "chaos", "op": ns.op, "targets": [ns.name] if ns.name else [], "action": ns.action}
    else:
        message = {"cmd": command}
    if command == "report":
        return _report(root, ns.json)
    conn = Connection(root)
    try:
        reply = _checked(conn.request(message))
        if command == "ps":
            if ns.json:
                print(json.dumps(reply["processes"], indent=2))
            else:
                print(table(reply["processes"]))
        elif command == "scale":
            print(_formation_text(reply["formation"]))
        elif command in ("restart", "stop"):
            print(f"{'restarting' if command == 'restart' else 'stopping'} {', '.join(reply['names'])}")
        elif command == "chaos":
            if ns.op == "now":
                print(f"{reply['action']} {reply['victim']}")
            else:
                status = reply["chaos"]
                print(f"chaos {'on' if status['enabled'] else 'off'}: seed {status['seed']}, every "
                      f"{status['interval']:g}s on average, {status['disruptions']} disruption(s) so far")
        elif command == "quit":
            if not conn.wait_closed(QUIT_WAIT):
                print(f"the session (pid {reply['pid']}) is still shutting down", file=sys.stderr)
                return 1
    finally:
        conn.close()
    return 0


def _report(root: str, as_json: bool) -> int:
    from procrun.app import last_report
    from procrun.errors import SessionError
    from procrun.report import from_json

    try:
        report = from_json(_checked(request(root, {"cmd": "report"}))["report"])
    except SessionError:
        report = last_report(root)
        if report is None:
            raise SessionError(f"no running session and no saved report in {root}; "
                               "run 'procrun start --chaos' or '--fresh' first") from None
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.summary(limit=20) or ["no disruptions and no findings yet"]))
    return 0
