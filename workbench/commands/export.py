"""`workbench export`: turn a Darknet model (cfg + weights + names) into an ONNX file."""

from __future__ import annotations

import argparse

from workbench.commands.spelling import hidden_alias
from workbench.errors import WorkbenchError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a Darknet model to ONNX (for ONNX Runtime, OpenCV 5, ...)",
        description="Convert a Darknet cfg + weights into an ONNX file whose outputs, one per "
        "[yolo] head, are OpenCV's decoded rows (N, rows, 5 + classes): cx, cy, w, h normalized "
        "to the input, objectness, objectness x class probability. Input 'images': float32 NCHW "
        "RGB in [0, 1]. The class names are stored in the model metadata (class_names, JSON).")
    source = p.add_argument_group("model (a bundle folder, or the three files)")
    source.add_argument("--model", metavar="DIR",
                        help="bundle folder with one .cfg, .weights and .names, or 'demo'")
    source.add_argument("--cfg", metavar="FILE", help="Darknet .cfg")
    source.add_argument("--weights", metavar="FILE", help="Darknet .weights")
    source.add_argument("--names", metavar="FILE", help="class names, one per line")
    p.add_argument("--format", dest="to", choices=["onnx"], default="onnx",
                   help="output format (onnx)")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="file to write")
    p.add_argument("--size", default=None, metavar="N|WxH",
                   help="network input size, multiples of 32 (default: the cfg's [net] size)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="make the batch dimension dynamic (default: batch 1)")
    hidden_alias(p, "--format", "--to")  # the spelling before issue 23
    p.set_defaults(func=run)


def parse_size_text(text: str | None) -> tuple[int | None, int | None]:
    """'416' -> (416, 416); '608x416' -> (608, 416); None -> (None, None) (cfg's size)."""
    if text is None:
        return None, None
    parts = text.lower().split("x")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise WorkbenchError(f"--size {text!r}: expected N or WxH, e.g. 416 or 608x416") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or any(v <= 0 or v % 32 for v in values):
        raise WorkbenchError(f"--size {text!r}: width and height must be positive multiples "
                             "of 32")
    return values[0], values[1]


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli); this one
    # imports onnx
    from workbench.darknet.export_model import ExportRequest, export_model

    width, height = parse_size_text(args.size)
    request = ExportRequest(out=args.out, model=args.model, cfg=args.cfg, weights=args.weights,
                            names=args.names, width=width, height=height,
                            dynamic_batch=args.dynamic_batch)
    # an OSError (a full disk) names the file; the CLI makes it one line, exit 2
    done = export_model(request)
    print(f"wrote {done.out} ({done.size_bytes / 1e6:.1f} MB) in {done.seconds:.1f}s: input "
          f"{done.width}x{done.height}, batch {'dynamic' if done.dynamic_batch else 1}, "
          f"{done.outputs} [yolo] outputs, {done.classes} classes")
    return 0
