"""The quick path (procrun.quick) parses exactly what argparse would, and leaves everything else to argparse."""

import pytest

from procrun.arguments import parser_for
from procrun.cli import settings_from
from procrun.control.cli import SWITCHES
from procrun.errors import UsageError
from procrun.quick import client, parse, start


def argparse_namespace(args):
    return vars(parser_for(args).parse_args(args))


@pytest.mark.parametrize("args", [
    ["ps"], ["ps", "--json"], ["ps", "-d", "/srv/app"], ["ps", "--app-root", "x", "--json"],
    ["ps", "--json", "--app-root=/a b"], ["ps", "--json", "--json"], ["quit"], ["quit", "-d", "."], ["top"],
    ["top", "--app-root", "ps"],
])
def test_quick_parses_a_client_line_as_argparse_does(args):
    ns = client(args)
    assert ns is not None
    assert vars(ns) == argparse_namespace(args)


@pytest.mark.parametrize("args", [
    [], ["ps", "-h"], ["ps", "--help"], ["ps", "--js"], ["ps", "--jsonx"], ["ps", "extra"], ["ps", "-d"],
    ["ps", "-d", "--json"], ["-d", "x", "ps"], ["--no-color", "ps"], ["scale", "web=2"], ["start"],
    ["ps", "-dx"], ["quit", "--json"],
])
def test_any_other_client_line_goes_to_argparse(args):
    assert client(args) is None


START_LINES = [
    ["start"], ["start", "web"], ["start", "web", "worker"], ["start", "-t", "3"], ["start", "web", "-t", "3"],
    ["start", "-t", "3", "web", "worker"], ["start", "--timeout=2.5"], ["start", "-f", "Procfile.dev"],
    ["start", "--procfile", "P", "-e", "a.env,b.env", "-e", "c.env", "--env=d.env"], ["start", "-p", "8000"],
    ["start", "-m", "web=2,worker=3"], ["start", "-c", "all=2"], ["start", "--formation=web=2"],
    ["start", "--restart", "always"], ["start", "--chaos", "--chaos-seed", "42", "--chaos-interval", "0.5"],
    ["start", "--chaos-actions", "kill,relocate", "--chaos-types", "web", "--chaos-min-uptime", "1"],
    ["start", "--fresh"], ["start", "--no-fresh", "--keep-dirs"], ["start", "--router", "--router-mode", "tcp"],
    ["start", "--no-router", "--router-host", "0.0.0.0", "--router-timeout", "5", "--no-router-record"],
    ["start", "--tty", "console", "--no-journal", "--chaos-backing"], ["start", "--journal", "--router-record"],
    ["start", "-d", "/srv/app", "--no-color", "--no-prefix", "-q", "worker", "--quiet", "clock,web"],
    ["start", "--no-colour", "--app-root=x y"], ["start", "-t", "1", "-t", "2"], ["start", "--fresh", "--no-fresh"],
]


@pytest.mark.parametrize("args", START_LINES)
def test_quick_parses_a_start_line_as_argparse_does(args):
    ns = start(args)
    assert ns is not None
    assert vars(ns) == argparse_namespace(args)
    assert settings_from(ns) == settings_from(parser_for(args).parse_args(args))


@pytest.mark.parametrize("args", [
    ["start", "-h"], ["start", "--help"], ["start", "--time", "3"], ["start", "-t3"], ["start", "-t=3"],
    ["start", "-t"], ["start", "-t", "-1"], ["start", "-t", "x"], ["start", "-p", "0"], ["start", "--restart", "sometimes"],
    ["start", "--chaos=yes"], ["start", "--no-chaos"], ["start", "--fresh=1"], ["start", "--watch"],
    ["start", "--watch", "src"], ["start", "web", "-t", "3", "worker"], ["start", "--", "web"],
    ["start", "--bogus"], ["start", "-x"], ["start", "--chaos-actions", "explode"], ["-t", "3", "start"],
    ["start", "--json"], ["start", "-m", "-1"], ["start", "-d", "--no-color"], ["run", "x"], ["check"],
])
def test_any_other_start_line_goes_to_argparse(args):
    assert start(args) is None


@pytest.mark.parametrize("args", [
    ["start", "-t", "x"], ["start", "-p", "0"], ["start", "--restart", "sometimes"], ["start", "--chaos=yes"],
    ["start", "web", "-t", "3", "worker"], ["start", "--bogus"], ["start", "--chaos-actions", "explode"],
])
def test_argparse_explains_what_the_quick_path_refused(args):
    assert parse(args) is None
    with pytest.raises(UsageError):
        parser_for(args).parse_args(args)


def test_argparse_declares_the_quick_switches():
    for verb, switches in SWITCHES.items():
        usage = parser_for([verb])._subparsers._group_actions[0].choices[verb].format_usage()
        for switch in switches:
            assert switch in usage
