"""The layers, top to bottom: cli -> app -> services -> the session and its effects -> the pure core.

No module imports a higher layer (imports under ``if TYPE_CHECKING:`` are annotations only), and
pure modules import nothing that does I/O. Every module of the package has a layer."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "procrun"
LAYERS = {
    5: ["cli", "__main__", "arguments", "quick", "control/completion"],
    4: ["app", "oneoff"],
    3: ["router/service", "router/proxy", "router/listen", "watch/service", "chaos/service", "control/service", "control/server",
        "control/commands", "control/cli", "control/client", "control/streams", "backing/service", "export/run", "control/attach", "control/top"],
    2: ["supervise/session", "supervise/lifecycle", "supervise/relay", "supervise/probe", "supervise/tries", "supervise/reaper", "diagnose/recorder", "supervise/process", "supervise/guardian", "fresh/workdir",
        "fresh/inspect", "fresh/snapshot", "fresh/overlay", "fresh/child", "platform/linux_mountns", "fresh/writes", "statedir", "backing/proxy", "router/pool", "router/sweep", "router/replay", "platform/__init__", "platform/linux", "platform/portable", "journal/store", "journal/read", "journal/logs", "journal/page", "project/files", "project/live", "export/stage"],
    1: ["project/procfile", "project/probes", "project/envfile", "project/config", "project/settings", "project/plan", "project/ranges",
        "supervise/machine", "supervise/exits", "supervise/states", "supervise/table", "supervise/shutdown", "supervise/rollout", "supervise/order", "supervise/output", "supervise/shared", "chaos/schedule", "chaos/types", "diagnose/findings", "diagnose/answers", "diagnose/sampling", "fresh/slug", "diagnose/report", "router/http", "router/balance",
        "watch/plan", "diagnose/memory", "diagnose/ports", "diagnose/__init__", "export/__init__", "export/supervisord", "export/systemd", "export/kubernetes", "export/chaos_mesh",
        "export/compose", "control/protocol", "control/table", "control/pane", "errors", "flags", "__init__", "project/__init__",
        "supervise/__init__", "chaos/__init__", "fresh/__init__", "backing/__init__", "backing/urls", "backing/verdicts", "backing/faults", "journal/__init__", "journal/timeline", "router/tally", "router/__init__", "watch/__init__", "control/__init__"],
}
LAYER = {module: rank for rank, modules in LAYERS.items() for module in modules}
PURE = LAYERS[1]
FORBIDDEN = {"asyncio", "subprocess", "socket", "shutil", "tempfile", "select", "watchfiles", "httptools"}


def module_name(path: Path) -> str:
    return str(path.relative_to(PACKAGE).with_suffix(""))


def imports(path: Path) -> set[str]:
    """Modules imported anywhere in the file, except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(ast.parse(path.read_text()))
    return found


def internal(name: str) -> str | None:
    """procrun.router.http -> router/http, if that is one of our modules."""
    if not name.startswith("procrun."):
        return None
    rel = name[len("procrun."):].replace(".", "/")
    return rel if rel in LAYER else None


def test_every_module_has_a_layer():
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    assert modules - set(LAYER) == set(), "give new modules a layer in this test"
    assert set(LAYER) - modules == set()


@pytest.mark.parametrize("module", sorted(LAYER))
def test_no_module_imports_a_higher_layer(module):
    higher = {name for name in map(internal, imports(PACKAGE / f"{module}.py")) if name and LAYER[name] > LAYER[module]}
    assert higher == set(), f"{module} (layer {LAYER[module]}) imports {higher}"


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_effects(module):
    found = imports(PACKAGE / f"{module}.py")
    bad = {name for name in found if name.split(".")[0] in FORBIDDEN}
    assert bad == set(), f"{module} is pure but imports {bad}"


def test_at_most_twelve_modules_directly_in_the_package():
    assert len(list(PACKAGE.glob("*.py"))) <= 12


def test_only_the_linux_backend_reads_proc_or_calls_prctl():
    """The portable backend (and every other module) must work where there is no /proc: only the
    Linux backend and its helper (the mount namespace of copy-on-write fresh directories) read it."""
    import re

    linux_only = re.compile(r"/proc(?![a-z])|prctl")
    found = [module_name(p) for p in PACKAGE.rglob("*.py")
             if linux_only.search(p.read_text()) and not module_name(p).startswith("platform/linux")]
    assert found == []
