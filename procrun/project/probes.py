"""What a type's ``ready:`` and ``health:`` say, checked and frozen. Pure: the probes run in
``procrun.supervise.probe``.

``ready: port`` (web's default) or ``spawn`` (every other type's), or one mapping naming
its kind: ``{http: /health}`` (GET on the instance's $PORT; 2xx/3xx, or ``status: [200]``),
``{exec: "pg_isready -h localhost"}`` (exit 0), ``{log: "regex"}`` (a line of the
instance's own output) or ``{port: true}``; each with ``interval`` and ``timeout``. ``health:``
takes the same mappings plus ``failures: N`` (consecutive failures before a restart).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

KINDS = ("http", "exec", "log", "port")  # the mapping forms; "spawn" is a word only
READY_WORDS = ("port", "spawn")
DEFAULTS = {"ready": {"interval": 0.5, "timeout": 1.0}, "health": {"interval": 5.0, "timeout": 2.0, "failures": 3}}


class Invalid(ValueError):
    """A probe's rule, in words; ``at`` the key of its mapping that holds the mistake."""

    def __init__(self, message: str, at: str | None = None) -> None:
        super().__init__(message)
        self.at = at


class Probe(NamedTuple):
    """One check of an instance: its kind and target, how often and how long a try may take."""

    kind: str  # port, spawn, http, exec or log
    target: str = ""  # http: the path; exec: the command; log: the pattern
    interval: float = 0.5  # seconds between tries
    timeout: float = 1.0  # seconds a try may take
    status: tuple[int, ...] = ()  # http: the statuses that pass; (): any 2xx or 3xx
    failures: int = 0  # health: consecutive failures that restart the instance

    def describe(self) -> str:
        """How the probe is named in a line: ``http GET /health``, ``exec 'redis-cli ping'``."""
        if self.kind == "http":
            return f"http GET {self.target}"
        if self.kind in ("exec", "log"):
            return f"{self.kind} {self.target!r}"
        return self.kind

    def passes(self, status: int) -> bool:
        """An HTTP probe's answer passes."""
        return status in self.status if self.status else 200 <= status < 400


PORT, SPAWN = Probe("port"), Probe("spawn")


def ready(value: Any) -> Probe:
    """``types.T.ready``: a word (port, spawn) or a probe mapping."""
    if isinstance(value, str):
        if value not in READY_WORDS:
            raise Invalid(f"must be one of {', '.join(READY_WORDS)} or a mapping like {{http: /health}}")
        return Probe(value)
    return _probe(value, "ready")


def health(value: Any) -> Probe:
    """``types.T.health``: a probe mapping with ``failures``."""
    return _probe(value, "health")


def _probe(value: Any, key: str) -> Probe:
    if not isinstance(value, Mapping):
        raise Invalid("must be a mapping like {http: /health, interval: 5}")
    known = (*KINDS, "interval", "timeout", "status", *(("failures",) if key == "health" else ()))
    for name in value:
        if name not in known:
            raise Invalid(f"has unknown key {name!r}; known keys: {', '.join(known)}", name)
    kinds = [k for k in KINDS if k in value]
    if len(kinds) != 1:
        raise Invalid(f"must name exactly one of {', '.join(KINDS)}" + (f", not {' and '.join(kinds)}" if kinds else ""))
    kind = kinds[0]
    target = _target(kind, value[kind])
    settings = {**DEFAULTS[key], **{k: value[k] for k in ("interval", "timeout", "failures") if k in value}}
    for name in ("interval", "timeout"):
        settings[name] = _seconds(settings[name], name)
    if key == "health":
        failures = settings["failures"]
        if isinstance(failures, bool) or not isinstance(failures, int) or not 1 <= failures <= 1000:
            raise Invalid("failures must be an integer from 1 to 1000", "failures")
    status = _status(value.get("status"), kind)
    return Probe(kind, target, settings["interval"], settings["timeout"], status, settings.get("failures", 0))


def _target(kind: str, value: Any) -> str:
    if kind == "port":
        if value is not True:
            raise Invalid("port must be true (the instance's $PORT accepts a connection)", kind)
        return ""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{kind} must be a non-empty string", kind)
    if kind == "http" and not value.startswith("/"):
        raise Invalid(f"http must be a path starting with / (GET on the instance's $PORT), not {value!r}", kind)
    if kind == "http" and any(c.isspace() for c in value):
        raise Invalid("http path must not contain white space; percent-encode it", kind)
    if kind == "log":
        try:
            re.compile(value)
        except re.error as exc:
            raise Invalid(f"log is not a regular expression ({exc})", kind) from None
    return value


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.01 <= value <= 3600:
        raise Invalid(f"{name} must be a number of seconds from 0.01 to 3600", name)
    return float(value)


def _status(value: Any, kind: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if kind != "http":
        raise Invalid("status applies to http probes only", "status")
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in items):
        raise Invalid("status must be HTTP status codes, like [200, 204]", "status")
    return tuple(items)
