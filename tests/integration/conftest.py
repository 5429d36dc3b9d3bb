import pytest

from tests.integration.helpers import Run

# The platform-sensitive tests (signals and orphans, ps figures and the control socket, fresh
# directories, listening ports) run twice: with the Linux backend and with the portable one.
BOTH_BACKENDS = ("test_signals.py::", "test_control.py::", "test_chaos.py::",
                 "test_diagnose.py::test_an_instance_listening_elsewhere")


def pytest_generate_tests(metafunc):
    node = f"{metafunc.module.__name__.rsplit('.', 1)[-1]}.py::{metafunc.function.__name__}"
    once = "soak" in node or "the_portable_backend" in node  # long, or about one backend only
    if "procrun" in metafunc.fixturenames and node.startswith(BOTH_BACKENDS) and not once:
        metafunc.parametrize("backend", ["linux", "portable"])


@pytest.fixture
def backend():
    """The platform backend the session runs with (None: the one procrun picks)."""
    return None


@pytest.fixture
def procrun(tmp_path, backend):
    """Start procrun sessions; every one is killed with all it started at teardown."""
    runs: list[Run] = []

    def start(*args, cwd=None, env=None, preexec=None, python=None):
        if backend is not None:
            env = {**(env or {}), "PROCRUN_PLATFORM": backend}
        run = Run(list(args), cwd or tmp_path, env, preexec, python)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.cleanup()
