"""What only the command line sets (the app root and how the output looks), declared once, and
the comma rule every list-valued flag follows. Pure, with no imports: the control clients,
the quick parser, argparse's builder and the settings all read it."""

from __future__ import annotations

from collections import namedtuple  # not typing's NamedTuple: typing costs every CLI client ~4 ms


def words(text: str) -> tuple[str, ...]:
    """A comma-separated value (-e .env,.env.local; -q worker,clock): its words, blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# A command-line-only option: where it goes, its flags, whether it takes no value (a switch) or
# may be given again (repeatable: each value is also comma-separated), its default, metavar, help.
Option = namedtuple("Option", "dest flags switch repeatable default metavar help")

OUTPUT = (
    Option("app_root", ("-d", "--app-root"), False, False, ".", "DIR",
           "app root: holds the Procfile; processes run here (default: .)"),
    Option("no_colour", ("--no-color", "--no-colour"), True, False, False, "", "no coloured prefixes (also: NO_COLOR)"),
    Option("no_prefix", ("--no-prefix",), True, False, False, "", "print lines without the time/name prefix"),
    Option("quiet", ("-q", "--quiet"), False, True, (), "TYPE[,TYPE]", "hide the output of these process types"),
)
BY_FLAG = {flag: option for option in OUTPUT for flag in option.flags}
