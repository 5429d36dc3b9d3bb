"""The quick client path parses exactly what argparse would, and leaves everything else to argparse."""

import pytest

from procrun.arguments import parser_for
from procrun.control.cli import SWITCHES, quick


@pytest.mark.parametrize("args", [
    ["ps"], ["ps", "--json"], ["ps", "-d", "/srv/app"], ["ps", "--app-root", "x", "--json"],
    ["ps", "--json", "--app-root=/a b"], ["ps", "--json", "--json"], ["quit"], ["quit", "-d", "."], ["top"],
    ["top", "--app-root", "ps"],
])
def test_quick_parses_what_argparse_parses(args):
    ns = quick(args)
    assert ns is not None
    expected = vars(parser_for(args).parse_args(args))
    assert vars(ns) == expected


@pytest.mark.parametrize("args", [
    [], ["ps", "-h"], ["ps", "--help"], ["ps", "--js"], ["ps", "--jsonx"], ["ps", "extra"], ["ps", "-d"],
    ["ps", "-d", "--json"], ["-d", "x", "ps"], ["--no-color", "ps"], ["scale", "web=2"], ["start"],
    ["ps", "-dx"], ["quit", "--json"],
])
def test_anything_else_goes_to_argparse(args):
    assert quick(args) is None


def test_argparse_declares_the_quick_switches():
    for verb, switches in SWITCHES.items():
        usage = parser_for([verb])._subparsers._group_actions[0].choices[verb].format_usage()
        for switch in switches:
            assert switch in usage
