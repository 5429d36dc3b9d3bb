"""Wire format: one JSON object per line each way, size-limited. Pure."""

from __future__ import annotations

import json
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    from typing import Any

MAX_LINE = 64 * 1024
COMMANDS = ("ping", "ps", "scale", "restart", "stop", "quit", "chaos", "report", "attach", "subscribe")
# Streaming requests: after an ok reply the connection stays open as a stream. ``attach``: raw
# bytes both ways (the client's keystrokes to the instance's terminal, its output back) until
# either side closes. ``subscribe``: the session's state (as ``ps``, plus chaos and findings),
# one JSON line each time it changes and at least once a second, until the client closes.
STREAMS = ("attach", "subscribe")
CHAOS_OPS = ("on", "off", "now", "status")


class ProtocolError(ValueError):
    """A request the server refuses; the message goes back as the error."""


class Request:
    """One request, checked. (A plain class: clients import this module, and dataclasses
    would cost them 15 ms of start-up.)"""

    __slots__ = ("cmd", "targets", "formation", "op", "action", "deadline", "size", "backing", "params")

    def __init__(self, cmd: str, targets: tuple[str, ...] = (), formation: dict[str, int] | None = None,
                 op: str = "", action: str | None = None, deadline: float | None = None,
                 size: tuple[int, int] | None = None, backing: str | None = None,
                 params: dict[str, str] | None = None) -> None:
        self.cmd, self.targets, self.formation = cmd, tuple(targets), dict(formation or {})
        self.op, self.action, self.deadline = op, action, deadline  # deadline: wall clock; past it the client gave up
        self.size = size  # attach: the client's terminal (rows, columns)
        self.backing = backing  # chaos now: a backing service (DATABASE_URL) instead of an instance
        self.params = dict(params or {})  # chaos now --backing: the fault's parameters, as text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return f"Request({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"

    def describe(self) -> str:
        """The request as a user typed it: ``scale web=3``, ``restart web.1``."""
        words = [self.cmd, self.op, *self.targets, *(f"{t}={n}" for t, n in self.formation.items())]
        return " ".join(w for w in words if w)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode_reply(line: bytes) -> dict[str, Any]:
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise ProtocolError("reply is not a JSON object")
    return reply


def parse_request(line: bytes) -> Request:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"request larger than {MAX_LINE} bytes")
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"request is not JSON ({exc})") from None
    except RecursionError:
        raise ProtocolError("bad request: nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError("request must be a JSON object like {\"cmd\": \"ps\"}")
    cmd = data.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r}; known: {', '.join(COMMANDS)}")
    targets = data.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ProtocolError("targets must be a list of process or type names")
    formation = data.get("formation", {})
    if not isinstance(formation, dict) or not all(
            isinstance(k, str) and type(v) is int and v >= 0 for k, v in formation.items()):
        raise ProtocolError("formation must map type names to counts of 0 or more")
    if cmd == "stop" and not targets:
        raise ProtocolError("stop needs at least one process or type name")
    if cmd == "attach" and len(targets) != 1:
        raise ProtocolError("attach needs one instance name, like web.1")
    op, action = data.get("op", ""), data.get("action")
    if cmd == "chaos" and op not in CHAOS_OPS:
        raise ProtocolError(f"chaos needs an op: {', '.join(CHAOS_OPS)}")
    if action is not None and not isinstance(action, str):
        raise ProtocolError("action must be a string")
    deadline = data.get("deadline")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or deadline != deadline):
        raise ProtocolError("deadline must be a number (seconds since the epoch)")
    size, backing = _extras(data)
    params = data.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in params.items()):
        raise ProtocolError("params must map names to text values, like {\"rate\": \"8\"}")
    return Request(cmd, tuple(targets), dict(formation), op, action, deadline, size, backing, params)


def _extras(data: dict[str, Any]) -> tuple[tuple[int, int] | None, str | None]:
    """attach's terminal size and chaos now's backing service."""
    size = data.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(type(n) is int and 0 <= n <= 10_000 for n in size)):
        raise ProtocolError("size must be [rows, columns], each from 0 (unknown) to 10000")
    if size is not None and 0 in size:  # a terminal that does not know its size (script, many CI ptys)
        size = None
    backing = data.get("backing")
    if backing is not None and not isinstance(backing, str):
        raise ProtocolError("backing must be the name of a variable, like DATABASE_URL")
    return (size[0], size[1]) if size else None, backing


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
