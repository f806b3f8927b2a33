"""The command line as documented: every verb and flag that README.md and docs/ name exists,
and every --help example parses with the real parser (issue 23, items 7 and 10)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from workbench.cli import VERBS, build_parser, main
from workbench.commands.examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a command inside backticks, or a line of a code block, that starts with `workbench`
_COMMAND = re.compile(r"`(workbench [^`]+)`|^(?: {4}|\t)\s*(?:\$ )?(workbench .+)$", re.M)
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of a verb, its sub-actions' too (weights partial ...)."""
    found = set(parser._option_string_actions)
    for sub in _subparsers(parser).values():
        found |= _flags(sub)
    return found


def _documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in _COMMAND.finditer(text):
            command = (match.group(1) or match.group(2)).replace("\\|", "|")
            for part in re.split(r"\s*(?:&&|\|\||;)\s*", command):
                if part.startswith("workbench"):
                    found.append((doc.name, part.strip()))
    return found


def test_the_docs_name_commands_at_all():
    assert len(_documented_commands()) > 30  # the pattern above still finds them


def test_every_documented_verb_and_flag_exists():
    verbs = _subparsers(build_parser())
    unknown = []
    for doc, command in _documented_commands():
        words = command.split()
        if len(words) < 2 or words[1].startswith("-"):
            continue  # `workbench -V`, `workbench --help`: the top-level parser
        verb = words[1]
        if verb not in verbs:
            if re.fullmatch(r"[a-z][a-z-]*", verb) and verb not in {"gui"}:
                unknown.append(f"{doc}: {command!r}: no verb {verb!r}")
            continue
        known = _flags(verbs[verb]) | {"-h", "--help"}
        for flag in _FLAG.findall(" ".join(words[2:])):
            if flag not in known:
                unknown.append(f"{doc}: {command!r}: {verb} has no {flag}")
    assert not unknown, "\n".join(unknown)


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_help_ends_with_real_examples(verb, capsys):
    assert 2 <= len(EXAMPLES[verb]) <= 3
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.rstrip().endswith(EXAMPLES[verb][-1][1])
    parser = build_parser()
    for _, command in EXAMPLES[verb]:
        args = parser.parse_args(shlex.split(command)[1:])  # exits 2 on an unknown flag
        assert args.verb == verb


def test_short_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["-V"])
    assert exit_.value.code == 0
    assert re.fullmatch(r"workbench \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_local_link_and_docs_pointer_resolves():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check offline
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                broken.append(f"{doc.name}: {target}: no such file")
            elif anchor and path.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{doc.name}: {target}: no such heading")
    # the docs the code's messages send users to
    for source in [*ROOT.glob("workbench/**/*.py"), *ROOT.glob("ui/**/*.py")]:
        for name in re.findall(r"docs/([\w-]+\.md)", source.read_text(encoding="utf-8")):
            if not (ROOT / "docs" / name).is_file():
                broken.append(f"{source.relative_to(ROOT)}: docs/{name}: no such file")
    assert not broken, "\n".join(broken)
