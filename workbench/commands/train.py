"""`workbench train DATASET`: fine-tune a YOLO model on a labeled folder, export a bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.commands.dataset_args import add_labels_option


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a YOLO model on a labeled dataset with TensorFlow",
        description="Train (or fine-tune) a YOLO model on DATASET's labels with TensorFlow. "
        "Classes come from the dataset. RUN_DIR gets checkpoints, the best model exported as a "
        "Darknet bundle (bundle/NAME.cfg, .weights, .names), metrics.csv and metrics.png. "
        "Ctrl+C (or SIGTERM) saves a checkpoint and stops; --resume continues. "
        # a fixed text: reading the package metadata for the exact hint would cost every
        # `workbench` start 40 ms; the error when TensorFlow is missing gives the exact one
        'Needs TensorFlow, the train extra (from a clone: pip install -e ".[train]").')
    p.add_argument("dataset", help="dataset folder in any layout `workbench stats` reads "
                   "(labels beside the images, VOC devkit, label folder, Ultralytics); its "
                   "train split trains and its valid split validates when it has one")
    p.add_argument("--template",
                   help="yolov3-tiny, yolov3, demo-tiny or a .cfg file (default yolov3-tiny)")
    p.add_argument("--weights", help="start from these darknet weights: a full file, also one "
                   "for another class count (yolov3-tiny.weights from COCO: every layer whose "
                   "shape fits loads, the [yolo] heads start fresh), or a partial one "
                   "(yolov3-tiny.conv.15); or yolov3-tiny / yolov3 (after `workbench weights fetch "
                   "NAME`), or demo (the bundled demo model's); default: random initialization")
    p.add_argument("--size", type=int,
                   help="network width and height, a multiple of 32 (default 416)")
    p.add_argument("--epochs", type=int, help="epochs to train (default 50; with --resume: "
                   "the run's own, and N moves its end)")
    p.add_argument("--batch", type=int, help="images per step (default 8)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.001)")
    p.add_argument("--optimizer", choices=("adam", "sgd"),
                   help="adam, or sgd with the cfg's momentum (default adam)")
    p.add_argument("--policy", choices=("auto", "steps", "cosine", "constant"),
                   help="learning-rate policy after the warm-up (default "
                   "cosine, down to 1%% at the last step; auto follows the cfg)")
    p.add_argument("--freeze-epochs", type=int, metavar="K",
                   help="with --weights: train only what the file does not cover for the first "
                   "K epochs; the warm-up starts after them (default 2, at most a fifth of "
                   "the run; 0 without --weights)")
    p.add_argument("--patience", type=int,
                   help="early stopping: stop after this many epochs without a better "
                   "validation score (--best-by), but never before the learning rate has "
                   "decayed to half (default 10; 0: never)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                   metavar="{auto,fp32,bf16,fp16}",  # detect's spelling; float32... still parse
                   type=lambda s: {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(s, s),
                   help="auto (default): mixed fp16 on a GPU, fp32 on a CPU; "
                   "bf16: mixed bfloat16 (for CPUs with AMX or AVX-512 BF16; on BCCD it "
                   "was no faster end to end, docs/training.md)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate and export a moving average of the weights with this "
                   "decay (default 0.9998, ramped up over the first steps; 0: off)")
    p.add_argument("--box-loss", choices=("cfg", "mse", "ciou"),
                   help="the box term of the loss: mse (YOLOv3's), ciou (1 - complete IoU, "
                   "weighted by the cfg's iou_normalizer, default 0.75), or cfg (default: the "
                   "[yolo] sections' iou_loss, mse when they have none)")
    p.add_argument("--anchor-iou", type=float, metavar="T",
                   help="also train every anchor of a head whose shape overlaps a box by more "
                   "than T, not only the best one (AlexeyAB darknet's [yolo] iou_thresh, "
                   "written into the model's cfg; 1: the best anchor only, as YOLOv3; "
                   "default: the cfg's, 0.213 when it has none)")
    p.add_argument("--objectness", choices=("one", "iou"),
                   help="what a box's objectness is trained towards: iou, how well the "
                   "predicted box fits its object (YOLOv5's; default), or one (darknet)")
    p.add_argument("--best-by", choices=("fitness", "map50"),
                   help="what picks the best epoch (the bundle) and what early stopping waits "
                   "on: fitness, 0.1 mAP@0.5 + 0.9 mAP@[.5:.95] of the validation images "
                   "(YOLOv5's; default), or map50, mAP@0.5 alone")
    p.add_argument("--anchors", choices=("cfg", "auto"),
                   help="auto: k-means anchors from the training split (prints the mean IoU "
                   "gained); cfg: the template's (default)")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/DATASET-TEMPLATE)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR with its own settings and length; "
                   "--epochs N moves its end; another setting given with a value other than "
                   "the run's is refused")
    p.add_argument("--name", help="file name of the exported bundle (default model)")
    p.add_argument("--seed", type=int, help="data order and augmentation seed (default 0)")
    p.add_argument("--no-augment", action="store_true", default=None,
                   help="train on the plain images")
    p.add_argument("--rotate", type=float, metavar="DEG",
                   help="random rotation up to DEG degrees (default 0)")
    p.add_argument("--zoom", type=float,
                   help="random zoom, scale in [1-zoom, 1+zoom] (default 0)")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"),
                   default="default",
                   help="mirrored: tf.distribute over every GPU (or logical CPU device); "
                   "multiworker: across machines, one process per machine, cluster from "
                   "TF_CONFIG (docs/training.md)")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own start-up log (hidden by default)")
    add_labels_option(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per line on stdout (see docs/training.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.errors import WorkbenchError
    from workbench.train.loop import StopFlag
    from workbench.train.protocol import HumanReporter, JsonLinesReporter

    out = sys.stdout
    reporter = JsonLinesReporter(out) if args.json else HumanReporter(out)
    # caught from here on, not from the training loop on: a SIGTERM while TensorFlow loads
    # must still end the JSON stream with a "done" event (and checkpoint a built model)
    stop = StopFlag()
    stop.install()
    try:
        settings = _settings(args)
        # every check that needs no TensorFlow first: a bad path costs no TF start-up
        from workbench.train.loop import preflight

        preflight(settings)
        from workbench.tf_runtime import import_tensorflow

        import_tensorflow(verbose=args.verbose, purpose="training")
        from workbench.train.loop import train

        if args.json:
            sys.stdout = sys.stderr  # stray prints (libraries) must not break the protocol
        try:
            train(settings, reporter, stop)
        finally:
            sys.stdout = out
        return 0
    except WorkbenchError as exc:
        if args.json:
            reporter.emit("error", message=str(exc))
        raise
    except OSError as exc:  # a full disk, a read-only run folder: exit 2 as bad input does
        if args.json:
            from workbench.errors import describe_os_error

            reporter.emit("error", message=describe_os_error(exc))
        raise
    except Exception as exc:  # a TensorFlow failure: the GUI still gets one parseable line
        if args.json:
            reporter.emit("error", message=f"{type(exc).__name__}: {exc}".splitlines()[0])
            return 1
        raise
    finally:
        stop.uninstall()


#: TrainSettings fields the flags set (``--no-augment`` sets ``augment``). Their argparse
#: defaults are None, so "not given" is told from "given the default value": a resumed run
#: keeps its own value of every one not given (workbench/train/resume.py); the defaults of a
#: fresh run are TrainSettings'
SETTING_FLAGS = ("template", "weights", "size", "epochs", "batch", "lr", "optimizer", "policy",
                 "freeze_epochs", "patience", "precision", "ema", "box_loss", "anchor_iou",
                 "objectness", "best_by", "anchors", "name", "seed", "rotate", "zoom")


def _given(args: argparse.Namespace) -> dict:
    """{TrainSettings field: value} of the flags on the command line."""
    from workbench.darknet.fetch import resolve_weights

    given = {key: getattr(args, key) for key in SETTING_FLAGS if getattr(args, key) is not None}
    if "weights" in given:
        given["weights"] = resolve_weights(given["weights"])
    if args.no_augment:
        given["augment"] = False
    return given


def _settings(args: argparse.Namespace):
    from workbench.train.loop import TrainSettings

    given = _given(args)
    return TrainSettings(
        dataset=Path(args.dataset), out=Path(args.out) if args.out else None,
        resume=args.resume, strategy=args.strategy,
        labels=Path(args.labels) if args.labels else None, explicit=frozenset(given), **given)
