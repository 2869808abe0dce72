"""`medallion completion`: a bash completion script generated from the argument parser itself,
so it can never drift from the commands and options it completes."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence

from medallion.contracts.scenario_base import SCENARIO_DIR

# Options whose value is a path: bash completes file names for them.
_PATH_OPTIONS = {"--data", "--out"}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings if option.startswith("--")]


def _choices(parser: argparse.ArgumentParser, words: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Option -> the words its value may be (argparse choices, scenario names, `words`)."""
    known: dict[str, list[str]] = {}
    for action in parser._actions:
        for option in action.option_strings:
            if action.choices:
                known[option] = [str(choice) for choice in action.choices]
            elif option == "--scenario":
                known[option] = sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))
            elif option in words:
                known[option] = list(words[option])
    return known


def bash_script(parser: argparse.ArgumentParser, words: Mapping[str, Sequence[str]] | None = None) -> str:
    """The bash completion function for `medallion`, registered with `complete -F`.

    `words`: values of options argparse has no choices for (e.g. `bench --only`'s groups).
    """
    commands = _subcommands(parser)
    lines = [
        "# medallion bash completion: eval \"$(medallion completion bash)\"",
        "_medallion() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" command="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "${COMP_WORDS[i]}" in -*) ;; *) command="${COMP_WORDS[i]}"; break ;; esac',
        "    done",
        '    case "$command" in',
        f'        "") COMPREPLY=($(compgen -W {shlex.quote(" ".join([*commands, *_options(parser)]))} -- "$cur")); return ;;',
    ]
    for name, sub in commands.items():
        lines.append(f"        {shlex.quote(name)})")
        lines.append('            case "$prev" in')
        for option, values in _choices(sub, words or {}).items():
            lines.append(f'                {option}) COMPREPLY=($(compgen -W {shlex.quote(" ".join(values))} -- "$cur")); return ;;')
        paths = [option for option in _options(sub) if option in _PATH_OPTIONS]
        if paths:
            lines.append(f'                {"|".join(paths)}) COMPREPLY=($(compgen -f -- "$cur")); return ;;')
        lines.append("            esac")
        lines.append(f'            COMPREPLY=($(compgen -W {shlex.quote(" ".join(_options(sub)))} -- "$cur")); return ;;')
    lines += ["    esac", "}", "complete -o default -F _medallion medallion", ""]
    return "\n".join(lines)
