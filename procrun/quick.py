"""Plain command lines, parsed without argparse.

Importing argparse and building a verb's parser costs ~12 ms: a third of `procrun ps`, and time
a start would spend before its first process. The common command lines, `procrun ps [--json]`
and `procrun start [TYPE...] [-t 3] [--chaos]...`, are parsed here into exactly the namespace
argparse gives. Anything else (help, abbreviations, `-fFILE`, --watch, a mistake) gets None and
goes to procrun.arguments, which parses it and explains the errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
TYPE_CHECKING = False  # importing typing would cost every CLI client ~4 ms
if TYPE_CHECKING:
    from procrun.project.settings import Setting

from procrun.control.cli import SWITCHES

# What only the command line sets, as procrun.arguments._add_output declares it.
OUTPUT_SWITCHES = {"--no-color": "no_colour", "--no-colour": "no_colour", "--no-prefix": "no_prefix"}
OUTPUT_VALUES = {"-d": "app_root", "--app-root": "app_root", "-q": "quiet", "--quiet": "quiet"}


def parse(args: Sequence[str]) -> SimpleNamespace | None:
    return client(args) or start(args)


def client(args: Sequence[str]) -> SimpleNamespace | None:
    """`procrun ps [--json] [-d DIR]` and the other verbs that take only switches."""
    if not args or args[0] not in SWITCHES:
        return None
    switches = SWITCHES[args[0]]
    ns = SimpleNamespace(command=args[0], app_root=".", **{s[2:]: False for s in switches})
    rest = iter(args[1:])
    for arg in rest:
        if arg in switches:
            setattr(ns, arg[2:], True)
        elif arg in ("-d", "--app-root") or arg.startswith("--app-root="):
            ns.app_root = arg.partition("=")[2] if "=" in arg else next(rest, "-")
            if ns.app_root.startswith("-"):
                return None
        else:
            return None
    return ns


def start(args: Sequence[str]) -> SimpleNamespace | None:
    """`procrun start` with its TYPE words in one run and exact flags, each with a valid value."""
    if not args or args[0] != "start":
        return None
    from procrun.project.settings import flagged

    ns = SimpleNamespace(**{s.name: None for s in flagged("run")},  # the main parser's defaults
                         app_root=".", no_colour=False, no_prefix=False, quiet=[], command="start", types=[],
                         watch=None)
    flags = {flag: s for s in flagged("start") for flag in s.flags}
    rest, types_ended = iter(args[1:]), False  # argparse refuses a second run of TYPE words
    for arg in rest:
        if not arg.startswith("-"):
            if types_ended:
                return None
            ns.types.append(arg)
            continue
        types_ended = bool(ns.types)
        flag, eq, value = arg.partition("=")
        switch = _switch(flags, flag)
        if eq and (switch or not flag.startswith("--")):  # --chaos=x, -t=3: argparse's to judge
            return None
        if switch:
            setattr(ns, *switch)
        elif not _valued(ns, flags.get(flag), OUTPUT_VALUES.get(flag), value if eq else next(rest, "-")):
            return None
    return ns


def _switch(flags: dict[str, Setting], flag: str) -> tuple[str, bool] | None:
    """(attribute, value) for a flag without a value: --chaos, --fresh and --no-fresh, --no-prefix."""
    if flag in OUTPUT_SWITCHES:
        return OUTPUT_SWITCHES[flag], True
    setting = flags.get(flag)
    if setting is not None and (setting.switch or setting.negatable):
        return setting.name, True
    negated = flags.get("--" + flag[len("--no-"):]) if flag.startswith("--no-") else None
    if negated is not None and negated.negatable:
        return negated.name, False
    return None


def _valued(ns: SimpleNamespace, setting: Setting | None, output: str | None, value: str) -> bool:
    """Sets a flag's value as argparse would; False where argparse should decide (or explain)."""
    if value.startswith("-") or setting is None and output is None:
        return False
    if output == "quiet":
        ns.quiet.append(value)
    elif output is not None:
        ns.app_root = value
    elif setting is not None and setting.choices:
        if value not in setting.choices:
            return False
        setattr(ns, setting.name, value)
    elif setting is not None:
        from procrun.project.settings import from_text

        try:
            converted = from_text(setting, value)
        except ValueError:
            return False
        if setting.name == "env_files":  # -e is repeatable: argparse appends
            converted = [*(ns.env_files or []), converted]
        setattr(ns, setting.name, converted)
    return True
