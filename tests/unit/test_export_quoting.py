"""Every .env value and command reaches the process byte-exact, by each engine's documented rules.

CI has no running systemd or compose engine, so their unquoting is modelled here from their
documentation (systemd.exec(5) EnvironmentFile= and env-file.c; the compose-spec interpolation
section; Kubernetes' dependent-variable expansion). supervisord runs for real in tests/integration.
"""

import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from procrun.errors import UsageError
from procrun.export import ExportContext, TypeSpec
from procrun.export import compose, kubernetes, supervisord
from procrun.export.systemd import env_file_line

values = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)


def systemd_env_file_value(line: str) -> str:
    """systemd's reading of KEY="..." in an EnvironmentFile: backslash escapes one of \\ " ` $ or
    joins a newline; before any other character it stays; a newline inside the quotes is kept."""
    key, _, rest = line.partition("=")
    assert rest[0] == '"' and rest[-1] == '"'
    body, out, i = rest[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt == "\n":
                pass
            elif nxt in '"\\`$':
                out.append(nxt)
            else:
                out += ["\\", nxt]
            i += 2
            continue
        assert c != '"', "an unescaped quote would end the value"
        out.append(c)
        i += 1
    return "".join(out)


def kubernetes_expand(text: str, env: dict[str, str]) -> str:
    """$$ -> $, $(VAR) -> its value when defined, anything else as written."""
    return re.sub(r"\$(\$|\(([A-Za-z_][A-Za-z0-9_]*)\))",
                  lambda m: "$" if m.group(1) == "$" else env.get(m.group(2), m.group(0)), text)


def compose_interpolate(text: str, env: dict[str, str]) -> str:
    """$$ -> $, $VAR and ${VAR} -> the value (empty when unset)."""
    return re.sub(r"\$(\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))",
                  lambda m: "$" if m.group(1) == "$" else env.get(m.group(2) or m.group(3), ""), text)


def ctx(env=None, command="echo hi", types=None):
    return ExportContext(app="shop", root="/srv/shop", env=env or {}, export_dir="/etc/shop", image="img",
                         types=types or (TypeSpec("web", command, 1, 5000),))


@given(values)
def test_systemd_environment_file_keeps_every_value(value):
    assert systemd_env_file_value(env_file_line("K", value)) == value


@given(values, values)
def test_kubernetes_keeps_values_and_commands(value, command):
    doc = next(yaml.safe_load_all(kubernetes.render(ctx({"K": value, "HOME": "/x"}, command))["shop.yaml"].content))
    container = doc["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert kubernetes_expand(env["K"], {"HOME": "/x"}) == value
    assert kubernetes_expand(container["command"][2], {"HOME": "/x"}) == command


@given(values, values)
def test_compose_keeps_values_and_commands(value, command):
    doc = yaml.safe_load(compose.render(ctx({"K": value}, command))["compose.yaml"].content)
    service = doc["services"]["web"]
    assert compose_interpolate(service["environment"]["K"], {"HOME": "/x"}) == value
    assert compose_interpolate(service["command"][2], {"HOME": "/x"}) == command


@pytest.mark.parametrize("render", [kubernetes.render, compose.render])
def test_types_that_share_an_engine_name_are_refused(render):
    types = (TypeSpec("web_a", "a", 1, 5000), TypeSpec("web-a", "b", 1, 5100))
    with pytest.raises(UsageError, match="process types 'web_a' and 'web-a' would both be named"):
        render(ctx(types=types))


def test_supervisord_refuses_what_its_config_parser_would_cut():
    with pytest.raises(UsageError, match="log directory"):
        supervisord.render(ExportContext(app="shop", root="/r", types=(TypeSpec("web", "x", 1, 5000),),
                                         env={}, log_dir="/var/log ;shop", export_dir="/e"))
