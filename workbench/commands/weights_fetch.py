"""`workbench weights fetch NAME|URL [--sha256 HEX] [--out FILE]`: pretrained weights.

Registered under the `weights` verb by ``add_fetch_parser``; the work is in
``workbench.darknet.fetch`` (resumable, verified, atomic), this module is options and output.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm


def add_fetch_parser(subparsers) -> None:
    """Add ``fetch`` to the ``weights`` verb's sub-commands."""
    from workbench.darknet.fetch import CACHE_ENV, KNOWN_WEIGHTS, TIMEOUT_S

    names = ", ".join(KNOWN_WEIGHTS)
    p = subparsers.add_parser(
        "fetch", help=f"download pretrained weights ({names}) or any file by URL and SHA-256",
        description=f"Download the official darknet COCO weights by name ({names}: "
        + "; ".join(f"{n} from {k.url}" for n, k in KNOWN_WEIGHTS.items())
        + "), or any file by URL with its --sha256. A stopped download continues where it "
        "stopped when the same command runs again (FILE.part beside the file); the file "
        "appears under its name only once its checksum is verified. Files go to the per-user "
        f"cache (~/.cache/detection-workbench/weights on Linux; ${CACHE_ENV}/weights when "
        f"{CACHE_ENV} is set) unless --out is given; `--weights yolov3-tiny` in train and "
        "detect then finds the cached file. Offline: download the file by other means and "
        "pass --weights FILE.")
    p.add_argument("source", metavar="NAME|URL", help=f"{names}, or an http(s) URL")
    p.add_argument("--sha256", metavar="HEX",
                   help="the file's SHA-256 (required with a URL; a name knows its own)")
    p.add_argument("--out", metavar="FILE", help="write here instead of the cache")
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, metavar="S",
                   help=f"seconds to wait for a connection or for data (default {TIMEOUT_S:g})")
    p.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli)
    from workbench.darknet.fetch import KNOWN_WEIGHTS, fetch, plan_fetch

    plan = plan_fetch(args.source, sha256=args.sha256,
                      out=Path(args.out) if args.out else None)
    bar = _Bar(Path(plan.dest).name)
    try:
        result = fetch(plan, timeout=args.timeout, progress=bar)
    finally:
        bar.close()
    checked = f"SHA-256 {plan.sha256}" if plan.sha256 else "size and darknet header"
    if not result.downloaded:
        print(f"{result.path}: already there ({checked} verified)")
    else:
        resumed = f", continued from byte {result.resumed_from}" if result.resumed_from else ""
        print(f"{result.path}: {result.path.stat().st_size} bytes from {plan.url}{resumed}; "
              f"{checked} verified")
    if args.source in KNOWN_WEIGHTS and args.out is None:
        print(f"use it with --weights {args.source}")
    return 0


class _Bar:
    """The fetch progress callback drawn with tqdm in bytes (``disable=None``: silent when
    stderr is not a terminal, where :class:`workbench.progress.ProgressBar`, which counts
    items, prints a line every few seconds); made on the first call, which says where a
    resumed download starts."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: tqdm[Any] | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm  # lazy: only a download draws a bar

            self.bar = tqdm(total=total, initial=done, desc=self.label, unit="B",
                            unit_scale=True, unit_divisor=1024, disable=None)
        else:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
