"""Start order (types.T.after) as Machine transitions, with a fake clock."""

from procrun.supervise.machine import Machine, Rules, Say, Spawn, State
from procrun.supervise.order import StartOrder
from tests.supervisor.test_machine import inst, of, respond


def spawned_names(actions):
    return [a.instance.name for a in of(Spawn, actions)]


def said(actions):
    return [a.text for a in of(Say, actions)]


def machine(**kw):
    return Machine([inst("db"), inst("web", 1), inst("web", 2), inst("worker")], Rules(restart="on-failure"), **kw)


def probe_spawn(m, actions, pids, now):
    """Spawn like a session whose web and db are ready only when their port answers."""
    out = []
    for a in of(Spawn, actions):
        out += m.spawned(a.instance.name, next(pids), now, probing=a.instance.type in ("web", "db"))
    return out


def test_a_type_waits_until_every_instance_it_starts_after_is_ready():
    m = machine(order=StartOrder(after={"worker": ("web", "db")}))
    pids = iter(range(100, 200))
    first = m.start(0.0)
    assert spawned_names(first) == ["db.1", "web.1", "web.2"]
    assert "worker waits for web, db to be ready before it starts" in said(first)
    assert m.get("worker.1").state is State.WAITING and m.waiting_for("worker") == ("web", "db")
    probe_spawn(m, first, pids, 0.0)
    assert spawned_names(m.became_ready("web.1", m.get("web.1").pid, 1.0)) == []
    assert spawned_names(m.became_ready("db.1", m.get("db.1").pid, 1.5)) == []
    released = m.became_ready("web.2", m.get("web.2").pid, 2.0)
    assert spawned_names(released) == ["worker.1"] and "web, db ready; starting worker" in said(released)
    assert m.waiting_for("worker") == ()


def test_only_the_first_start_waits():
    m = machine(order=StartOrder(after={"worker": ("web",)}))
    pids = iter(range(100, 200))
    first = m.start(0.0)
    probe_spawn(m, first, pids, 0.0)
    for name in ("web.1", "web.2"):
        respond(m, m.became_ready(name, m.get(name).pid, 1.0), 1.0, pids)
    worker = m.get("worker.1").pid
    respond(m, m.exited(m.get("web.1").pid, -9, 2.0), 2.0, pids)  # web.1 crashes: it restarts
    again = m.exited(worker, 1, 2.1)  # the worker crashes while web.1 is not ready: no waiting
    assert m.get("worker.1").state is State.BACKOFF
    assert spawned_names(m.tick(2.2) + again) == ["web.1", "worker.1"]  # web.1 is not ready, and no matter


def test_a_dependency_never_ready_is_named_and_the_type_starts_anyway():
    m = machine(order=StartOrder(after={"worker": ("web",)}, boot_timeouts={"web": 5.0}))
    pids = iter(range(100, 200))
    probe_spawn(m, m.start(0.0), pids, 0.0)
    respond(m, m.became_ready("web.1", m.get("web.1").pid, 1.0), 1.0, pids)
    assert m.next_deadline() == 5.0
    assert spawned_names(m.tick(4.9)) == []
    late = m.tick(5.0)
    assert spawned_names(late) == ["worker.1"] and "web not ready after 5s; starting worker anyway" in said(late)


def test_a_dependency_not_started_is_ignored_with_one_line():
    m = Machine([inst("worker")], order=StartOrder(after={"worker": ("web",)}))
    first = m.start(0.0)
    assert spawned_names(first) == ["worker.1"]
    assert said(first) == ["worker starts after web, which this session does not start; not waiting for it"]


def test_spawn_ready_dependencies_release_at_spawn_and_shutdown_drops_the_wait():
    m = machine(order=StartOrder(after={"worker": ("db",)}))
    pids = iter(range(100, 200))
    first = m.start(0.0)
    out = respond(m, first, 0.0, pids)  # db counts as ready once spawned (no probe)
    assert "worker.1" in spawned_names(out)
    m2 = machine(order=StartOrder(after={"worker": ("web",)}))
    probe_spawn(m2, m2.start(0.0), iter(range(300, 400)), 0.0)
    m2.shutdown(0, 1.0, "quit")
    assert m2.get("worker.1").state is State.EXITED
    assert spawned_names(m2.tick(100.0)) == []
