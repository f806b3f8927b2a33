"""Before the first step: the dataset's records, the checks that need no TensorFlow, and the run
folder prepared (a fresh run's customized cfg, schedule and config.json; or a run to resume,
read back whole and checked before anything is written).

Imports no TensorFlow: ``preflight`` runs before it loads, so a wrong path or option is one
line at once instead of after TensorFlow's seconds of start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.bundled import template_cfg
from workbench.darknet.anchors import kmeans_anchors, wh_iou
from workbench.darknet.cfg import DarknetCfg, anchors_of, customize, format_cfg, read_cfg
from workbench.darknet.validate import check_cfg, check_input_size
from workbench.data.folder import open_dataset
from workbench.errors import WorkbenchError
from workbench.network.keras_model import MAX_SCALE_XY
from workbench.storage.atomic import atomic_write_text
from workbench.train.data import split_records, undecodable
from workbench.train.precision import PRECISIONS
from workbench.train.resume import ResumePlan, explicit_settings, plan_resume
from workbench.train.run_folder import (
    check_fresh_run_dir,
    claim_run_dir,
    default_run_dir,
    read_saved_run,
)
from workbench.train.schedule import LearningRateSchedule, schedule_for
from workbench.train.settings import (
    BEST_BY,
    DEFAULT_ANCHOR_IOU,
    DEFAULT_SCALE_XY,
    OPTIMIZERS,
    STRATEGIES,
    TEMPLATES,
    TrainSettings,
    resolved_freeze_epochs,
)


def resolve_template(template: str) -> DarknetCfg:
    """A built-in template name (one of TEMPLATES: ``yolov3-tiny``, ``yolov3-tiny-3l``,
    ``yolov3``, ``demo-tiny``) or a .cfg path."""
    if template in TEMPLATES:
        return read_cfg(template_cfg(template))
    path = Path(template)
    if not path.is_file():
        raise WorkbenchError(f"{template}: no such template (use {', '.join(TEMPLATES)} or a "
                             ".cfg file)")
    return read_cfg(path)


def run_dir_of(settings: TrainSettings) -> Path:
    """``--out``, or the CLI's default run folder (relative to the working folder)."""
    return Path(settings.out or default_run_dir(settings.dataset, settings.template))


def load_records(settings: TrainSettings):
    """(class names, training records, validation records) of the dataset."""
    dataset = open_dataset(settings.dataset, labels=settings.labels)
    names = dataset.classes.names
    if not names:
        found = f"; {dataset.problems[0]}" if dataset.problems else ""
        raise WorkbenchError(f"{settings.dataset}: the dataset has no classes (no class list "
                             f"file and no labeled boxes){found}")
    train_records, valid_records = split_records(dataset, settings.valid_fraction)
    if not train_records:
        raise WorkbenchError(f"{settings.dataset}: no labeled images to train on")
    return names, train_records, valid_records


def drop_undecodable(settings: TrainSettings, train_records: list, valid_records: list):
    """(train, valid, skipped lines): images that do not decode in full are left out and
    named before training starts, instead of stopping it mid-epoch."""
    bad = undecodable(train_records + valid_records)
    if not bad:
        return train_records, valid_records, []
    paths = {rec.path for rec, _ in bad}
    train_records = [r for r in train_records if r.path not in paths]
    valid_records = [r for r in valid_records if r.path not in paths]
    if not train_records:
        raise WorkbenchError(f"{settings.dataset}: no labeled image to train on decodes "
                             f"({bad[0][1]})")
    return train_records, valid_records, [why for _, why in bad]


def preflight(settings: TrainSettings) -> None:
    """Every check of the inputs that needs no TensorFlow (module docstring)."""
    names, _, _ = load_records(settings)
    if settings.weights is not None and not Path(settings.weights).is_file():
        raise WorkbenchError(f"{settings.weights}: weights file not found")
    run_dir = run_dir_of(settings)
    if run_dir.exists() and not run_dir.is_dir():
        raise WorkbenchError(f"{run_dir}: the run folder is a file; choose another --out")
    if settings.resume:
        check_resume_epochs(settings)
        # a damaged run folder or a flag at odds with the run: one line, before TensorFlow
        plan_resume(run_dir, read_saved_run(run_dir, names), settings)
        return
    check_fresh_run_dir(run_dir)
    check_settings(settings)
    # what detect and export would refuse must not be trained
    check_cfg(customize(resolve_template(settings.template), len(names), settings.size,
                        settings.size))


def check_resume_epochs(settings: TrainSettings) -> None:
    if "epochs" in explicit_settings(settings) and settings.epochs < 1:
        raise WorkbenchError("--epochs must be at least 1")


def _check_augment_flags_apply(settings: TrainSettings) -> None:
    """Refuse an augmentation flag the run would drop without a word: --no-augment turns
    mosaic, mixup and copy-paste off (ImageRecipe), and mixup blends mosaics only."""
    if not settings.augment:
        given = [flag for flag, on in (("--mosaic", settings.mosaic),
                                       (f"--mixup {settings.mixup:g}", settings.mixup > 0),
                                       (f"--copy-paste {settings.copy_paste:g}",
                                        settings.copy_paste > 0)) if on]
        if given:
            raise WorkbenchError(f"--no-augment turns off {' and '.join(given)}: give one or "
                                 "the other")
    if settings.mixup > 0 and not settings.mosaic:
        raise WorkbenchError(f"--mixup {settings.mixup:g} blends mosaics: add --mosaic")


def check_settings(settings: TrainSettings) -> None:
    """The settings of a fresh run, each in range; WorkbenchError naming the flag."""
    check_input_size(settings.size, settings.size, "--size")
    for key, allowed in (("optimizer", OPTIMIZERS), ("strategy", STRATEGIES)):
        if getattr(settings, key) not in allowed:
            raise WorkbenchError(f"unknown {key} {getattr(settings, key)!r} "
                                 f"(use {', '.join(allowed)})")
    if settings.epochs < 1 or settings.batch < 1:
        raise WorkbenchError("--epochs and --batch must be at least 1")
    if settings.anchors not in ("cfg", "auto"):
        raise WorkbenchError(f"--anchors {settings.anchors!r}: use cfg or auto")
    if settings.box_loss not in ("cfg", "mse", "ciou"):
        raise WorkbenchError(f"--box-loss {settings.box_loss!r}: use cfg, mse or ciou")
    if settings.anchor_iou is not None and not 0.0 < settings.anchor_iou <= 1.0:
        raise WorkbenchError(f"--anchor-iou {settings.anchor_iou}: use a value in (0, 1]")
    if settings.scale_xy is not None and not 1.0 <= settings.scale_xy <= MAX_SCALE_XY:
        raise WorkbenchError(f"--scale-xy {settings.scale_xy:g}: use a value from 1 to "
                             f"{MAX_SCALE_XY:g} (2: YOLOv5's reach)")
    if not 0.0 <= settings.multiscale < 1.0:
        raise WorkbenchError(f"--multiscale {settings.multiscale:g}: use a value in [0, 1) "
                             "(0.3: sizes within 30 % of --size)")
    if not 0.0 <= settings.mixup <= 1.0:
        raise WorkbenchError(f"--mixup {settings.mixup:g}: use a share in [0, 1]")
    if not 0.0 <= settings.copy_paste <= 1.0:
        raise WorkbenchError(f"--copy-paste {settings.copy_paste:g}: use a chance in [0, 1]")
    _check_augment_flags_apply(settings)
    if settings.close_mosaic < -1:
        raise WorkbenchError(f"--close-mosaic {settings.close_mosaic}: use 0 or more epochs")
    if settings.objectness not in ("one", "iou"):
        raise WorkbenchError(f"--objectness {settings.objectness!r}: use one or iou")
    if settings.best_by not in BEST_BY:
        raise WorkbenchError(f"--best-by {settings.best_by!r}: use {' or '.join(BEST_BY)}")
    if settings.precision not in PRECISIONS:
        raise WorkbenchError(f"unknown precision {settings.precision!r} "
                             f"(use {', '.join(PRECISIONS)})")


def auto_anchors(cfg: DarknetCfg, train_records, width: int, height: int):
    """(anchors, mean IoU of the cfg's anchors, mean IoU of the new ones) for ``--anchors auto``:
    k-means over the training split's box sizes at the network input, as many as the cfg has."""
    sizes: list[tuple[float, float]] = []
    for r in train_records:
        if r.width > 0 and r.height > 0:
            sizes.extend((b.width * width / r.width, b.height * height / r.height)
                         for b in r.boxes)
    wh = np.asarray(sizes, np.float64).reshape(-1, 2)
    wh = wh[(wh[:, 0] > 0) & (wh[:, 1] > 0)]
    old = np.asarray(anchors_of(cfg.layers[cfg.yolo_layers()[0]]), np.float64)
    if len(wh) < len(old):
        raise WorkbenchError(f"--anchors auto: {len(wh)} labeled boxes in the training split are "
                             f"too few for {len(old)} anchors")
    result = kmeans_anchors(wh, len(old), seed=0)
    before = float(wh_iou(wh, old).max(axis=1).mean())
    return [tuple(a) for a in result.anchors], before, result.mean_iou


@dataclass
class PreparedRun:
    """The run this session trains: fresh, or read back from RUN_DIR to resume."""

    run_dir: Path
    cfg: DarknetCfg  # the customized cfg (model.cfg)
    schedule: LearningRateSchedule
    config: dict  # the run file (config.json) as this session writes it
    plan: ResumePlan | None  # None: a fresh run


def _training_cfg(settings: TrainSettings, num_classes: int, train_records: list):
    """(the template customized for the dataset and the settings, the --anchors auto note)."""
    template = resolve_template(settings.template)
    n_images = len(train_records)
    cfg = customize(template, num_classes, settings.size, settings.size, n_images=n_images)
    anchors_note = None
    if settings.anchors == "auto":
        anchors, before, after = auto_anchors(cfg, train_records, settings.size, settings.size)
        cfg = customize(template, num_classes, settings.size, settings.size,
                        anchors=anchors, n_images=n_images)
        anchors_note = (f"anchors from the training split: mean IoU {before:.3f} (the cfg's) "
                        f"-> {after:.3f}")
    # darknet's keys (AlexeyAB's fork): the exported cfg trains the same in darknet
    for i in cfg.yolo_layers():
        if settings.box_loss != "cfg":
            cfg.layers[i].options["iou_loss"] = settings.box_loss
        if settings.anchor_iou is not None:
            cfg.layers[i].options["iou_thresh"] = f"{settings.anchor_iou:g}"
        elif "iou_thresh" not in cfg.layers[i].options:  # a YOLOv4 cfg's own value stays
            cfg.layers[i].options["iou_thresh"] = f"{DEFAULT_ANCHOR_IOU:g}"
        if settings.scale_xy is not None:
            cfg.layers[i].options["scale_x_y"] = f"{settings.scale_xy:g}"
        elif "scale_x_y" not in cfg.layers[i].options:  # a YOLOv4 cfg's own value stays
            cfg.layers[i].options["scale_x_y"] = f"{DEFAULT_SCALE_XY:g}"
    check_cfg(cfg)  # what detect and export would refuse must not be trained
    return cfg, anchors_note


def prepare_run(settings: TrainSettings, class_names: list[str], train_records: list,
                write: bool = True) -> PreparedRun:
    """The run, fresh or read back (and checked whole, nothing written) from a run to resume,
    with --epochs applied. ``write`` False (a multi-worker run's non-chief workers) leaves
    RUN_DIR to the chief."""
    run_dir = run_dir_of(settings)
    if write:  # held before it is checked: two runs never both find it fresh and share it
        claim_run_dir(run_dir)
    if settings.resume:
        check_resume_epochs(settings)
        plan = plan_resume(run_dir, read_saved_run(run_dir, class_names), settings)
        return PreparedRun(run_dir, plan.saved.cfg, plan.schedule, plan.config, plan)
    # a run that failed before its first checkpoint may be started again in place
    # (one whose state is damaged must not be overwritten either: its bundle is still good)
    check_fresh_run_dir(run_dir)
    check_settings(settings)
    cfg, anchors_note = _training_cfg(settings, len(class_names), train_records)
    freeze_epochs = resolved_freeze_epochs(settings)
    steps_per_epoch = max(len(train_records) // settings.batch, 1)
    steps = steps_per_epoch * settings.epochs
    hold = steps_per_epoch * min(freeze_epochs, settings.epochs) if settings.weights else 0
    schedule = schedule_for(cfg, settings.lr, steps, settings.policy, hold=hold)
    config: dict[str, Any] = {"settings": settings.to_run_file(), "classes": class_names,
              "schedule": schedule.to_dict(),
              # what --epochs on --resume moves the schedule's end by (resume.py)
              "steps_per_epoch": steps_per_epoch}
    config["settings"]["freeze_epochs"] = freeze_epochs
    if anchors_note:
        config["anchors_note"] = anchors_note
    if write:  # not on a multi-worker run's non-chief workers: the chief writes RUN_DIR
        atomic_write_text(run_dir / "model.cfg", format_cfg(cfg))
        write_run_file(run_dir, config)
    return PreparedRun(run_dir, cfg, schedule, config, None)


def write_run_file(run_dir: Path, config: dict) -> None:
    """config.json, written atomically."""
    atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2) + "\n")
