"""Request outcomes per instance per second, for the journal and the timeline. Pure."""

from __future__ import annotations


class Tally:
    """Counts by status class (2xx..5xx, and 503 the router answered itself) and latency
    percentiles, per (wall-clock second, instance)."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[int, str], tuple[dict[str, int], list[float]]] = {}

    def __bool__(self) -> bool:
        return bool(self._buckets)

    def add(self, second: int, name: str, status: int, own: bool, seconds: float) -> None:
        counts, latencies = self._buckets.setdefault((second, name), ({}, []))
        key = "503" if own and status == 503 else f"{status // 100}xx"
        counts[key] = counts.get(key, 0) + 1
        latencies.append(seconds)

    def drain(self, before: int | None = None) -> list[dict[str, object]]:
        """Records of the seconds before ``before`` (all with None), oldest first, then forgotten."""
        done = sorted(key for key in self._buckets if before is None or key[0] < before)
        out = []
        for second, name in done:
            counts, latencies = self._buckets.pop((second, name))
            ordered = sorted(latencies)
            out.append({"sec": second, "n": name, "count": len(ordered), **counts,
                        "p50": round(_rank(ordered, 0.50) * 1000, 2), "p99": round(_rank(ordered, 0.99) * 1000, 2)})
        return out


def _rank(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
