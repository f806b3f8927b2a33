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
    from workbench.darknet.cfg import read_cfg
    from workbench.darknet.weights import (
        conv_layer_sizes,
        read_weights_for_transfer,
        truncate,
        write_weights,
    )
    from workbench.errors import WorkbenchError
    from workbench.storage.output_guard import refuse_input_as_output

    # before anything is read: OUT = the cfg once overwrote the cfg with weights
    refuse_input_as_output(args.out, [args.cfg, args.weights])
    cfg = read_cfg(args.cfg)
    n = args.layers
    if not 1 <= n <= len(cfg.layers):
        raise WorkbenchError(f"N must lie between 1 and {len(cfg.layers)} (the layers of "
                             f"{args.cfg}), got {n}")
    transfer = read_weights_for_transfer(args.weights, cfg)
    wanted = [i for i, *_ in conv_layer_sizes(cfg) if i < n]
    missing = [i for i in wanted if i not in transfer.weights.layers]
    if missing:
        raise WorkbenchError(f"{args.weights}: layer {missing[0]} is not in the file or does not "
                             f"fit {args.cfg}; a partial file must hold every convolution "
                             f"before layer {n}")
    if not wanted:
        raise WorkbenchError(f"layers 0..{n - 1} of {args.cfg} have no convolution")
    write_weights(truncate(transfer.weights, n), args.out)
    print(f"{args.out}: {len(wanted)} conv layers (layers 0..{n - 1} of {args.cfg})")
    return 0
