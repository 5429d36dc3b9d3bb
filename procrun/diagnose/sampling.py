"""router.compare: which safe answers are compared across instances, and what the differences
mean. Pure: request records in, decisions and findings out.

A request is sampled (the router then asks its instance twice and another instance of the
same release once, ``procrun.diagnose.answers``) when its answer is eligible, at most once a
second per type and path pattern and two at a time, with a probability: 1 the first time a
pattern is seen and for a client's first read of each pattern after it wrote (a cart read after
an item was added: where state that never errs shows), ``rate`` otherwise. A pattern with a confirmed
finding is not sampled again. One difference is *suspected*; the same difference (same place)
in a second sample *confirms* it.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from procrun.diagnose.answers import Difference
from procrun.diagnose.report import Kind, Status

EVERY = 1.0  # seconds between two comparisons of one type and path pattern
IN_FLIGHT = 2  # comparisons at once
LIMIT = 10_000  # patterns and clients remembered, the oldest forgotten first
CAUSE = "answers depend on the instance: state kept in one process's memory (a cart, a cache, a counter?)"
FIX = ("keep it in a backing store (Redis, a database) or in the client's signed cookie; a per-process cache of "
       "data the app changes must be shared (Redis, memcached) or not kept")
RULE = "twelve-factor VI, Processes: stateless and share-nothing; memory is a single-transaction cache"


@dataclass
class Compared:
    """One request's finding: the differences seen, and how many samples showed each."""

    type: str
    request: str  # "GET /cart"
    seen: dict[str, int] = field(default_factory=dict)  # where -> samples that showed it
    words: dict[str, str] = field(default_factory=dict)  # where -> the words, latest
    evidence: list[list[object]] = field(default_factory=list)  # [time, instance, status]
    samples: int = 0  # requests procrun sent to decide

    @property
    def status(self) -> Status:
        return Status.CONFIRMED if any(n >= 2 for n in self.seen.values()) else Status.SUSPECTED

    def line(self) -> str:
        shown = sorted(self.words, key=lambda w: -self.seen[w])
        more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
        return f"{self.request}: {'; '.join(self.words[w] for w in shown[:3])}{more} — {CAUSE}"

    def as_report(self) -> dict[str, object]:
        return {"kind": Kind.ANSWERS.value, "type": self.type, "status": self.status.value, "request": self.request,
                "line": self.line(), "rule": RULE, "fix": FIX, "evidence": self.evidence[-8:],
                "replays": self.samples}


class Sampler:
    """Decides what to compare, and keeps what comparing found."""

    def __init__(self, rate: float, rng: random.Random, clock: Callable[[], float]) -> None:
        self.rate, self.rng, self.clock = rate, rng, clock
        self.in_flight = 0
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()  # (type, pattern) -> last comparison
        self._wrote: OrderedDict[str, set[str]] = OrderedDict()  # clients that wrote -> what they read since
        self.found: dict[tuple[str, str], Compared] = {}

    def note(self, key: str, unsafe: bool, issued: str = "") -> None:
        """Every request of a client (``key``; ``issued``: the key its answer gave it, the session a
        first write made): a write makes its next sampled read certain."""
        if unsafe:
            for k in filter(None, (key, issued)):
                self._wrote[k] = set()
                self._wrote.move_to_end(k)
            _bound(self._wrote)

    def due(self, type_name: str, request: str) -> bool:
        """Could a comparison of this request start now (before anything costlier is checked)?"""
        if self.rate <= 0 or self.in_flight >= IN_FLIGHT:
            return False
        last = self._last.get((type_name, request))
        if last is not None and self.clock() - last < EVERY:
            return False
        found = self.found.get((type_name, request))
        return found is None or found.status is not Status.CONFIRMED

    def wants(self, type_name: str, request: str, key: str) -> bool:
        """Compare this (eligible) request of client ``key`` now?"""
        if not self.due(type_name, request):
            return False
        now, last = self.clock(), self._last.get((type_name, request))
        read = self._wrote.get(key)
        after_write = read is not None and request not in read
        if last is not None and not after_write and self.rng.random() >= self.rate:
            return False
        if after_write and len(read) < 100:  # type: ignore[arg-type]
            read.add(request)  # type: ignore[union-attr]
        self._last[(type_name, request)] = now
        self._last.move_to_end((type_name, request))
        _bound(self._last)
        self.in_flight += 1
        return True

    def judged(self, type_name: str, request: str, differences: list[Difference] | None, instances: tuple[str, ...],
               status: int, when: float) -> Compared | None:
        """A comparison's result (None: it could not be made); the finding it made or confirmed."""
        self.in_flight = max(0, self.in_flight - 1)
        if not differences:
            return None
        found = self.found.setdefault((type_name, request), Compared(type_name, request))
        before = found.status
        fresh = False
        for d in differences:
            fresh = fresh or d.where not in found.seen
            found.seen[d.where] = found.seen.get(d.where, 0) + 1
            found.words[d.where] = d.words
        found.samples += len(instances) + 2
        found.evidence += [[round(when, 3), name, status] for name in instances]
        return found if fresh or found.status is not before else None


def _bound(table: OrderedDict) -> None:  # type: ignore[type-arg]
    while len(table) > LIMIT:
        table.popitem(last=False)
