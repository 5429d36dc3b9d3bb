"""What the session's services tell each other, in one small explicit object (uvicorn's
``ServerState`` is the model): the composition root makes it and hands it to the session and
to each service that writes or reads a channel, so no service reaches into another's state."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

HISTORY = 120  # seconds of request records kept per instance


class Shared:
    """The channels between services; each says who writes it and who reads it."""

    __slots__ = ("in_flight", "rates", "history", "taps", "watchers", "release", "releases", "on_write", "exited")

    def __init__(self) -> None:
        # instance -> the request it is serving ("POST /upload"): the router writes it; fresh
        # directories' live writes (attribution) and backing verdicts (a stuck request) read it
        self.in_flight: dict[str, str] = {}
        # instance -> the router's last second of requests: the router writes it; `top` and
        # backing verdicts read it
        self.rates: dict[str, dict[str, object]] = {}
        # instance -> the same records, its last HISTORY seconds with requests: the router writes
        # it; backing verdicts read it (were requests failing or slower while a fault lasted)
        self.history: dict[str, deque[dict[str, object]]] = {}
        # instance -> the attached client's writer: `attach` writes it; the instance's relay sends
        # its output there, and chaos spares attached instances
        self.taps: dict[str, Callable[[bytes], None]] = {}
        # every relayed line, by instance: `top`'s subscriptions add one (bounded on their side);
        # the relays call each (none: nothing is done per line)
        self.watchers: list[Callable[[str, list[bytes]], None]] = []
        # the release: watch starts a new one before it restarts for a code or .env change; the
        # session notes each instance's at spawn; the memory diagnosis compares within one release
        self.release = 0
        self.releases: dict[str, int] = {}
        # (instance, path, in its TMPDIR, the request it was serving or None): fresh directories'
        # watcher calls it for every write; the router's recorder listens (a later request naming
        # the file; a session whose issuing request wrote a file keeps it on disk)
        self.on_write: Callable[[str, str, bool, str | None], None] | None = None
        # instances whose process ended, once the Machine decided what follows: the session calls
        # each; watch listens (a deploy's restarts wait for its release phase to complete)
        self.exited: list[Callable[[str], None]] = []
