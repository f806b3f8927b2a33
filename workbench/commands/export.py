"""`workbench export`: turn a Darknet model (cfg + weights + names) into an ONNX file."""

from __future__ import annotations

import argparse
import time

from workbench.commands.spelling import hidden_alias


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
    from workbench.errors import WorkbenchError

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
    from pathlib import Path

    from workbench.darknet.bundle import bundle_from_files, find_bundle
    from workbench.darknet.onnx_export import export_files
    from workbench.darknet.validate import check_bundle
    from workbench.errors import WorkbenchError
    from workbench.storage.output_guard import refuse_input_as_output

    files = (args.cfg, args.weights, args.names)
    if args.model and any(files):
        raise WorkbenchError("give either --model or --cfg/--weights/--names, not both")
    if args.model:
        bundle = find_bundle(args.model)
    elif all(files):
        bundle = bundle_from_files(*files)
    else:
        raise WorkbenchError("give --model DIR, or all of --cfg, --weights and --names")
    width, height = parse_size_text(args.size)
    out = Path(args.out)
    if out.is_dir():
        raise WorkbenchError(f"--out {out}: is a folder; give a file name such as model.onnx")
    if not out.parent.is_dir():
        raise WorkbenchError(f"--out {out}: folder {out.parent} does not exist")
    refuse_input_as_output(out, [bundle.cfg, bundle.weights, bundle.names])
    start = time.perf_counter()
    checked = check_bundle(bundle, width, height)  # what detect refuses, export refuses
    names, cfg = checked.class_names, checked.cfg
    # an OSError (a full disk) names the file; the CLI makes it one line, exit 2
    export_files(bundle.cfg, bundle.weights, out, class_names=names, width=width,
                 height=height, dynamic_batch=args.dynamic_batch)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in "
          f"{time.perf_counter() - start:.1f}s: input {width or cfg.width}x{height or cfg.height}, "
          f"batch {'dynamic' if args.dynamic_batch else 1}, {len(cfg.yolo_layers())} [yolo] "
          f"outputs, {len(names)} classes")
    return 0
