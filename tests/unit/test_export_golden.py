"""Golden-file tests of every exporter. UPDATE_GOLDEN=1 rewrites the files after a deliberate change."""

import os
from pathlib import Path

import pytest

from procrun.chaos.schedule import ChaosConfig
from procrun.export import ExportContext, TypeSpec, renderers

GOLDEN = Path(__file__).with_name("golden")
CTX = ExportContext(
    app="shop", root="/srv/shop",
    types=(TypeSpec("web", "gunicorn app:app -b 0.0.0.0:$PORT --log-level 'info'", 2, 5000),
           TypeSpec("worker", "echo \"100% $HOME\" && exec celery -A tasks worker", 3, 5100)),
    env={"DATABASE_URL": "postgres://u:p@db/shop?x=1", "QUOTE": 'say "hi" \\ 50%', "PRICE": "$5"},
    timeout=7, user="shop", export_dir="/etc/shop", path="/usr/bin:/bin", image="registry.local/shop:1",
    chaos=ChaosConfig(interval=60, actions=("kill", "pause")))


@pytest.mark.parametrize("fmt", sorted(renderers()))
def test_renderer_matches_golden_files(fmt):
    files = renderers()[fmt](CTX)
    folder = GOLDEN / fmt
    if os.environ.get("UPDATE_GOLDEN"):
        for rel, file in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(file.content)
    expected = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert set(files) == expected
    for rel, file in files.items():
        assert file.content == (folder / rel).read_text(), rel


def test_an_export_path_is_the_app_s_bins_then_the_system_s_never_the_shell_s():
    """Regression (#27): exports wrote the PATH of the shell that ran them (duplicates and pyenv
    shims included): the app's own bin folders that exist come first, then the system's."""
    from procrun.export import export_path

    present = {"/srv/shop/.venv/bin", "/srv/shop/node_modules/.bin"}
    assert export_path("/srv/shop", present.__contains__) == (
        "/srv/shop/.venv/bin:/srv/shop/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    assert export_path("/srv/shop", lambda path: False).startswith("/usr/local/sbin:")


def test_yaml_exports_are_plain_without_anchors():
    """Regression (#27): the Kubernetes YAML carried anchors (&id001) for labels it shares."""
    for fmt in ("kubernetes", "compose"):
        for file in renderers()[fmt](CTX).values():
            assert "&id" not in file.content and "*id" not in file.content
