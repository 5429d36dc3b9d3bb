import pytest

from tests.integration.helpers import Run


@pytest.fixture
def procrun(tmp_path):
    """Start procrun sessions; every one is killed with all it started at teardown."""
    runs: list[Run] = []

    def start(*args, cwd=None, env=None, preexec=None):
        run = Run(list(args), cwd or tmp_path, env, preexec)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.cleanup()
