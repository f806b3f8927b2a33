"""`workbench train DATASET`: fine-tune a YOLO model on a labeled folder, export a bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.commands.dataset_args import add_labels_option
from workbench.darknet.fetch import resolve_weights
from workbench.errors import WorkbenchError, describe_os_error
from workbench.train.protocol import HumanReporter, JsonLinesReporter
from workbench.train.settings import (
    AUTO_FREEZE_EPOCHS,
    BEST_BY,
    OPTIMIZERS,
    POLICIES,
    STRATEGIES,
    TEMPLATES,
    TrainSettings,
)
from workbench.train.stop import StopFlag

#: the defaults the help states: TrainSettings', the one definition (the flags' argparse
#: defaults are None, see SETTING_FLAGS)
D = TrainSettings(dataset=Path("."))


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
    _add_model_options(p)
    _add_schedule_options(p)
    _add_loss_options(p)
    _add_run_options(p)
    _add_data_options(p)
    _add_session_options(p)
    p.set_defaults(func=run)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset folder in any layout `workbench stats` reads "
                   "(labels beside the images, VOC devkit, label folder, Ultralytics); its "
                   "train split trains and its valid split validates when it has one")
    p.add_argument("--template", help=f"{', '.join(TEMPLATES)} or a .cfg file "
                   f"(default {D.template})")
    p.add_argument("--weights", help="start from these darknet weights: a full file, also one "
                   "for another class count (yolov3-tiny.weights from COCO: every layer whose "
                   "shape fits loads, the [yolo] heads start fresh; also into the larger "
                   "yolov3-tiny-3l), or a partial one "
                   "(yolov3-tiny.conv.15); or yolov3-tiny / yolov3 (after `workbench weights fetch "
                   "NAME`), or demo (the bundled demo model's); default: random initialization")
    p.add_argument("--size", type=int,
                   help=f"network width and height, a multiple of 32 (default {D.size})")


def _add_schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help=f"epochs to train (default {D.epochs}; with "
                   "--resume: the run's own, and N moves its end)")
    p.add_argument("--batch", type=int, help=f"images per step (default {D.batch})")
    p.add_argument("--lr", type=float, help=f"learning rate (default {D.lr:g})")
    p.add_argument("--optimizer", choices=OPTIMIZERS,
                   help=f"adam, or sgd with the cfg's momentum (default {D.optimizer})")
    p.add_argument("--policy", choices=POLICIES,
                   help=f"learning-rate policy after the warm-up (default "
                   f"{D.policy}, down to 1%% at the last step; auto follows the cfg)")
    p.add_argument("--freeze-epochs", type=int, metavar="K",
                   help="with --weights: train only what the file does not cover for the first "
                   f"K epochs; the warm-up starts after them (default {AUTO_FREEZE_EPOCHS}, at "
                   "most a fifth of the run; 0 without --weights)")
    p.add_argument("--patience", type=int,
                   help="early stopping: stop after this many epochs without a better "
                   "validation score (--best-by), but never before the learning rate has "
                   f"decayed to half (default {D.patience}; 0: never)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                   metavar="{auto,fp32,bf16,fp16}",  # detect's spelling; float32... still parse
                   type=lambda s: {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(s, s),
                   help="auto (default): mixed fp16 on a GPU, fp32 on a CPU; "
                   "bf16: mixed bfloat16 (for CPUs with AMX or AVX-512 BF16; on BCCD it "
                   "was no faster end to end, docs/training.md)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate and export a moving average of the weights with this "
                   f"decay (default {D.ema:g}, ramped up over the first steps; 0: off)")


def _add_loss_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--box-loss", choices=("cfg", "mse", "ciou"),
                   help="the box term of the loss: mse (YOLOv3's), ciou (1 - complete IoU, "
                   "weighted by the cfg's iou_normalizer, default 0.75), or cfg (default: the "
                   "[yolo] sections' iou_loss, mse when they have none)")
    p.add_argument("--anchor-iou", type=float, metavar="T",
                   help="also train every anchor of a head whose shape overlaps a box by more "
                   "than T, not only the best one (AlexeyAB darknet's [yolo] iou_thresh, "
                   "written into the model's cfg; 1: the best anchor only, as YOLOv3; "
                   "default: the cfg's, 0.213 when it has none)")
    p.add_argument("--scale-xy", type=float, metavar="S",
                   help="the heads' reach: a box centre may fall (S - 1) / 2 of a cell beyond "
                   "the cell predicting it (darknet's [yolo] scale_x_y, written into the "
                   "model's cfg; 1: YOLOv3's, centres strictly inside; 2: YOLOv5's, and each "
                   "box then also trains the two neighbour cells nearest its centre); "
                   "default: the cfg's, 2 when it has none")
    p.add_argument("--objectness", choices=("one", "iou"),
                   help="what a box's objectness is trained towards: iou, how well the "
                   "predicted box fits its object (YOLOv5's; default), or one (darknet)")
    p.add_argument("--best-by", choices=BEST_BY,
                   help="what picks the best epoch (the bundle) and what early stopping waits "
                   "on: fitness, 0.1 mAP@0.5 + 0.9 mAP@[.5:.95] of the validation images "
                   "(YOLOv5's; default), or map50, mAP@0.5 alone")
    p.add_argument("--anchors", choices=("cfg", "auto"),
                   help="auto: k-means anchors from the training split (prints the mean IoU "
                   "gained); cfg: the template's (default)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/DATASET-TEMPLATE)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN_DIR with its own settings and length; "
                   "--epochs N moves its end; another setting given with a value other than "
                   "the run's is refused")
    p.add_argument("--name", help=f"file name of the exported bundle (default {D.name})")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int,
                   help=f"data order and augmentation seed (default {D.seed})")
    p.add_argument("--no-augment", action="store_true", default=None,
                   help="train on the plain images")
    p.add_argument("--rotate", type=float, metavar="DEG",
                   help=f"random rotation up to DEG degrees (default {D.rotate:g})")
    p.add_argument("--zoom", type=float,
                   help=f"random zoom, scale in [1-zoom, 1+zoom] (default {D.zoom:g})")
    p.add_argument("--mosaic", action=argparse.BooleanOptionalAction, default=None,
                   help="train on mosaics of four images with a random scale and shift "
                   "(YOLOv4/v5's; default off: it lost to single images in 30 epochs on BCCD, "
                   "docs/training.md)")
    p.add_argument("--close-mosaic", type=int, metavar="K",
                   help="train the last K epochs without mosaic (default: a sixth of the run)")
    p.add_argument("--mixup", type=float, metavar="P",
                   help=f"blend this share of the mosaics with a second one (default "
                   f"{D.mixup:g})")
    p.add_argument("--copy-paste", type=float, metavar="P",
                   help="copy each object to its mirrored place in the image with chance P, "
                   "kept where it covers under 30 %% of every labeled object (YOLOv5's "
                   f"copy_paste with boxes; default {D.copy_paste:g}: off)")
    p.add_argument("--multiscale", type=float, metavar="F",
                   help="change the input size every 10 batches within +-F of --size, in "
                   f"multiples of 32 (default {D.multiscale:g}: off)")


def _add_session_options(p: argparse.ArgumentParser) -> None:
    """The session's, not the run's: a resumed run applies them as given."""
    p.add_argument("--strategy", choices=STRATEGIES, default=D.strategy,
                   help="mirrored: tf.distribute over every GPU (or logical CPU device); "
                   "multiworker: across machines, one process per machine, cluster from "
                   "TF_CONFIG (docs/training.md)")
    p.add_argument("--verbose", action="store_true",
                   help="show TensorFlow's own start-up log (hidden by default)")
    add_labels_option(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per line on stdout (see docs/training.md)")


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    reporter = JsonLinesReporter(out) if args.json else HumanReporter(out)
    # caught from here on, not from the training loop on: a SIGTERM while TensorFlow loads
    # must still end the JSON stream with a "done" event (and checkpoint a built model)
    stop = StopFlag()
    stop.install()
    try:
        settings = _settings(args)
        # every check that needs no TensorFlow first: a bad path costs no TF start-up
        # lazy: the dataset readers (PIL) and the trainer (the detector) are not loaded at
        # every `workbench` start, only for this verb
        from workbench.train.prepare import preflight

        preflight(settings)
        from workbench.tf_runtime import import_tensorflow  # lazy: importlib.metadata, 50 ms

        import_tensorflow(verbose=args.verbose, purpose="training")
        from workbench.train.loop import train  # lazy: after TensorFlow, as above

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
                 "scale_xy",
                 "objectness", "best_by", "anchors", "name", "seed", "rotate", "zoom",
                 "mosaic", "close_mosaic", "mixup", "copy_paste", "multiscale")


def _given(args: argparse.Namespace) -> dict:
    """{TrainSettings field: value} of the flags on the command line."""
    given = {key: getattr(args, key) for key in SETTING_FLAGS if getattr(args, key) is not None}
    if "weights" in given:
        given["weights"] = resolve_weights(given["weights"])
    if args.no_augment:
        given["augment"] = False
    return given


def _settings(args: argparse.Namespace) -> TrainSettings:
    given = _given(args)
    return TrainSettings(
        dataset=Path(args.dataset), out=Path(args.out) if args.out else None,
        resume=args.resume, strategy=args.strategy,
        labels=Path(args.labels) if args.labels else None, explicit=frozenset(given), **given)
