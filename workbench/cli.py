"""The ``workbench`` command line: one verb per module in ``workbench.commands``.

Each verb module defines ``add_parser(subparsers)`` which registers its parser and sets
``func`` (taking the parsed args, returning an exit code). Verb modules import their heavy
dependencies (cv2, TensorFlow, Qt) inside ``func`` so ``workbench --help`` starts fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from typing import NoReturn

from workbench.commands.examples import format_examples
from workbench.errors import WorkbenchError, describe_os_error

# verb name -> module under workbench.commands (order = order in --help)
VERBS = {
    "gui": "gui",
    "demo-data": "demo_data",
    "convert": "convert",
    "stats": "stats",
    "split": "split",
    "eval": "eval",
    "detect": "detect",
    "anchors": "anchors",
    "export": "export",
    "train": "train",
    "weights": "weights",
}


class _Parser(argparse.ArgumentParser):
    examples = ""  # real command lines shown after the options (commands/examples.py)

    def error(self, message: str) -> NoReturn:  # one clear line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")

    def format_help(self) -> str:
        # appended as they are: argparse's formatter would re-wrap the command lines
        text = super().format_help()
        return f"{text}\n{self.examples}" if self.examples else text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="Label, detect, train and inspect YOLO "
                     "object detectors. With no verb, opens the GUI.")
    from workbench import __version__

    parser.add_argument("-V", "--version", action="version",
                        version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for module_name in VERBS.values():
        try:
            module = importlib.import_module(f"workbench.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"workbench.commands.{module_name}":
                continue  # verb not built yet
            raise
        module.add_parser(sub)
    for verb, verb_parser in sub.choices.items():
        verb_parser.examples = format_examples(verb)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        args = parser.parse_args(["gui"])
    try:
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"workbench {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permission denied, --out is a file: the same one line
        _flush_quietly()
        if exc.filename is None and exc.errno in _WRITE_ERRORS and not sys.stdout.isatty():
            exc.filename = _stdout_name()  # `workbench stats > file` on a full disk
        print(f"workbench {args.verb}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.verb}: interrupted", file=sys.stderr)
        return 130


#: errors a write reports without a file name; ours name theirs, so these come from stdout
_WRITE_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT}


def _stdout_name() -> str:
    """The file stdout is redirected to (Linux names it in /proc), else 'standard output'."""
    try:
        return f"{os.readlink('/proc/self/fd/1')} (standard output)"
    except OSError:
        return "standard output"


def _flush_quietly() -> None:
    """Flush stdout; when that fails too, drop what it buffers (flushing again at exit would
    raise a second time, as a traceback)."""
    try:
        sys.stdout.flush()
    except OSError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
