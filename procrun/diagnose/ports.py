"""Port binding (twelve-factor VII), seen from the instance's own sockets. Pure."""

from __future__ import annotations

from procrun.diagnose.report import Kind, Status
from procrun.project.plan import type_of

RULE = "twelve-factor VII, Port binding: the app listens on the port the platform gives it in $PORT"
FIX = "listen on int(os.environ['PORT']) (and 0.0.0.0 or 127.0.0.1), not a port written in the code"


def elsewhere(name: str, port: int, ports: set[int]) -> dict[str, object]:
    """An instance that never answers on $PORT but listens on other ports."""
    shown = ", ".join(str(p) for p in sorted(ports))
    return {"kind": Kind.PORTS, "type": type_of(name), "status": Status.CONFIRMED, "request": name,
            "line": f"{name} listens on {shown}, not $PORT={port} (port binding)", "rule": RULE, "fix": FIX,
            "evidence": [[name, sorted(ports), port]]}
