import pytest

from procrun.errors import UsageError
from procrun.project.plan import parse_formation, parse_port, plan, resolve_counts, select_types
from procrun.project.procfile import parse

PF = parse("web: w\nworker: k\nclock: c\n")


def test_parse_formation():
    assert parse_formation("web=2, worker=3") == {"web": 2, "worker": 3}
    assert parse_formation("all=2") == {"all": 2}
    assert parse_formation("") == {}


@pytest.mark.parametrize("text", ["web", "web=x", "web=-1", "=2", "web=2;worker=1"])
def test_bad_formation(text):
    with pytest.raises(UsageError):
        parse_formation(text)


def test_honcho_port_formula():
    types = select_types(PF, [])
    counts = resolve_counts(types, {"web": 2, "worker": 3}, PF.names)
    got = {i.name: i.port for i in plan(PF, types, counts, 5000, {})}
    assert got == {"web.1": 5000, "web.2": 5001, "worker.1": 5100, "worker.2": 5101,
                   "worker.3": 5102, "clock.1": 5200}


def test_port_counts_started_types_only_in_procfile_order():
    types = select_types(PF, ["clock", "web"])
    assert types == ("web", "clock")
    got = {i.name: i.port for i in plan(PF, types, resolve_counts(types, {}, PF.names), 6000, {})}
    assert got == {"web.1": 6000, "clock.1": 6100}


def test_zero_count_type_keeps_its_port_slot_like_honcho():
    from honcho.environ import expand_processes
    types = select_types(PF, [])
    counts = resolve_counts(types, {"web": 0, "worker": 2}, PF.names)
    ours = {i.name: i.port for i in plan(PF, types, counts, 5000, {})}
    theirs = {p.name: int(p.env["PORT"]) for p in
              expand_processes({t.name: t.command for t in PF.types}, concurrency=counts, port=5000)}
    assert ours == theirs


def test_all_sets_default_count_and_env_names():
    types = select_types(PF, [])
    instances = plan(PF, types, resolve_counts(types, {"all": 2, "clock": 1}, PF.names), 5000, {"X": "1"})
    assert [i.name for i in instances] == ["web.1", "web.2", "worker.1", "worker.2", "clock.1"]
    env = instances[1].env
    assert env["PS"] == env["DYNO"] == env["HONCHO_PROCESS_NAME"] == "web.2"
    assert env["PORT"] == "5001" and env["X"] == "1"


def test_unknown_types_and_bad_ports():
    with pytest.raises(UsageError, match="no process type 'api'"):
        select_types(PF, ["api"])
    with pytest.raises(UsageError, match="unknown process type 'api'"):
        resolve_counts(("web",), {"api": 1}, PF.names)
    for bad in ["abc", "0", "70000", "-5"]:
        with pytest.raises(UsageError):
            parse_port(bad)
    types = select_types(PF, [])
    with pytest.raises(UsageError, match="above 65535"):
        plan(PF, types, resolve_counts(types, {}, PF.names), 65500, {})


def test_port_clash_past_100_instances_is_refused_naming_both():
    pf = parse("worker: w\nclock: c\n")
    counts = resolve_counts(("worker", "clock"), {"worker": 150, "clock": 1}, pf.names)
    with pytest.raises(UsageError, match="worker.101 and clock.1 would both get port 5100"):
        plan(pf, ("worker", "clock"), counts, 5000, {})


def test_instances_per_type_are_capped():
    with pytest.raises(UsageError, match="web=1001 is more than 1000 instances of a type; set max_instances"):
        resolve_counts(("web",), {"web": 1001}, ("web",))
    assert resolve_counts(("web",), {"web": 1001}, ("web",), cap=2000) == {"web": 1001}
