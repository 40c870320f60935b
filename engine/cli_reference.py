"""The command line's reference, made from the parser itself (whose flags come from the ``param`` configs): every
command with its flags, defaults and help, as Markdown for ``docs/cli.md``.

``python -m engine.cli_reference`` rewrites the part of docs/cli.md between its two markers; a test fails when that
part is stale.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from engine.cli import build_parser

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
BEGIN = "<!-- reference: made by `python -m engine.cli_reference`, do not edit by hand -->"
END = "<!-- end of reference -->"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, whitespace folded."""
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def _flag(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest.upper()}`"
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        names += " " + "\\|".join(f"`{choice}`" for choice in action.choices)
    return names


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction)) or action.default in (None, ""):
        return ""
    value = action.default
    return f"`{' '.join(map(str, value)) if isinstance(value, (list, tuple)) else value}`"


def _help_and_default(action: argparse.Action) -> tuple[str, str]:
    """The help text and the default: a help's closing "(default: …)" (the configs' own words) goes to the
    default column."""
    text = action.help or ""
    start = text.rfind("(default: ")
    if start >= 0 and text.endswith(")"):
        return text[:start].rstrip(" ;,"), text[start + len("(default: "):-1]
    if text.startswith("default: "):
        return "", text[len("default: "):]
    return text, _default(action)


def _table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| flag | default | what it does |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        text, default = _help_and_default(action)
        rows.append(f"| {_flag(action)} | {_cell(default)} | {_cell(text)} |")
    return rows


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(command line, help, parser) of every leaf command under ``parser``, in the order they were declared."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                nested = _commands(sub, f"{prefix} {name}")
                found.extend(nested or [(f"{prefix} {name}", helps.get(name, ""), sub)])
    return found


def reference() -> str:
    """The Markdown reference of every command."""
    parser = build_parser()
    lines = ["Every command takes `--data-dir DIR` (the data folder; default: `$EMULATOR_STUDIO_DATA`, else "
             "`~/.cache/emulator-studio`) before the command's name.", ""]
    for command, help_text, sub in _commands(parser, parser.prog):
        lines += [f"### `{command}`", "", _cell(help_text), "", *_table(sub), ""]
    return "\n".join(lines).rstrip() + "\n"


def current(text: str) -> str:
    """The reference part of docs/cli.md's text."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the reference markers")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{reference()}{END}{tail}")
    print(f"wrote the reference into {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
