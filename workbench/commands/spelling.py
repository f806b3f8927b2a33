"""One spelling per idea across the verbs, and the old spellings kept working, unseen.

The names every verb uses (docs/cli.md lists them all):

    --format   the format a verb writes (detect, convert, export)
    --from     the label format a verb reads, when not detected (convert, stats, anchors)
    --valid    the share of images to validate on (split, convert, demo-data)
    --size     the network input, N or WxH (detect, train, export, anchors);
               demo-data's image side is --image-size
    fp32, bf16, fp16 (int8)  the arithmetic of --precision (detect, train)

An older spelling (``convert --to``, ``demo-data --valid-fraction``, ``train --precision
float32``, ...) still parses, so scripts keep running, but --help and docs/cli.md show only
the one above: two names for one thing is what made users ask which to use.
"""

from __future__ import annotations

import argparse


def hidden_alias(parser: argparse.ArgumentParser, option: str, *old: str) -> None:
    """Make each ``old`` option string parse as ``option`` (the same action, so required,
    choices and defaults are shared) without showing it in --help or the usage line.

    argparse finds an option through ``_option_string_actions`` but prints only
    ``action.option_strings``: registering the old name in the first and not the second is
    exactly "accepted, not advertised". An error still names the option by its new name."""
    action = parser._option_string_actions[option]
    for name in old:
        if name in parser._option_string_actions:
            raise ValueError(f"{parser.prog}: {name} is already an option")
        parser._option_string_actions[name] = action


def hidden_aliases(parser: argparse.ArgumentParser) -> dict[str, str]:
    """{old option string: the option it stands for} of ``parser`` (for docs and tests)."""
    return {name: action.option_strings[0]
            for name, action in parser._option_string_actions.items()
            if name not in action.option_strings}


class Respell:
    """argparse ``type=`` for choices with old spellings: ``Respell({"float32": "fp32"})``
    turns an old value into its new one before argparse checks it against ``choices``, so
    the help and the "invalid choice" line list only the new values."""

    __name__ = "choice"  # argparse names the type in errors: never "<lambda>"

    def __init__(self, old_to_new: dict[str, str]) -> None:
        self.old_to_new = dict(old_to_new)

    def __call__(self, text: str) -> str:
        return self.old_to_new.get(text, text)


#: the old spellings of --precision values (train said float32, detect said fp32)
PRECISION_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
