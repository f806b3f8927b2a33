"""`workbench weights partial CFG WEIGHTS N --out FILE`: darknet's ``partial`` in Python;
`workbench weights fetch NAME|URL`: the pretrained files tutorials start from (weights_fetch)."""

from __future__ import annotations

import argparse

from workbench.commands.weights_fetch import add_fetch_parser


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "weights", help="darknet weights files: fetch pretrained ones, make a partial file "
        "(first N layers)",
        description="Work on darknet .weights files without darknet.")
    verbs = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    partial = verbs.add_parser(
        "partial", help="keep the first N layers (like `darknet partial CFG WEIGHTS OUT N`)",
        description="Write the convolutions of layers 0..N-1 of WEIGHTS (laid out for CFG) as "
        "a darknet partial file, e.g. yolov3-tiny.conv.15 from yolov3-tiny.weights with N=15. "
        "darknet, `workbench train --weights` and OpenCV-free tools read it as a start point. "
        "CFG may have another class count than the file (layers before the heads do not "
        "depend on it).")
    partial.add_argument("cfg", metavar="CFG", help="the network's .cfg")
    partial.add_argument("weights", metavar="WEIGHTS", help="a .weights file for CFG")
    partial.add_argument("layers", metavar="N", type=int,
                         help="keep layers 0..N-1 (darknet's layer numbers)")
    partial.add_argument("--out", required=True, metavar="FILE", help="the partial file")
    add_fetch_parser(verbs)  # sets its own func
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli)
    from workbench.darknet.partial import write_partial

    convolutions = write_partial(args.cfg, args.weights, args.layers, args.out)
    print(f"{args.out}: {convolutions} conv layers (layers 0..{args.layers - 1} of {args.cfg})")
    return 0
