"""The backing faults, declared once (toxiproxy's set, and an outage): what each does, its
parameters with their units, accepted ranges, defaults and the range the schedule draws from,
and what its verdicts mean. The schedule, ``procrun chaos now --backing NAME --action A
--param k=v``, procrun.yaml's ``chaos.backing_faults``, the report, the timeline and the
Kubernetes export all read this table. Pure.

Directions are toxiproxy's: *upstream* is what the app sends to the service, *downstream* what
comes back. *toxicity* is the share of connections a fault touches (each connection draws once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import random


class Param(NamedTuple):
    name: str
    unit: str
    low: float  # accepted range
    high: float
    default: float
    drawn: tuple[float, float]  # what the schedule draws from
    does: str


class Kind(NamedTuple):
    name: str
    does: str
    params: tuple[Param, ...] = ()
    lasting: bool = True  # it lasts a while (a reset is one moment)
    per_link: bool = True  # direction and toxicity apply (an outage is the whole service)
    stops_data: bool = False  # an app may wait forever on it: *hung* is a possible verdict


TIMED = ("latency", "bandwidth", "slicer")  # the kinds that hold data back (``timed``)

SECONDS = Param("seconds", "s", 0.1, 3600, 3, (1, 5), "how long it lasts")
TOXICITY = Param("toxicity", "", 0, 1, 1, (1, 1), "the share of connections it touches")
DIRECTIONS = ("both", "upstream", "downstream")  # upstream: app -> service; downstream: service -> app

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("latency", "every byte delayed", (
        Param("latency", "ms", 0, 60000, 200, (50, 500), "the delay"),
        Param("jitter", "ms", 0, 60000, 100, (0, 200), "each chunk's delay varies by up to this, either way"))),
    Kind("reset", "every open connection reset", lasting=False),
    Kind("outage", "new connections refused, open ones dropped", per_link=False, stops_data=True),
    Kind("blackhole", "connections held, nothing forwarded", stops_data=True),
    Kind("bandwidth", "throughput capped", (
        Param("rate", "KB/s", 1, 10_000_000, 16, (4, 64), "the cap"),)),
    Kind("slow_close", "a close passed on late", (
        Param("delay", "ms", 0, 600000, 1000, (500, 3000), "how late"),)),
    Kind("timeout", "nothing forwarded, the connection closed after a while", (
        Param("timeout", "ms", 0, 600000, 1000, (200, 2000), "when it is closed (0: never)"),), stops_data=True),
    Kind("slicer", "writes cut into small pieces, each a little late: framing bugs show", (
        Param("average_size", "bytes", 1, 65536, 16, (1, 64), "a piece's mean size"),
        Param("size_variation", "bytes", 0, 65536, 8, (0, 16), "how much a piece's size varies"),
        Param("delay", "us", 0, 1_000_000, 1000, (100, 5000), "the pause before each piece"))),
    Kind("limit_data", "the connection closed once this many bytes went through", (
        Param("bytes", "bytes", 1, 1 << 40, 1024, (64, 4096), "the limit, per connection and direction"),)),
)}

VERDICTS = {
    "crashed": "an instance that used the service exited within the grace after the fault began",
    "hung": "after a fault that stops data, it neither reconnected nor exited while it still held its "
            "connection or (behind the router) a request it did not answer",
    "recovered": "after a fault that broke its connections it connected again (and, behind the router, answered)",
    "degraded": "while the fault lasted its requests failed or slowed (behind the router), or it "
                "dropped connections and opened new ones (a worker)",
    "coped": "it kept working through a fault that slows or cuts data, with no failure seen",
}


class Fault(NamedTuple):
    """One fault to run: its kind, how long, on which direction, for which share of the
    connections, and its own parameters (every one of the kind's, defaults filled in)."""

    kind: str
    seconds: float
    direction: str = "both"
    toxicity: float = 1.0
    params: Mapping[str, float] = {}

    def get(self, name: str) -> float:
        return self.params[name]

    def hits(self, direction: int) -> bool:
        """direction 0: upstream (app to service), 1: downstream."""
        return self.direction == "both" or self.direction == DIRECTIONS[1 + direction]

    def describe(self, service: str) -> str:
        """``latency REDIS_URL for 3s: latency 200 ms, jitter 100 ms (every byte delayed)``"""
        kind = KINDS[self.kind]
        bits = [f"{p.name} {self.params[p.name]:g}{' ' + p.unit if p.unit else ''}" for p in kind.params]
        if kind.per_link and self.direction != "both":
            bits.append(self.direction)
        if kind.per_link and self.toxicity < 1:
            bits.append(f"{self.toxicity:.0%} of connections")
        when = f" for {self.seconds:g}s" if kind.lasting else ""
        return f"{self.kind} {service}{when}{': ' + ', '.join(bits) if bits else ''} ({kind.does})"

    def record(self) -> dict[str, object]:
        """As the journal and the report keep it."""
        return {"action": self.kind, "seconds": self.seconds, "direction": self.direction,
                "toxicity": self.toxicity, **self.params}


def make(kind: str, given: Mapping[str, str] | None = None, source: str = "--param") -> Fault:
    """A fault from names and text values (`chaos now --param`, procrun.yaml); ValueError names
    what is wrong and what would be right."""
    if kind not in KINDS:
        raise ValueError(f"unknown backing fault {kind!r}; choose from {', '.join(KINDS)}")
    spec, given = KINDS[kind], dict(given or {})
    accepted = {p.name: p for p in spec.params + (SECONDS,) + ((TOXICITY,) if spec.per_link else ())}
    direction = given.pop("direction", "both") if spec.per_link else "both"
    if direction not in DIRECTIONS:
        raise ValueError(f"{source}: direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    values = {}
    for name, param in accepted.items():
        text = given.pop(name, None)
        values[name] = param.default if text is None else _number(param, text, source)
    if given:
        names = ", ".join(list(accepted) + (["direction"] if spec.per_link else []))
        raise ValueError(f"{source}: {kind} takes {names}; not {', '.join(sorted(given))}")
    seconds, toxicity = values.pop("seconds"), values.pop("toxicity", 1.0)
    return Fault(kind, seconds if spec.lasting else 0.0, direction, toxicity, values)


def _number(param: Param, text: str, source: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not param.low <= value <= param.high:  # (nan fails both)
        unit = f" {param.unit}" if param.unit else ""
        raise ValueError(f"{source}: {param.name} must be a number from {param.low:g} to {param.high:g}{unit}, "
                         f"not {text!r}")
    return value


def spec(text: str, source: str = "chaos.backing_faults") -> tuple[str, dict[str, str]]:
    """``"bandwidth rate=8 direction=downstream"``: the kind and the parameters it fixes,
    checked (ValueError says what is wrong)."""
    kind, *pairs = text.split()
    given = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name or not value:
            raise ValueError(f"{source}: {pair!r} is not NAME=VALUE; write it like \"bandwidth rate=8\"")
        given[name] = value
    make(kind, given, source)
    return kind, given


def chosen(specs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """chaos.backing_faults as the schedule and the export read it: each kind with what it fixes;
    none given: every kind, nothing fixed."""
    return dict(spec(text) for text in specs) or {kind: {} for kind in KINDS}


def draw(rng: random.Random, services: list[str], chosen: Mapping[str, Mapping[str, str]]) -> tuple[str, Fault]:
    """One scheduled fault from the backing stream: (service, fault), of a kind ``chosen`` names
    (what it fixes is kept, the rest drawn). Pure given ``rng``."""
    name = rng.choice(services)
    kind = KINDS[rng.choice(sorted(chosen))]
    drawn = {"seconds": str(round(rng.uniform(*SECONDS.drawn), 2))}
    if kind.per_link:
        drawn["direction"] = rng.choice(DIRECTIONS)
    drawn |= {p.name: str(round(rng.uniform(*p.drawn), 3)) for p in kind.params}
    return name, make(kind.name, {**drawn, **chosen[kind.name]}, "chaos.backing_faults")


def table() -> list[str]:
    """The fault table as the README shows it (a test keeps the two the same)."""
    rows = ["| fault | what it does | its parameters: default (the schedule draws) |", "|---|---|---|"]
    for kind in KINDS.values():
        params = ", ".join(f"`{p.name}` {p.unit + ' ' if p.unit else ''}{p.default:g} ({p.drawn[0]:g}-{p.drawn[1]:g})"
                           for p in kind.params)
        rows.append(f"| `{kind.name}` | {kind.does} | {params or '—'} |")
    return rows


def timed(fault: Fault | None, data: bytes, now: float, free: float,
          rng: random.Random) -> tuple[list[tuple[float, bytes]], float]:
    """When each piece of ``data`` leaves under ``fault`` (latency, bandwidth, slicer; any other
    passes it whole, at once): [(due, piece)], and when the direction is free again. ``free``
    keeps pieces in order and a bandwidth cap across chunks."""
    at = max(now, free)
    if fault is None or fault.kind not in TIMED:
        return [(at, data)], at
    if fault.kind == "latency":
        jitter = fault.get("jitter")
        at = max(now + max(0.0, fault.get("latency") + rng.uniform(-jitter, jitter)) / 1000, free)
        return [(at, data)], at
    out = []
    if fault.kind == "bandwidth":
        rate = fault.get("rate") * 1000  # bytes a second
        step = max(1, int(rate / 20))  # pieces of 50 ms each: a smooth stream, not bursts
        for i in range(0, len(data), step):
            out.append((at, data[i:i + step]))
            at += len(data[i:i + step]) / rate
        return out, at
    size, spread, pause = fault.get("average_size"), fault.get("size_variation"), fault.get("delay") / 1e6
    i = 0
    while i < len(data):
        n = max(1, int(round(size + rng.uniform(-spread, spread))))
        at += pause
        out.append((at, data[i:i + n]))
        i += n
    return out, at
