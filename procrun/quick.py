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
    from procrun.flags import Option
    from procrun.project.settings import Setting

from procrun.control.cli import SWITCHES
from procrun.flags import BY_FLAG, OUTPUT


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
        elif arg.partition("=")[0] in OUTPUT[0].flags:  # -d, --app-root
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
                         **{o.dest: [] if o.repeatable else o.default for o in OUTPUT}, command="start",
                         types=[], watch=None)
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
        elif not _valued(ns, flags.get(flag), BY_FLAG.get(flag), value if eq else next(rest, "-")):
            return None
    return ns


def _switch(flags: dict[str, Setting], flag: str) -> tuple[str, bool] | None:
    """(attribute, value) for a flag without a value: --chaos, --fresh and --no-fresh, --no-prefix."""
    option = BY_FLAG.get(flag)
    if option is not None and option.switch:
        return option.dest, True
    setting = flags.get(flag)
    if setting is not None and (setting.switch or setting.negatable):
        return setting.name, True
    negated = flags.get("--" + flag[len("--no-"):]) if flag.startswith("--no-") else None
    if negated is not None and negated.negatable:
        return negated.name, False
    return None


def _valued(ns: SimpleNamespace, setting: Setting | None, output: Option | None, value: str) -> bool:
    """Sets a flag's value as argparse would; False where argparse should decide (or explain)."""
    if value.startswith("-") or setting is None and output is None:
        return False
    if output is not None and output.repeatable:
        getattr(ns, output.dest).append(value)
    elif output is not None:
        setattr(ns, output.dest, value)
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
        if setting.repeatable:  # -e a -e b: argparse appends
            converted = [*(ns.env_files or []), converted]
        setattr(ns, setting.name, converted)
    return True
