"""Backing-service chaos, the pure parts: which URLs are proxied, rewriting, verdicts, the fault stream."""

import random

import pytest

from procrun.backing.service import FAULTS, draw
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
    assert judge(fault._replace(action="latency"), {"worker.2": seen(20, holding=True)}) == []  # latency: no hang


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
    a, b = random.Random("backing-7"), random.Random("backing-7")
    first = [draw(a, ["DATABASE_URL", "REDIS_URL"]) for _ in range(20)]
    assert first == [draw(b, ["DATABASE_URL", "REDIS_URL"]) for _ in range(20)]
    assert {f[1] for f in first} == set(FAULTS)
    process_chaos = random.Random(7)  # chaos.schedule's stream: untouched by the backing one
    assert process_chaos.random() == random.Random(7).random()
