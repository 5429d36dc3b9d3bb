"""One-shot types, start-order conditions, the release phase and liveness as Machine transitions,
with a fake clock (#28)."""

import signal

import pytest

from procrun.project.plan import Instance
from procrun.supervise.machine import Finish, Kill, Machine, Rules, Say, Spawn, State
from procrun.supervise.order import StartOrder
from tests.supervisor.test_machine import inst, of, respond


def release_inst():
    return Instance("release", 1, "run release", None)


def spawned(actions):
    return [a.instance.name for a in of(Spawn, actions)]


def said(actions):
    return [a.text for a in of(Say, actions)]


def lifecycle(restart="never", release=True, after=None):
    """release (optional), db, migrate (one-shot), web; web waits for migrate to complete and db to
    be ready; every type waits for release."""
    after = dict(after or {"web": (("migrate", "completed"), ("db", "ready"))})
    if release:
        after = {t: (*after.get(t, ()), ("release", "completed")) for t in ("db", "migrate", "web")}
    instances = ([release_inst()] if release else []) + [inst("db"), inst("migrate"), inst("web")]
    return Machine(instances, Rules(restart=restart, oneshots=frozenset({"migrate", "release"})),
                   order=StartOrder(after, {"db": 5.0}, quiet=("release",)))


def test_release_runs_first_then_the_formation_in_its_order():
    m = lifecycle()
    pids = iter(range(100, 200))
    first = respond(m, m.start(0.0), 0.0, pids)
    assert spawned(first) == ["release.1"]
    assert "release runs first; db, migrate, web start once it completes" in said(first)
    assert "web waits for migrate to complete and db to be ready before it starts" in said(first)
    assert {p.name: p.state for p in m.all()} == {"release.1": State.RUNNING, "db.1": State.WAITING,
                                                  "migrate.1": State.WAITING, "web.1": State.WAITING}
    done = respond(m, m.exited(m.get("release.1").pid, 0, 1.0), 1.0, pids)
    assert "release.1 completed" in said(done) and "release completed; starting db, migrate" in said(done)
    assert spawned(done) == ["db.1", "migrate.1"] and m.get("release.1").state is State.COMPLETED
    migrated = respond(m, m.exited(m.get("migrate.1").pid, 0, 2.0), 2.0, pids)
    assert m.get("migrate.1").state is State.COMPLETED and spawned(migrated) == ["web.1"]  # db was ready at spawn
    assert "migrate completed and db ready; starting web" in said(migrated)
    assert m.ending is None  # a one-shot's exit 0 never ends the session, whatever the policy


def test_a_failed_release_ends_the_start_with_its_code_and_one_line():
    m = lifecycle(restart="always")
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    out = m.exited(m.get("release.1").pid, 3, 1.0)
    assert "release.1 failed (exit code 3); the formation does not start" in said(out)
    assert of(Finish, out) == [Finish(3)] and spawned(out) == []


def test_a_release_that_fails_later_keeps_the_running_formation():
    m = lifecycle(restart="on-failure")
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    respond(m, m.exited(m.get("release.1").pid, 0, 1.0), 1.0, pids)
    respond(m, m.exited(m.get("migrate.1").pid, 0, 2.0), 2.0, pids)
    respond(m, m.restart_procs(["release.1"], 3.0), 3.0, pids)  # a deploy (watch) runs it again
    assert m.get("release.1").state is State.RUNNING
    out = m.exited(m.get("release.1").pid, 1, 4.0)
    assert "release.1 failed (exit code 1); the running formation is kept" in said(out)
    assert m.ending is None and m.get("web.1").state is State.RUNNING


def test_a_one_shot_that_fails_without_retries_stops_the_start_naming_it():
    m = lifecycle(release=False)
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    out = m.exited(m.get("migrate.1").pid, 4, 1.0)
    assert "migrate.1 failed (exit code 4); web waits for it; stopping" in said(out)
    assert of(Finish, out) == [] and m.ending == 4  # (db is still stopping)


def test_a_one_shot_retries_under_its_policy_then_stops_the_start_out_of_retries():
    m = lifecycle(restart="on-failure", release=False)
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    out = m.exited(m.get("migrate.1").pid, 2, 1.0)
    assert m.get("migrate.1").state is State.BACKOFF and m.ending is None  # first failure: a retry
    respond(m, m.tick(1.0), 1.0, pids)
    m.exited(m.get("migrate.1").pid, 2, 1.1)
    respond(m, m.tick(1.3), 1.3, pids)
    out = m.exited(m.get("migrate.1").pid, 2, 1.4)
    assert "migrate.1 failed (exit code 2, 3 times in a row); web waits for it; stopping" in said(out)
    assert m.ending == 2


def test_a_completed_wait_has_no_timeout_but_a_ready_wait_does():
    m = lifecycle(release=False)
    pids = iter(range(100, 200))
    first = m.start(0.0)
    for a in of(Spawn, first):  # db is ready only when its port answers (it never does)
        m.spawned(a.instance.name, next(pids), 0.0, probing=a.instance.type == "db")
    out = m.tick(5.0)
    assert "db not ready after 5s; web still waits for migrate to complete" in said(out) and spawned(out) == []
    done = respond(m, m.exited(m.get("migrate.1").pid, 0, 9.0), 9.0, pids)
    assert spawned(done) == ["web.1"] and "migrate completed; starting web" in said(done)


def test_chaos_never_picks_release_or_a_completed_one_shot():
    m = lifecycle()
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    assert [p.name for p in m.disruptable()] == []  # release runs: a deploy step, not the formation
    assert m.disrupt("release.1", "kill", 0.5) == []  # (procrun chaos now release.1 neither)
    respond(m, m.exited(m.get("release.1").pid, 0, 1.0), 1.0, pids)
    respond(m, m.exited(m.get("migrate.1").pid, 0, 2.0), 2.0, pids)
    assert sorted(p.name for p in m.disruptable()) == ["db.1", "web.1"]


def test_scale_refuses_release_and_runs_a_completed_one_shot_again():
    m = lifecycle()
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    with pytest.raises(ValueError, match="release runs once before the other types; it cannot be scaled"):
        m.scale("release", 2, 0.5)
    respond(m, m.exited(m.get("release.1").pid, 0, 1.0), 1.0, pids)
    respond(m, m.exited(m.get("migrate.1").pid, 0, 2.0), 2.0, pids)
    assert spawned(m.restart_procs(["migrate.1"], 3.0)) == ["migrate.1"]  # watch's deploy runs it again


def test_an_unhealthy_instance_is_stopped_and_its_exit_is_a_failure_under_its_policy():
    m = Machine([inst("web")], Rules(restart="on-failure"))
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    pid = m.get("web.1").pid
    out = m.unhealthy("web.1", pid, 5.0, "http GET /health failed 3 times in a row (last: status 500)")
    assert said(out) == ["web.1 is unhealthy: http GET /health failed 3 times in a row (last: status 500); restarting it"]
    assert of(Kill, out) == [Kill("web.1", pid, signal.SIGTERM)]
    after = m.exited(pid, 0, 5.1)  # even a clean exit after the stop is a failure: restarted
    assert m.get("web.1").state is State.BACKOFF and "web.1 exited with exit code 1; restarting in 0.0s" in said(after)
    assert m.unhealthy("web.1", pid, 6.0, "x") == []  # an old pid: nothing


def test_liveness_never_stops_a_paused_instance():
    m = Machine([inst("web")], Rules(restart="on-failure"))
    pids = iter(range(100, 200))
    respond(m, m.start(0.0), 0.0, pids)
    pid = m.get("web.1").pid
    m.disrupt("web.1", "pause", 1.0, pause_for=5.0)
    assert m.unhealthy("web.1", pid, 2.0, "x") == []
