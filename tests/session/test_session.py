"""The Session on a real asyncio loop with fake processes: pipes instead of children, a
fake reaper and signals that make the fake exit. No process is started."""

import asyncio
import os
import signal
import threading

import pytest

from procrun.project.plan import Instance
from procrun.supervise.machine import Machine, Rules
from procrun.supervise.output import Prefixer, Style
from procrun.supervise.probe import Checks
from procrun.supervise.process import Effects
from procrun.supervise.relay import Writer
from procrun.supervise.session import Session


class FakeChild:
    tty = False

    def __init__(self, pid, fd):
        self.pid, self.fd, self.returncode = pid, fd, None

    def exited(self, returncode):
        self.returncode = returncode


class FakeProcesses:
    """spawn() gives a pipe that says one line; a stop signal makes the fake exit."""

    def __init__(self):
        self.next_pid = 40_000
        self.writers, self.pending, self.spawned, self.signals = {}, [], [], []
        self.session = None

    def effects(self):
        return Effects(self.spawn, self.reap, self.signal_group, lambda pid: [], lambda pid: set(), guardian=False)

    def spawn(self, command, env, cwd, tty, wrap=()):
        self.next_pid += 1
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.write(write_fd, f"{env['PS']} says {command}\n".encode())
        self.writers[self.next_pid] = write_fd
        self.spawned.append((env["PS"], self.next_pid))
        return FakeChild(self.next_pid, read_fd)

    def exit(self, pid, returncode):
        os.close(self.writers.pop(pid))
        self.pending.append((pid, returncode))
        asyncio.get_running_loop().call_soon(self.session.children_exited)

    def signal_group(self, pid, sig):
        self.signals.append((pid, sig))
        if sig in (signal.SIGTERM, signal.SIGKILL) and pid in self.writers:
            self.exit(pid, -sig)

    def reap(self):
        done, self.pending = self.pending, []
        return done


def make(instances, **machine_args):
    fake = FakeProcesses()
    read_fd, write_fd = os.pipe()
    out = []
    reader = threading.Thread(target=lambda: out.append(os.read(read_fd, 1 << 20)) or
                              [out.append(c) for c in iter(lambda: os.read(read_fd, 1 << 20), b"")], daemon=True)
    reader.start()
    machine = Machine(instances, Rules(**machine_args))
    writer = Writer(write_fd)
    session = Session(machine, Prefixer(Style(colour=False)), writer, "/", checks=Checks(readiness={}),
                      effects=fake.effects())
    fake.session = session

    def text():
        writer.close()
        os.close(write_fd)
        reader.join(5)
        os.close(read_fd)
        return b"".join(out).decode()
    return fake, session, text


def inst(type_name, index=1):
    return Instance(type_name, index, f"run-{type_name}", None, {"PS": f"{type_name}.{index}"})


def test_first_exit_ends_the_session_with_its_code_and_stops_the_rest():
    fake, session, text = make([inst("web"), inst("worker")])

    async def main():
        task = asyncio.ensure_future(session.run())
        while len(fake.spawned) < 2:
            await asyncio.sleep(0)
        fake.exit(fake.spawned[1][1], 3)
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == 3
    out = text()
    assert "web.1    | web.1 says run-web" in out and "worker.1 | worker.1 says run-worker" in out
    assert "worker.1 stopped (rc=3)" in out and "sending SIGTERM to web.1" in out
    assert (fake.spawned[0][1], signal.SIGTERM) in fake.signals


def test_a_crash_under_on_failure_is_restarted_and_quit_ends_cleanly():
    fake, session, text = make([inst("web")], restart="on-failure")

    async def main():
        task = asyncio.ensure_future(session.run())
        while len(fake.spawned) < 1:
            await asyncio.sleep(0)
        fake.exit(fake.spawned[0][1], 1)
        while len(fake.spawned) < 2:  # restarted at once (first retry without delay)
            await asyncio.sleep(0.001)
        session.apply(session.machine.shutdown(0, session.clock(), "quit requested"))
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == 0
    out = text()
    assert "web.1 exited with exit code 1; restarting in 0.0s" in out
    assert [name for name, _ in fake.spawned] == ["web.1", "web.1"]
    assert session.machine.get("web.1").restarts == 1


def test_output_that_fails_stops_the_session_with_141():
    fake, session, text = make([inst("web")], restart="on-failure")
    r, w = os.pipe()
    os.close(r)
    session.writer = Writer(w)

    async def main():
        return await asyncio.wait_for(session.run(), 5)

    assert asyncio.run(main()) == 141
    os.close(w)
    text()


def test_launched_before_the_loop_a_child_that_ended_meanwhile_is_relayed_and_reaped():
    fake, session, text = make([inst("web"), inst("worker")])
    session.launch()  # no loop exists yet: the processes start now, their output waits in the pipes
    assert [name for name, _ in fake.spawned] == ["web.1", "worker.1"]
    worker = fake.spawned[1][1]
    os.close(fake.writers.pop(worker))
    fake.pending.append((worker, 3))  # it ended before the loop existed: no one has reaped it yet

    assert asyncio.run(asyncio.wait_for(session.run(), 5)) == 3
    out = text()
    assert out.index("worker.1 | worker.1 says run-worker") < out.index("worker.1 stopped (rc=3)")
    assert "web.1    | web.1 says run-web" in out
    assert (fake.spawned[0][1], signal.SIGTERM) in fake.signals
    assert [name for name, _ in fake.spawned] == ["web.1", "worker.1"]  # run() did not launch again


def test_a_signal_between_launch_and_the_loop_is_kept_and_handled_by_the_loop():
    fake, session, text = make([inst("web"), inst("worker")])
    session.launch()
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C before the loop: kept, not a KeyboardInterrupt
    assert asyncio.run(asyncio.wait_for(session.run(), 5)) == 130
    assert {(pid, signal.SIGTERM) for _, pid in fake.spawned} <= set(fake.signals)
    assert "SIGINT received" in text()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the loop gave it back


def test_a_service_that_cannot_start_after_the_launch_stops_what_was_launched():
    from procrun.errors import SessionError
    from procrun.supervise.session import Service

    class Broken(Service):
        async def start(self):
            raise SessionError("router cannot listen on 127.0.0.1:5000")

        async def close(self):
            pass

    fake, session, text = make([inst("web"), inst("worker")])
    session.services.append(Broken(session))
    session.launch()
    try:
        asyncio.run(asyncio.wait_for(session.run(), 5))
    except SessionError as exc:
        assert "cannot listen" in str(exc)
    else:
        raise AssertionError("the service's error must reach the caller")
    assert {(pid, signal.SIGTERM) for _, pid in fake.spawned} <= set(fake.signals)
    assert session.children == {}  # both stopped and reaped before the error went up
    assert "the session cannot start; stopping" in text()


def test_readiness_probes_start_once_the_services_are_up():
    """Launched before the loop, a web instance is not probed (nor said ready) before the
    session's services, the router among them, have started."""
    from procrun.supervise.lifecycle import OnLoop
    from procrun.supervise.session import Service

    fake, session, text = make([Instance("web", 1, "run-web", 1, {"PS": "web.1"})])
    session.checks = Checks()
    seen = []

    class Router(Service):
        async def start(self):
            seen.append(len(self.session.stage.probes.tasks))
            await asyncio.sleep(0.05)
            seen.append(len(self.session.stage.probes.tasks))

        async def close(self):
            pass

    session.services.append(Router(session))
    session.launch()

    async def main():
        task = asyncio.ensure_future(session.run())
        while not isinstance(session.stage, OnLoop) or not session.stage.probes.tasks:
            await asyncio.sleep(0.01)
        seen.append(len(session.stage.probes.tasks))
        session.apply(session.machine.shutdown(0, session.clock(), "done"))
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == 0
    assert seen == [0, 0, 1]
    text()


def test_output_held_during_a_launch_goes_out_at_release_in_order():
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        held = Writer(w)
        held.hold()
        held.write(b"web.1 started\n")
        held.close()  # a held line is not handed to the writer thread, so closing writes nothing
        with pytest.raises(BlockingIOError):
            os.read(r, 100)

        writer = Writer(w)
        writer.hold()
        for name in ("web.1", "web.2", "worker.1"):
            writer.write(f"{name} started\n".encode())
        writer.release()
        writer.close()
        assert os.read(r, 100) == b"web.1 started\nweb.2 started\nworker.1 started\n"
    finally:
        os.close(r)
        os.close(w)
