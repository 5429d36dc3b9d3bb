"""Pure modules import nothing that does I/O: no effect modules, no asyncio, subprocess or sockets."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "procrun"
PURE = ["procfile", "envfile", "config", "settings", "formation", "output", "machine", "chaos", "slug", "router/http",
        "watchplan", "report", "export/__init__", "export/supervisord", "export/systemd", "export/kubernetes",
        "export/compose", "control/protocol", "errors"]
FORBIDDEN = {"asyncio", "subprocess", "socket", "shutil", "tempfile", "select", "procrun.process",
             "procrun.supervisor", "procrun.router.service", "procrun.router.proxy", "procrun.watch", "procrun.workdir", "procrun.chaos_runner",
             "procrun.control.server", "procrun.control.client", "procrun.app", "procrun.cli", "watchfiles"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_effects(module):
    bad = imports(PACKAGE / f"{module}.py") & FORBIDDEN
    assert not bad, f"{module} imports {bad}"
