"""Backing-service chaos, the pure parts: which URLs are proxied, rewriting, verdicts, the fault stream."""

import random

import pytest

from procrun.backing.faults import KINDS, VERDICTS, draw, make, spec, timed
from procrun.backing.urls import find, rewrite
from procrun.backing.verdicts import Fault, Seen, judge, summary


@pytest.mark.parametrize("value, port", [
    ("postgres://u:p@localhost/db", 5432), ("postgresql://localhost:6543/db", 6543), ("redis://localhost", 6379),
    ("redis://127.0.0.1:7000/2", 7000), ("mysql://root@localhost/app", 3306), ("amqp://guest:guest@localhost//", 5672),
    ("mongodb://localhost/app", 27017), ("http://localhost:9200", 9200), ("redis://[::1]:7001", 7001),
])
def test_loopback_service_urls_are_proxied_with_their_default_port(value, port):
    proxied, skipped = find({"URL": value}, own_ports={5000})
    assert skipped == [] and [(b.var, b.port) for b in proxied] == [("URL", port)]


@pytest.mark.parametrize("value, reason", [
    ("rediss://localhost:6380", "TLS"), ("https://localhost/api", "TLS"), ("mongodb+srv://localhost/app", "TLS"),
    ("postgres://localhost/db?sslmode=require", "TLS"), ("redis://cache.internal:6379", "not a loopback host"),
    ("postgres:///db?host=/var/run/postgresql", "a unix socket"), ("ftp://localhost/x", "unknown scheme ftp://"),
    ("http://localhost:5000", "one of this session's own"), ("redis://localhost:99999", "not a URL"),
])
def test_values_left_alone_say_why(value, reason):
    proxied, skipped = find({"URL": value}, own_ports={5000})
    assert proxied == [] and len(skipped) == 1 and reason in skipped[0].reason


def test_plain_values_are_not_mentioned():
    assert find({"DEBUG": "1", "NAME": "app", "PATH": "/usr/bin"}, own_ports=()) == ([], [])


def test_rewrite_keeps_credentials_path_and_query():
    assert rewrite("postgres://u:p%40ss@localhost/db?application_name=x", 41000) == \
        "postgres://u:p%40ss@127.0.0.1:41000/db?application_name=x"
    assert rewrite("redis://localhost", 41001) == "redis://127.0.0.1:41001"


def seen(pid=10, crashed_at=None, reconnected=False, holding=False, stuck=False, served=False, routed=False):
    """What the session saw of one instance (churned and during: their defaults)."""
    return Seen(pid, crashed_at, reconnected, holding, stuck, served, routed)


def test_verdicts():
    fault = Fault("REDIS_URL", "blackhole", 100.0, 103.0, (("worker.1", 10), ("worker.2", 20), ("web.1", 30),
                                                            ("idle.1", 40)))
    found = judge(fault, {"worker.1": seen(pid=11, crashed_at=100.4), "worker.2": seen(20, holding=True),
                          "web.1": seen(30, reconnected=True, routed=True, stuck=True),
                          "idle.1": seen(40)})
    assert [(v.instance, v.verdict) for v in found] == [("worker.1", "crashed"), ("worker.2", "hung"),
                                                         ("web.1", "hung")]
    assert found[0].after == pytest.approx(0.4)
    slow = judge(fault._replace(action="latency"), {"worker.2": seen(20, holding=True)})
    assert [(v.instance, v.verdict) for v in slow] == [("worker.2", "coped")]  # a slow fault: no hang


def test_faults_that_slow_data_are_judged_coped_or_degraded():
    fault = Fault("REDIS_URL", "bandwidth", 100.0, 103.0, (("worker.1", 10), ("worker.2", 20), ("web.1", 30),
                                                            ("web.2", 40), ("idle.1", 50)))
    found = judge(fault, {"worker.1": seen(10, holding=True)._replace(churned=3),  # gave up on slow connections
                          "worker.2": seen(20, holding=True), "web.1": seen(30, routed=True)._replace(during=True),
                          "web.2": seen(40, routed=True)._replace(during=False), "idle.1": seen(50)})
    assert [(v.instance, v.verdict) for v in found] == [("worker.1", "degraded"), ("worker.2", "coped"),
                                                         ("web.1", "degraded"), ("web.2", "coped")]
    assert all(v.verdict in VERDICTS for v in found)
    hung = judge(fault._replace(action="timeout"), {"worker.2": seen(20, holding=True)})
    assert [v.verdict for v in hung] == ["hung"]  # timeout stops data: an app may wait for ever


def test_requests_during_a_fault_are_compared_with_those_before():
    from procrun.backing.verdicts import worse

    before = [{"sec": s, "p50": 10.0, "2xx": 5} for s in range(90, 100)]
    assert worse(before + [{"sec": 101, "p50": 12.0, "2xx": 5}], 100.0, 103.0) is False
    assert worse(before + [{"sec": 101, "p50": 90.0, "2xx": 5}], 100.0, 103.0) is True  # slower
    assert worse(before + [{"sec": 102, "p50": 11.0, "2xx": 4, "5xx": 1}], 100.0, 103.0) is True  # failing
    assert worse(before + [{"sec": 110, "p50": 90.0}], 100.0, 103.0) is None  # none answered meanwhile


def test_a_fault_is_made_from_the_table_and_bad_values_say_the_range():
    fault = make("bandwidth", {"rate": "8", "direction": "downstream", "toxicity": "0.5"})
    assert (fault.seconds, fault.direction, fault.toxicity, dict(fault.params)) == (3, "downstream", 0.5, {"rate": 8.0})
    assert make("latency").params == {"latency": 200, "jitter": 100}
    assert make("reset", {"seconds": "9"}).seconds == 0.0  # a moment
    for kind, given, says in [
            ("bandwidth", {"rate": "0"}, "rate must be a number from 1 to 1e+07 KB/s, not '0'"),
            ("bandwidth", {"rate": "fast"}, "rate must be a number"),
            ("latency", {"direction": "sideways"}, "direction must be one of both, upstream, downstream"),
            ("outage", {"direction": "upstream"}, "outage takes seconds; not direction"),
            ("slicer", {"size": "4"}, "slicer takes average_size, size_variation, delay, seconds, toxicity, direction"),
            ("tsunami", {}, "unknown backing fault 'tsunami'")]:
        with pytest.raises(ValueError, match=says.replace("+", r"\+").replace("(", r"\(")):
            make(kind, given)
    assert spec("slicer average_size=4 direction=upstream") == ("slicer", {"average_size": "4", "direction": "upstream"})
    with pytest.raises(ValueError, match="is not NAME=VALUE"):
        spec("slicer average_size")


def test_data_is_timed_by_the_fault_in_order():
    rng = random.Random(1)
    pieces, free = timed(make("bandwidth", {"rate": "10"}), b"x" * 2000, 100.0, 0.0, rng)
    assert [len(p) for _, p in pieces] == [500] * 4 and [d for d, _ in pieces] == pytest.approx([100, 100.05, 100.1, 100.15])
    assert free == pytest.approx(100.2)  # 2000 bytes at 10 KB/s
    pieces, free = timed(make("slicer", {"average_size": "3", "size_variation": "0", "delay": "1000"}), b"abcdefgh",
                         100.0, 0.0, rng)
    assert [p for _, p in pieces] == [b"abc", b"def", b"gh"] and pieces[-1][0] == pytest.approx(100.003)
    pieces, free = timed(make("latency", {"latency": "100", "jitter": "0"}), b"a", 100.0, 200.0, rng)
    assert pieces == [(200.0, b"a")]  # never before what is already queued
    assert timed(None, b"a", 100.0, 0.0, rng) == ([(100.0, b"a")], 100.0)


def test_a_crash_is_timed_at_the_exit_and_a_restart_procrun_made_is_no_crash():
    """Regression (#26): 'crashed 3.8 s after outage' for a crash at 0.0 s: the figure was the
    restart that followed, backoff included; a process chaos or `restart` replaced was a crash."""
    fault = Fault("REDIS_URL", "outage", 100.0, 103.0, (("worker.1", 10), ("worker.2", 20)))
    found = judge(fault, {"worker.1": seen(pid=None, crashed_at=100.0), "worker.2": seen(pid=21)})
    assert [(v.instance, v.verdict, v.after) for v in found] == [("worker.1", "crashed", 0.0)]
    assert judge(fault, {"worker.1": seen(pid=11, crashed_at=99.0)}) == []  # crashed before the fault began


def test_summary_says_how_often():
    fault = Fault("DATABASE_URL", "reset", 0.0, 0.0, (("worker.1", 1),))
    verdicts = [v for t in (0.2, 0.3, 0.1) for v in judge(fault._replace(start=0.0), {"worker.1": seen(2, t)})]
    line = summary(verdicts)[0]
    assert line["verdict"] == "crashed" and line["line"] == "worker crashed 0.2 s after reset of DATABASE_URL; 3 of 3 times"


def test_the_fault_stream_replays_from_the_seed_and_is_its_own():
    every = {kind: {} for kind in KINDS}
    a, b = random.Random("backing-7"), random.Random("backing-7")
    first = [draw(a, ["DATABASE_URL", "REDIS_URL"], every) for _ in range(60)]
    assert first == [draw(b, ["DATABASE_URL", "REDIS_URL"], every) for _ in range(60)]
    assert {f[1].kind for f in first} == set(KINDS)
    fixed = [draw(random.Random(3), ["X"], {"bandwidth": {"rate": "8"}})[1] for _ in range(5)]
    assert all(f.kind == "bandwidth" and f.get("rate") == 8 for f in fixed)  # procrun.yaml fixes what it names
    process_chaos = random.Random(7)  # chaos.schedule's stream: untouched by the backing one
    assert process_chaos.random() == random.Random(7).random()


def test_the_readme_shows_the_fault_table_as_declared():
    from pathlib import Path

    from procrun.backing.faults import table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "\n".join(table()) in readme
