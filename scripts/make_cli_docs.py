"""Write docs/cli.md from the real parsers: every verb's usage, description, options and
examples, so the page cannot say something --help does not.

    python scripts/make_cli_docs.py          # rewrite docs/cli.md
    python scripts/make_cli_docs.py --check  # exit 1 when docs/cli.md is out of date

tests/test_cli_spelling.py runs the check. The usage line is composed here rather than taken
from argparse, whose wrapping follows the terminal width and the Python version: the page
must come out the same on every machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a clone without an install too

from workbench.cli import build_parser  # noqa: E402
from workbench.commands.examples import EXAMPLES  # noqa: E402
from workbench.commands.spelling import hidden_aliases  # noqa: E402

TARGET = ROOT / "docs" / "cli.md"
COMMAND = "python scripts/make_cli_docs.py"

HEADER = f"""# The command line

Generated from the parsers by `{COMMAND}`; do not edit by hand (a test
compares this page with what the script writes now). `workbench VERB --help` prints the same.

One spelling per idea across the verbs:

| option | means | verbs |
|---|---|---|
| `--format` | the format a verb writes | detect, convert, export |
| `--from` | the label format a verb reads, when not detected | convert, stats, anchors |
| `--valid F` | the share of images to validate on | split, convert, demo-data |
| `--size N\\|WxH` | the network input (demo-data's image side is `--image-size`) | detect, train, export, anchors |
| `--precision fp32\\|bf16\\|fp16` | the arithmetic (detect also has int8) | detect, train |
| `--out` | where the output goes | every verb that writes |

Older spellings still work (scripts keep running) but are left out of `--help` and of the
tables below:

{{renamed}}
"""


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                None)


def _verbs(parser: argparse.ArgumentParser, prefix: str = "workbench"
           ) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(command, one-line help, parser) of every verb and sub-verb, in --help order."""
    sub = _subparsers(parser)
    if sub is None:
        return []
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    found = []
    for name, verb_parser in sub.choices.items():
        command = f"{prefix} {name}"
        found.append((command, helps.get(name, ""), verb_parser))
        found += _verbs(verb_parser, command)
    return found


def _value(action: argparse.Action) -> str:
    """What follows an option (nothing for a flag): its metavar, choices or dest."""
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper()


def _help(action: argparse.Action) -> str:
    text = (action.help or "").replace("%%", "%")
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _usage(command: str, parser: argparse.ArgumentParser) -> str:
    words = [command]
    options = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
    for action in parser._actions:  # positionals first, as users type them
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            name = action.metavar or action.dest.upper()
            words.append(f"[{name}]" if action.nargs == "?" else str(name))
    for action in options:
        if action.required:
            words.append(f"{action.option_strings[-1]} {_value(action)}".strip())
    sub = _subparsers(parser)
    if sub is not None:
        words.append("{" + ",".join(sub.choices) + "} ...")
    if any(not a.required and not isinstance(a, argparse._HelpAction) for a in options):
        words.append("[options]")
    return " ".join(words)


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            continue
        names = ", ".join(action.option_strings) or str(action.metavar or action.dest.upper())
        value = _value(action) if action.option_strings else ""
        rows.append(f"| `{_cell(names)}` | {f'`{_cell(value)}`' if value else ''} | "
                    f"{_cell(_help(action))} |")
    if not rows:
        return []
    return ["| argument | value | what it does |", "|---|---|---|", *rows, ""]


def _examples(verb: str) -> list[str]:
    lines = []
    for what, command in EXAMPLES.get(verb, []):
        lines += [f"    # {what}", f"    {command}"]
    return ["Examples:", "", *lines, ""] if lines else []


def _section(command: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f"## {command}", ""]
    if summary:
        lines += [summary[0].upper() + summary[1:] + ".", ""]
    lines += [f"    {_usage(command, parser)}", ""]
    if parser.description:
        lines += [" ".join(parser.description.split()), ""]
    lines += _options_table(parser)
    verb = command.split()[1]
    if command == f"workbench {verb}":  # the examples live with the top verb
        lines += _examples(verb)
    return lines


def _renamed(verbs) -> str:
    """The old spellings, one bullet each: option strings from the parsers, values by hand
    (``spelling.PRECISION_ALIASES``; train maps them in its own add_argument)."""
    lines = [f"- {command.removeprefix('workbench ')} `{old}`: now `{new}`"
             for command, _, parser in verbs
             for old, new in sorted(hidden_aliases(parser).items())]
    lines.append("- detect, train `--precision float32|bfloat16|float16`: now "
                 "`fp32|bf16|fp16`")
    return "\n".join(lines)


def render() -> str:
    """The whole of docs/cli.md as the parsers are now."""
    verbs = _verbs(build_parser())
    lines = [HEADER.format(renamed=_renamed(verbs))]
    for command, summary, parser in verbs:
        lines += _section(command, summary, parser)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--check", action="store_true",
                      help="only compare; exit 1 when docs/cli.md differs")
    check = args.parse_args(argv).check
    text = render()
    current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else None
    if check:
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date; regenerate it: {COMMAND}",
                  file=sys.stderr)
            return 1
        return 0
    if current != text:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
