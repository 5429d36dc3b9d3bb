"""The range of every numeric setting, checked the same way whatever its source
(flags, procrun.yaml, the control socket). Pure.

Each check takes a parsed value and returns it, or raises ``ValueError`` with
the rule in words, so every source can name the setting and its position.
"""

from __future__ import annotations

import math

SEED_MAX = 2**64 - 1
MAX_INSTANCES = 1000  # per type, unless procrun.yaml raises it (max_instances)
MAX_INSTANCES_CEILING = 100_000


def port(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("is not a port number; use an integer from 1 to 65535")
    if not 1 <= value <= 65535:
        raise ValueError("is out of range; use an integer from 1 to 65535")
    return value


def seconds(value: float) -> float:
    """Timeouts, graces, uptimes, debounce: finite and 0 or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError("must be a finite number of seconds, 0 or more")
    return float(value)


def interval(value: float) -> float:
    """Mean intervals and router timeouts: finite and more than 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError("must be a finite number of seconds, more than 0")
    return float(value)


def rate(value: float) -> float:
    """A share of requests (router.compare): from 0 (off) to 1 (every one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("must be a number from 0 (off) to 1 (every request)")
    return float(value)


def seed(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEED_MAX:
        raise ValueError(f"must be an integer from 0 to {SEED_MAX}")
    return value


def instances(value: int) -> int:
    """The per-type cap itself (procrun.yaml max_instances)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INSTANCES_CEILING:
        raise ValueError(f"must be an integer from 1 to {MAX_INSTANCES_CEILING}")
    return value


def sessions(value: int) -> int:
    """Sessions whose journal is kept (journal.keep)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValueError("must be an integer from 1 to 1000")
    return value


def megabytes(value: float) -> float:
    """A journal's size cap (journal.max_mb): at least 1 MB, at most 1 TB."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 1_000_000:
        raise ValueError("must be a number of megabytes from 1 to 1000000")
    return float(value)


def parse_seconds(text: str, check=seconds) -> float:  # type: ignore[no-untyped-def]
    """A flag's text as seconds; ``inf`` and ``nan`` parse as floats and are refused by the check."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    return check(value)
