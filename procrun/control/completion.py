"""Shell completion: ``procrun completion bash|zsh`` prints a script made from the command line's
own declaration (the argparse parsers, built from the settings): verbs, each verb's flags, the
flags' choices. Completing the instances and types of attach, logs, restart, stop and scale
asks the running session, over its control socket, only then (``procrun __names``).
Nothing here is imported by any other command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

NAMED = ("attach", "logs", "restart", "stop", "scale")  # verbs whose arguments are instances or types

BASH = r"""# procrun completion for bash: eval "$(procrun completion bash)" (in ~/.bashrc)
_procrun() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} verb="" i skip=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ -n $skip ]]; then skip=""; continue; fi
        case ${COMP_WORDS[i]} in
            %(valued)s) skip=1 ;;
            -*) ;;
            *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "%(top)s" -- "$cur")); else
            COMPREPLY=($(compgen -W "%(verbs)s" -- "$cur")); fi
        return
    fi
    case "$verb $prev" in
%(choices)s
    esac
    if [[ $cur == -* ]]; then
        case $verb in
%(flags)s
        esac
        return
    fi
    case $verb in
        %(named)s) COMPREPLY=($(compgen -W "$(procrun __names "$verb" "${COMP_WORDS[@]:1}" 2>/dev/null)" -- "$cur"))
            [[ $verb == scale ]] && compopt -o nospace 2>/dev/null ;;  # TYPE= then the count
        completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
    esac
}
complete -o default -F _procrun procrun
"""

ZSH = "#compdef procrun\n# procrun completion for zsh: eval \"$(procrun completion zsh)\" (in ~/.zshrc)\n" \
      "autoload -U +X bashcompinit && bashcompinit\n"


def declaration() -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, tuple[str, ...]], set[str]]:
    """From the parsers: verb -> {flag: its choices (() when free)}, the main parser's flags the
    same way, and every flag that takes a value."""
    from procrun.arguments import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    verbs = {name: _flags(p) for name, p in sub.choices.items()}
    valued = {flag for p in (parser, *sub.choices.values()) for a in p._actions if a.option_strings and a.nargs != 0
              for flag in a.option_strings}
    return verbs, _flags(parser), valued


def _flags(parser: argparse.ArgumentParser) -> dict[str, tuple[str, ...]]:
    return {flag: tuple(a.choices or ()) for a in parser._actions for flag in a.option_strings
            if flag not in ("-h", "--help")}


def script(shell: str) -> str:
    verbs, top, valued = declaration()
    names = sorted([*verbs, "completion", "help"])
    choices = "\n".join(f'        "{verb} {flag}") COMPREPLY=($(compgen -W "{" ".join(options)}" -- "$cur")); return ;;'
                        for verb, flags in sorted(verbs.items()) for flag, options in sorted(flags.items()) if options)
    flags = "\n".join(f'            {verb}) COMPREPLY=($(compgen -W "{" ".join(sorted(flags))}" -- "$cur")) ;;'
                      for verb, flags in sorted(verbs.items()))
    body = BASH % {"valued": "|".join(sorted(valued)),
                   "top": " ".join(sorted(top)), "verbs": " ".join(names), "choices": choices, "flags": flags,
                   "named": "|".join(NAMED)}
    return (ZSH + body) if shell == "zsh" else body


def names(verb: str, words: Sequence[str]) -> list[str]:
    """The running session's instances and types (scale: TYPE=), for the app root the words name
    (-d DIR), or none when no session runs there."""
    from procrun.control.client import request

    root = "."
    for i, word in enumerate(words):
        if word in ("-d", "--app-root") and i + 1 < len(words):
            root = words[i + 1]
        elif word.startswith("--app-root="):
            root = word.split("=", 1)[1]
    try:
        reply = request(os.path.abspath(root), {"cmd": "ps"})
    except Exception:  # no session, a refusal, an old one: nothing to offer
        return []
    instances = [str(p["name"]) for p in reply.get("processes", [])]
    types = sorted({n.split(".", 1)[0] for n in instances})
    return [f"{t}=" for t in types] if verb == "scale" else types + instances


def main(args: list[str]) -> int:
    """``completion SHELL`` and the hidden ``__names VERB WORDS...``."""
    if args[:1] == ["__names"] and len(args) > 1:
        print("\n".join(names(args[1], args[2:])))
        return 0
    if len(args) != 1 or args[0] not in ("bash", "zsh"):
        print("procrun: completion takes one shell: bash or zsh (eval \"$(procrun completion bash)\")",
              file=sys.stderr)
        return 2
    sys.stdout.write(script(args[0]))
    return 0
