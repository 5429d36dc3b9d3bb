"""The pure state machine driven by hand with a fake clock: no processes."""

import signal

import pytest

from procrun.project.plan import Instance
from procrun.supervise.machine import AfterStop, Backoff, Finish, Kill, Machine, Rules, Say, Spawn, State, Sweep


def inst(type_name="web", index=1):
    return Instance(type_name, index, f"run {type_name}", 5000 + index - 1)


def boot(machine, now=0.0):
    """Start the machine and answer each Spawn with a pid, like the effect layer."""
    pids = iter(range(100, 10_000))
    return respond(machine, machine.start(now), now, pids), pids


def respond(machine, actions, now, pids):
    out = []
    for action in actions:
        out.append(action)
        if isinstance(action, Spawn):
            out += respond(machine, machine.spawned(action.instance.name, next(pids), now), now, pids)
    return out


def of(kind, actions):
    return [a for a in actions if isinstance(a, kind)]


def pid_of(machine, name):
    return machine.get(name).pid


def test_default_policy_first_exit_ends_session_with_its_code():
    m = Machine([inst("web"), inst("worker")], Rules(timeout=5))
    boot(m)
    acts = m.exited(pid_of(m, "worker.1"), 3, now=1.0)
    assert Say("worker.1 stopped (rc=3)") in acts
    assert of(Kill, acts) == [Kill("web.1", 100, signal.SIGTERM)]
    assert Sweep(signal.SIGTERM) in acts
    assert m.exited(100, -15, now=1.1)[-1] == Finish(3)


def test_death_by_signal_ends_with_128_plus_signal():
    m = Machine([inst()], Rules(timeout=5))
    boot(m)
    assert m.exited(100, -9, now=1)[-1] == Finish(137)


def test_shutdown_escalates_to_sigkill_at_deadline():
    m = Machine([inst("web"), inst("worker")], Rules(timeout=2))
    boot(m)
    m.shutdown(130, now=10.0, reason="SIGINT received")
    m.exited(100, -15, now=10.1)
    assert m.next_deadline() == 12.0
    assert m.tick(11.9) == []
    acts = m.tick(12.0)
    assert Kill("worker.1", 101, signal.SIGKILL) in acts and Sweep(signal.SIGKILL) in acts
    assert m.exited(101, -9, now=12.01)[-1] == Finish(130)


def test_second_interrupt_kills_at_once_and_keeps_code():
    m = Machine([inst()], Rules(timeout=30))
    boot(m)
    m.shutdown(143, now=0.0)
    assert Kill("web.1", 100, signal.SIGKILL) in m.hurry(now=0.5)
    assert m.exited(100, -9, now=0.6)[-1] == Finish(143)


def test_on_failure_restarts_with_backoff_and_resets_after_uptime():
    b = Backoff(base=0.1, cap=1.0, reset_after=10, loop_after=3)
    m = Machine([inst()], Rules(restart="on-failure", backoff=b))
    _, pids = boot(m)
    delays = []
    now = 0.0
    for _ in range(6):
        m.exited(pid_of(m, "web.1"), 1, now)
        assert m.get("web.1").state is State.BACKOFF
        delays.append(round(m.next_deadline() - now, 3))
        now = m.next_deadline()
        respond(m, m.tick(now), now, pids)
        assert m.get("web.1").state is State.RUNNING
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0]
    now += 11  # stayed up long enough: next failure retries at once again
    m.exited(pid_of(m, "web.1"), 1, now)
    assert m.next_deadline() == now
    assert m.get("web.1").restarts == 7


def test_crash_loop_is_reported_in_plain_words():
    m = Machine([inst()], Rules(restart="always", backoff=Backoff(loop_after=3)))
    _, pids = boot(m)
    texts = []
    for i in range(3):
        acts = m.exited(pid_of(m, "web.1"), 2, float(i))
        texts += [a.text for a in of(Say, acts)]
        respond(m, m.tick(m.next_deadline()), m.next_deadline(), pids)
    assert "crash-looping" not in texts[1]
    assert "web.1 is crash-looping: it exited 3 times in a row" in texts[-1]
    assert "exit code 2" in texts[-1]


def test_on_failure_clean_exits_end_session_with_zero():
    m = Machine([inst("web"), inst("worker")], Rules(restart="on-failure"))
    boot(m)
    assert of(Finish, m.exited(100, 0, 1.0)) == []
    assert m.get("web.1").state is State.EXITED
    assert m.exited(101, 0, 2.0)[-1] == Finish(0)


def test_stop_by_control_never_ends_session_and_restart_respawns():
    m = Machine([inst("web"), inst("worker")], Rules(timeout=3))
    _, pids = boot(m)
    acts = m.restart_procs(["web.1"], now=1.0)
    assert acts == [Kill("web.1", 100, signal.SIGTERM)]
    acts = respond(m, m.exited(100, -15, now=1.2), 1.2, pids)
    assert of(Spawn, acts) and m.get("web.1").restarts == 1 and m.ending is None
    m.stop(["worker.1"], now=2.0)
    acts = m.exited(101, -15, now=2.1)
    assert m.ending is None and m.get("worker.1").state is State.STOPPED and not of(Finish, acts)


def test_individual_stop_escalates_after_timeout():
    m = Machine([inst()], Rules(timeout=3))
    boot(m)
    m.stop(["web.1"], now=1.0)
    assert m.next_deadline() == 4.0
    assert Kill("web.1", 100, signal.SIGKILL) in m.tick(4.0)


def test_scale_up_uses_next_numbers_and_down_removes_highest():
    m = Machine([inst("web", 1)], make_instance=lambda t, i: inst(t, i))
    _, pids = boot(m)
    acts = respond(m, m.scale("web", 3, now=1.0), 1.0, pids)
    assert [a.instance.name for a in of(Spawn, acts)] == ["web.2", "web.3"]
    acts = m.scale("web", 1, now=2.0)
    assert {a.name for a in of(Kill, acts)} == {"web.2", "web.3"}
    for a in of(Kill, acts):
        m.exited(a.pid, -15, now=2.1)
    assert m.names() == ["web.1"] and m.ending is None


def test_spawn_failure_counts_as_exit_127():
    m = Machine([inst()])
    m.start(0.0)
    assert m.spawn_failed("web.1", "No such file or directory", 0.0)[-1] == Finish(127)


@pytest.mark.parametrize("policy", ["on-failure", "always"])
def test_shutdown_cancels_pending_backoff(policy):
    m = Machine([inst()], Rules(restart=policy))
    boot(m)
    m.exited(100, 1, 1.0)
    assert m.get("web.1").state is State.BACKOFF
    assert m.shutdown(130, 1.0)[-1] == Finish(130)


def test_chaos_kill_restarts_without_ending_the_session():
    m = Machine([inst()], Rules(restart="never"))
    _, pids = boot(m)
    assert m.disrupt("web.1", "kill", 1.0) == [Kill("web.1", 100, signal.SIGKILL)]
    acts = respond(m, m.exited(100, -9, 1.01), 1.01, pids)
    assert of(Spawn, acts) == [Spawn(inst())] and m.ending is None


def test_chaos_relocate_spawns_fresh():
    m = Machine([inst()])
    _, pids = boot(m)
    m.disrupt("web.1", "relocate", 1.0)
    acts = m.exited(100, -15, 1.1)
    assert of(Spawn, acts) == [Spawn(inst(), fresh=True)]


def test_a_relocate_asked_while_not_running_still_starts_fresh():
    """One reading of AfterStop for a running and a not-running instance: a relocate asked while
    the instance waits in backoff starts it in a fresh directory (it used to start it in place)."""
    m = Machine([inst()], Rules(restart="always"))
    boot(m)
    m.exited(100, 1, 1.0)  # crashed: waits in backoff for its next try
    assert m.get("web.1").state is State.BACKOFF and m.get("web.1").pid is None
    acts = m.stop(["web.1"], 1.05, then=AfterStop.RELOCATE)
    assert of(Spawn, acts) == [Spawn(inst(), fresh=True)]


def test_chaos_pause_resumes_and_shutdown_continues_paused():
    m = Machine([inst(), inst("worker")], Rules(timeout=5))
    boot(m)
    assert m.disrupt("web.1", "pause", 1.0, pause_for=2.0) == [Kill("web.1", 100, signal.SIGSTOP)]
    assert m.disrupt("web.1", "kill", 1.5) == []  # paused: not a victim
    assert Kill("web.1", 100, signal.SIGCONT) in m.tick(3.0)
    m.disrupt("worker.1", "pause", 4.0, pause_for=60)
    acts = m.shutdown(130, 5.0)
    i = acts.index(Kill("worker.1", 101, signal.SIGTERM))
    assert acts[i + 1] == Kill("worker.1", 101, signal.SIGCONT)


def test_scale_after_stop_runs_exactly_the_asked_count():
    """Regression: `stop web; scale web=1` printed web=1 but started nothing."""
    m = Machine([inst("web", 1), inst("web", 2)], Rules(restart="on-failure"), make_instance=lambda t, i: inst(t, i))
    _, pids = boot(m)
    for a in of(Kill, m.stop(["web.1", "web.2"], now=1.0)):
        m.exited(a.pid, -15, now=1.1)
    assert all(p.state is State.STOPPED for p in m.all())  # asked to: "stopped", not "exited"
    acts = respond(m, m.scale("web", 1, now=2.0), 2.0, pids)
    assert [a.instance.name for a in of(Spawn, acts)] == ["web.1"]
    assert [p.name for p in m.all() if p.pid is not None] == ["web.1"] and m.names() == ["web.1"]
    acts = respond(m, m.scale("web", 3, now=3.0), 3.0, pids)
    assert [a.instance.name for a in of(Spawn, acts)] == ["web.2", "web.3"]
    assert sum(p.pid is not None for p in m.all()) == 3


def test_refused_scale_changes_nothing():
    """Regression: a scale whose instances cannot be built left phantom 'starting' instances."""
    from procrun.errors import UsageError

    def make(t, i):
        if i > 2:
            raise UsageError(f"{t}.{i} would get port 65536, above 65535; use a lower --port")
        return inst(t, i)

    m = Machine([inst("worker", 1)], Rules(restart="on-failure"), make_instance=make, cap=10)
    boot(m)
    before = m.names(), m.formation()
    with pytest.raises(ValueError, match="above 65535"):
        m.scale("worker", 5, now=1.0)
    with pytest.raises(ValueError, match="more than 10 instances"):
        m.scale("worker", 11, now=1.0)
    assert (m.names(), m.formation()) == before


def test_scale_refuses_a_port_clash_with_another_type():
    m = Machine([Instance("clock", 1, "c", 5100)], Rules(restart="on-failure"), make_instance=lambda t, i: Instance(t, i, "w", 5000 + i - 1))
    boot(m)
    with pytest.raises(ValueError, match="clock.1 and worker.101 would both get port 5100"):
        m.scale("worker", 101, now=1.0)
    assert m.names() == ["clock.1"]


def probed(machine, actions, now, pids):
    """Like respond(), for instances that are ready only once their port answers (web)."""
    out = []
    for action in actions:
        out.append(action)
        if isinstance(action, Spawn):
            out += probed(machine, machine.spawned(action.instance.name, next(pids), now, probing=True), now, pids)
    return out


def test_rolling_restart_is_driven_by_the_machines_own_events():
    m = Machine([inst("web", 1), inst("web", 2)], Rules(restart="on-failure"), make_instance=lambda t, i: inst(t, i))
    pids = iter(range(100, 10_000))
    probed(m, m.start(0.0), 0.0, pids)
    for name in ("web.1", "web.2"):
        m.became_ready(name, pid_of(m, name), 0.5)
    acts = probed(m, m.roll("web", ["web.1", "web.2"], now=1.0), 1.0, pids)
    assert Say("rolling restart of web: web.3 first, then web.1, web.2 one by one", "watch") in acts
    assert [a.instance.name for a in of(Spawn, acts)] == ["web.3"]
    acts = m.became_ready("web.3", pid_of(m, "web.3"), 1.5)  # the surge is ready: web.1 restarts
    assert [k.name for k in of(Kill, acts)] == ["web.1"]
    old = pid_of(m, "web.1")
    probed(m, m.exited(old, -15, 1.6), 1.6, pids)
    acts = m.became_ready("web.1", pid_of(m, "web.1"), 1.7)  # web.1 is back: web.2 restarts
    assert [k.name for k in of(Kill, acts)] == ["web.2"]
    probed(m, m.exited(acts[-1].pid, -15, 1.8), 1.8, pids)
    acts = m.became_ready("web.2", pid_of(m, "web.2"), 1.9)  # web.2 is back: the surge goes
    assert [k.name for k in of(Kill, acts)] == ["web.3"]
    m.exited(acts[-1].pid, -15, 2.0)
    assert m.names() == ["web.1", "web.2"] and not m.rolling("web") and m.formation() == {"web": 2}


def test_a_surge_that_fails_restarts_the_type_in_place():
    m = Machine([inst("web", 1)], Rules(restart="on-failure"), make_instance=lambda t, i: inst(t, i))
    pids = iter(range(100, 10_000))
    probed(m, m.start(0.0), 0.0, pids)
    probed(m, m.roll("web", ["web.1"], now=1.0), 1.0, pids)
    acts = m.exited(pid_of(m, "web.2"), 1, 1.2)  # the new code does not start
    assert Say("web.2 did not become ready; restarting web in place", "watch") in acts
    assert [k.name for k in of(Kill, acts)] == ["web.1"] and "web.2" not in m.names()


def test_a_surge_never_ready_is_given_up_at_the_deadline():
    m = Machine([inst("web", 1)], Rules(restart="on-failure"), make_instance=lambda t, i: inst(t, i))
    pids = iter(range(100, 10_000))
    probed(m, m.start(0.0), 0.0, pids)
    probed(m, m.roll("web", ["web.1"], now=1.0), 1.0, pids)
    assert m.next_deadline() == 61.0
    acts = m.tick(61.0)
    assert Say("web.2 did not become ready; restarting web in place", "watch") in acts
