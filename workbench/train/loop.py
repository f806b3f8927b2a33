"""The training loop: a labeled dataset folder in, a Darknet model bundle out.

``train(settings, reporter)`` builds the Keras model from a darknet cfg customized for the
dataset's classes, optionally loads (partial) darknet weights, trains with a custom
``tf.function`` step, validates mAP@0.5 after every epoch through the same decode, NMS and
evaluator the detector uses, and keeps in RUN_DIR:

    config.json       the run's settings (a resumed run keeps its schedule and classes)
    model.cfg         the customized cfg being trained
    checkpoints/      one tf.train.Checkpoint per epoch: model, optimizer, step, schedule state
    best/             the checkpoint with the best validation mAP@0.5
    bundle/           that best model exported as NAME.cfg / NAME.weights / NAME.names (and
                      thresholds.json when its best-F1 confidence is far from detect's 0.25)
    metrics.csv, metrics.png

Validation exports the (weight-averaged) model as a bundle and scores it with the detector
``workbench detect`` uses, so its mAP is the one ``detect`` + ``eval`` give for that bundle.

SIGINT and SIGTERM finish the current step, save a checkpoint and return cleanly; ``--resume``
continues from it with the same data order.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.bundled import template_cfg
from workbench.darknet.cfg import DarknetCfg, customize, format_cfg, read_cfg
from workbench.darknet.validate import check_cfg, check_input_size
from workbench.errors import WorkbenchError
from workbench.storage.atomic import atomic_write_text
from workbench.train.augment import AugmentSettings
from workbench.train.ema import DEFAULT_DECAY
from workbench.train.protocol import Reporter, draw_metrics_png, write_metrics_csv
from workbench.train.resume import explicit_settings, plan_resume, saved_setting
from workbench.train.run_folder import (
    check_fresh_run_dir,
    claim_run_dir,
    read_saved_run,
    release_run_dirs,
)
from workbench.train.schedule import schedule_for

TEMPLATES = ("yolov3-tiny", "yolov3", "demo-tiny")
OPTIMIZERS = ("adam", "sgd")
STRATEGIES = ("default", "mirrored", "multiworker")
VALID_CONF = 0.005  # darknet's mAP threshold: low-confidence candidates count for AP
VALID_NMS = 0.45
#: what picks the best epoch (and what early stopping waits on): YOLOv5's fitness weighs
#: mAP@[.5:.95] 0.9 and mAP@0.5 0.1; map50 is mAP@0.5 alone
BEST_BY = ("fitness", "map50")
#: [yolo] iou_thresh when the template has none (AlexeyAB's YOLOv4 value): with the IoU
#: objectness target, +1.5 points of mAP@[.5:.95] on BCCD in two runs (docs/training.md)
DEFAULT_ANCHOR_IOU = 0.213
DEFAULT_CONF = 0.25  # workbench detect's --conf
#: with --weights and no --freeze-epochs: epochs that train only what the file does not cover
AUTO_FREEZE_EPOCHS = 2
#: an unfrozen step costs about this many frozen ones (backward through the backbone too);
#: the ETA uses it until the first unfrozen steps have been timed
UNFROZEN_STEP_COST = 1.8


@dataclass
class TrainSettings:
    """Everything a run needs; the CLI flags map onto these one to one."""

    dataset: Path
    template: str = "yolov3-tiny"
    weights: Path | None = None
    size: int = 416
    epochs: int = 50
    batch: int = 8
    lr: float = 1e-3
    optimizer: str = "adam"
    policy: str = "cosine"
    freeze_epochs: int = -1  # -1: AUTO_FREEZE_EPOCHS with --weights, else 0
    out: Path | None = None
    resume: bool = False
    strategy: str = "default"
    patience: int = 10
    seed: int = 0
    augment: bool = True
    rotate: float = 0.0
    zoom: float = 0.0
    valid_fraction: float = 0.1
    precision: str = "auto"  # auto | float32 | bfloat16 | float16 (workbench.train.precision)
    ema: float = DEFAULT_DECAY  # decay of the weight average validated and exported (0: off)
    anchors: str = "cfg"  # cfg: the template's; auto: k-means over the training split
    box_loss: str = "cfg"  # cfg: the [yolo] sections' iou_loss (mse when absent); mse; ciou
    anchor_iou: float | None = None  # [yolo] iou_thresh (None: the cfg's, DEFAULT_ANCHOR_IOU
    #                                   when it has none)
    objectness: str = "iou"  # a positive cell's objectness target: iou (YOLOv5) or one (darknet)
    best_by: str = "fitness"  # the best epoch: fitness (0.1 mAP@0.5 + 0.9 mAP@[.5:.95]) or map50
    name: str = "model"
    batch_events: int = 1  # report every n-th step (0: never)
    labels: Path | None = None  # label folder apart from the images (--labels)
    #: the fields the user gave (the CLI's flags); None: those that differ from the defaults.
    #: A resume keeps the run's own settings and refuses a given one that differs
    #: (workbench/train/resume.py); never written to the run file
    explicit: frozenset[str] | None = None


@dataclass
class TrainResult:
    status: str  # finished | early_stopped | interrupted
    run_dir: Path
    bundle: Path | None
    best_map50: float | None
    best_epoch: int
    epochs_done: int
    steps: int
    metrics: list[dict]


def resolve_template(template: str) -> DarknetCfg:
    """A built-in template name (``yolov3-tiny``, ``yolov3``, ``demo-tiny``) or a .cfg path."""
    if template in TEMPLATES:
        return read_cfg(template_cfg(template))
    path = Path(template)
    if not path.is_file():
        raise WorkbenchError(f"{template}: no such template (use {', '.join(TEMPLATES)} or a "
                             ".cfg file)")
    return read_cfg(path)


def default_run_dir(dataset: Path, template: str) -> Path:
    return Path("runs") / f"{Path(dataset).resolve().name}-{Path(template).stem}"


class StopFlag:
    """Set by SIGINT/SIGTERM (or by the caller): the loop saves a checkpoint and returns."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self._depth = 0  # the CLI installs it before TensorFlow loads, train() again inside

    def set(self, *_: Any) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self) -> None:
        self._depth += 1
        if self._depth > 1 or threading.current_thread() is not threading.main_thread():
            return  # installed already; or not the main thread, where signals cannot be handled
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.set)

    def uninstall(self) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def restore_checkpoint(checkpoint, prefix: Path) -> None:
    """Restore every variable of ``checkpoint`` from ``prefix``; a damaged or foreign checkpoint
    is one WorkbenchError (TensorFlow raises DataLossError, IndexError, NotFoundError, ...)."""
    import tensorflow as tf

    try:
        checkpoint.restore(str(prefix)).assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, IndexError, AssertionError) as exc:
        raise WorkbenchError(f"{prefix}: the checkpoint is damaged or from another model "
                             f"({_tf_message(exc)}); the run cannot be resumed (nothing was "
                             "changed)") from None


def save_checkpoint(manager, step: int) -> str:
    """``manager.save``; a full disk (TensorFlow's OutOfRangeError, not an OSError) becomes one
    line naming the folder. The previous checkpoints stay: TensorFlow writes to a temporary
    name first."""
    import tensorflow as tf

    try:
        return manager.save(checkpoint_number=step)
    except tf.errors.OpError as exc:
        import shutil

        # what TensorFlow left half-written: its temporary folder, named in its message
        shutil.rmtree(Path(manager.directory, f"ckpt-{step}_temp"), ignore_errors=True)
        # "<temporary file>; File too large [Op:SaveV2]": the reason, not the temporary name
        reason = re.sub(r"\s*\[Op:\w+\]$", "", _tf_message(exc).rsplit("; ", 1)[-1])
        raise WorkbenchError(f"{manager.directory}: cannot save a checkpoint: {reason}") from None


def _tf_message(exc: BaseException) -> str:
    """The first line of a TensorFlow error, without its {{function_node ...}} prefix."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", str(exc)).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def _load_records(settings: TrainSettings):
    from workbench.data.folder import open_dataset
    from workbench.train.data import split_records

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


def _drop_undecodable(settings: TrainSettings, train_records: list, valid_records: list):
    """(train, valid, skipped lines): images that do not decode in full are left out and
    named before training starts, instead of stopping it mid-epoch."""
    from workbench.train.data import undecodable

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
    """Every check of the inputs that needs no TensorFlow, so a wrong path or option is one
    line at once instead of after TensorFlow's seconds of start-up."""
    names, _, _ = _load_records(settings)
    if settings.weights is not None and not Path(settings.weights).is_file():
        raise WorkbenchError(f"{settings.weights}: weights file not found")
    run_dir = Path(settings.out or default_run_dir(settings.dataset, settings.template))
    if run_dir.exists() and not run_dir.is_dir():
        raise WorkbenchError(f"{run_dir}: the run folder is a file; choose another --out")
    if settings.resume:
        _check_resume_epochs(settings)
        # a damaged run folder or a flag at odds with the run: one line, before TensorFlow
        plan_resume(run_dir, read_saved_run(run_dir, names), settings)
        return
    check_fresh_run_dir(run_dir)
    _check_settings(settings)
    # what detect and export would refuse must not be trained
    check_cfg(customize(resolve_template(settings.template), len(names), settings.size,
                        settings.size))


def _check_resume_epochs(settings: TrainSettings) -> None:
    if "epochs" in explicit_settings(settings) and settings.epochs < 1:
        raise WorkbenchError("--epochs must be at least 1")


def _check_settings(settings: TrainSettings) -> None:
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
    if settings.objectness not in ("one", "iou"):
        raise WorkbenchError(f"--objectness {settings.objectness!r}: use one or iou")
    if settings.best_by not in BEST_BY:
        raise WorkbenchError(f"--best-by {settings.best_by!r}: use {' or '.join(BEST_BY)}")
    from workbench.train.precision import PRECISIONS

    if settings.precision not in PRECISIONS:
        raise WorkbenchError(f"unknown precision {settings.precision!r} "
                             f"(use {', '.join(PRECISIONS)})")


def _make_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":  # across machines, from TF_CONFIG: workbench/train/multiworker.py
        from workbench.train.multiworker import make_strategy

        return make_strategy()
    if name != "mirrored":
        raise WorkbenchError(f"unknown strategy {name!r} (use {' or '.join(STRATEGIES)})")
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    # NCCL needs GPUs; on CPU devices reduce through one device
    return tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())


def _frozen_layers(cfg: DarknetCfg, loaded: list[int]) -> int:
    """How many leading darknet layers the freeze phase holds: what the start weights cover,
    never past the first head's convolution (the heads always train)."""
    if not loaded:
        return 0
    first_head = cfg.yolo_layers()[0] - 1
    return min(max(loaded) + 1, first_head)


def _ground_truth(records) -> dict:
    from workbench.evaluation.evaluate import GroundTruth

    return {str(r.path): GroundTruth.from_boxes(r.boxes) for r in records}


def validate_bundle(bundle_dir: Path, records, num_classes: int, backend: str = "auto",
                    progress=None):
    """(mAP@0.5, mAP@[.5:.95], Evaluation, predictions) of the bundle in ``bundle_dir`` on
    ``records``: the detector ``workbench detect`` runs (same engine choice, image decoding,
    resize, decode, class-aware NMS at 0.45, candidates above 0.005) scored by ``workbench
    eval``'s ``evaluate`` (``--metric voc`` for mAP@0.5 and the Evaluation, ``--metric coco``
    for mAP@[.5:.95]). One code path, so the trainer's figures are detect + eval's."""
    from workbench.detect.detector import Detector
    from workbench.evaluation.evaluate import Predictions, evaluate

    detector = Detector(bundle_dir, backend)
    preds = {}
    for result in detector.detect_many([r.path for r in records], VALID_CONF, VALID_NMS,
                                       workers=1, progress=progress):
        d = result.detections
        preds[str(result.path)] = (Predictions(d.boxes, d.scores, d.class_ids) if result.ok
                                   else Predictions.empty())
    truth = _ground_truth(records)
    result = evaluate(truth, preds, num_classes, iou_threshold=0.5, metric="voc")
    coco = evaluate(truth, preds, num_classes, metric="coco")
    return float(result.map50), float(coco.map50_95), result, preds


def epoch_score(map50: float | None, map50_95: float | None, best_by: str) -> float:
    """The figure the best epoch is chosen by; no figure (no labeled objects) counts as 0."""
    def finite(x: float | None) -> float:
        return 0.0 if x is None or not np.isfinite(x) else float(x)

    if best_by == "map50":
        return finite(map50)
    return 0.1 * finite(map50) + 0.9 * finite(map50_95)


def auto_anchors(cfg: DarknetCfg, train_records, width: int, height: int):
    """(anchors, mean IoU of the cfg's anchors, mean IoU of the new ones) for ``--anchors auto``:
    k-means over the training split's box sizes at the network input, as many as the cfg has."""
    from workbench.darknet.anchors import kmeans_anchors, wh_iou
    from workbench.darknet.cfg import anchors_of

    sizes = []
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


def resolved_freeze_epochs(settings: TrainSettings) -> int:
    """``--freeze-epochs``, or with -1 (the default) AUTO_FREEZE_EPOCHS when starting from
    weights (at most a fifth of the run) and 0 without."""
    if settings.freeze_epochs >= 0:
        return settings.freeze_epochs
    return min(AUTO_FREEZE_EPOCHS, settings.epochs // 5) if settings.weights else 0


def _prepare_run(settings: TrainSettings, class_names: list[str], train_records: list,
                 write: bool = True):
    """(run_dir, cfg, schedule, saved config, ResumePlan or None) - fresh, or read back (and
    checked whole, nothing written) from a run to resume, with --epochs applied. ``write`` False (a multi-worker
    run's non-chief workers) leaves RUN_DIR to the chief."""
    run_dir = Path(settings.out or default_run_dir(settings.dataset, settings.template))
    config_path = run_dir / "config.json"
    if write:  # held before it is checked: two runs never both find it fresh and share it
        claim_run_dir(run_dir)
    if settings.resume:
        _check_resume_epochs(settings)
        plan = plan_resume(run_dir, read_saved_run(run_dir, class_names), settings)
        return run_dir, plan.saved.cfg, plan.schedule, plan.config, plan
    # a run that failed before its first checkpoint may be started again in place
    # (one whose state is damaged must not be overwritten either: its bundle is still good)
    check_fresh_run_dir(run_dir)
    _check_settings(settings)
    train_images = len(train_records)
    template = resolve_template(settings.template)
    cfg = customize(template, len(class_names), settings.size, settings.size,
                    n_images=train_images)
    anchors_note = None
    if settings.anchors == "auto":
        anchors, before, after = auto_anchors(cfg, train_records, settings.size, settings.size)
        cfg = customize(template, len(class_names), settings.size, settings.size,
                        anchors=anchors, n_images=train_images)
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
    check_cfg(cfg)  # what detect and export would refuse must not be trained
    freeze_epochs = resolved_freeze_epochs(settings)
    steps_per_epoch = max(train_images // settings.batch, 1)
    steps = steps_per_epoch * settings.epochs
    hold = steps_per_epoch * min(freeze_epochs, settings.epochs) if settings.weights else 0
    schedule = schedule_for(cfg, settings.lr, steps, settings.policy, hold=hold)
    saved = {"settings": {k: (str(v) if isinstance(v, Path) else v)
                          for k, v in asdict(settings).items() if k != "explicit"},
             "classes": class_names, "schedule": schedule.to_dict(),
             # what --epochs on --resume moves the schedule's end by (resume.py)
             "steps_per_epoch": steps_per_epoch}
    saved["settings"]["freeze_epochs"] = freeze_epochs
    if anchors_note:
        saved["anchors_note"] = anchors_note
    if write:  # not on a multi-worker run's non-chief workers: the chief writes RUN_DIR
        atomic_write_text(run_dir / "model.cfg", format_cfg(cfg))
        atomic_write_text(config_path, json.dumps(saved, indent=2) + "\n")
    return run_dir, cfg, schedule, saved, None


def train(settings: TrainSettings, reporter: Reporter | None = None,
          stop: StopFlag | None = None) -> TrainResult:
    """Run (or resume) training; report through ``reporter``; see the module docstring.

    SIGINT/SIGTERM are caught from the first line on: one during start-up lets start-up finish,
    checkpoints the new model and ends with a ``done`` event (status ``interrupted``).
    """
    reporter = reporter or Reporter()
    stop = stop or StopFlag()
    stop.install()
    try:
        if stop.is_set():  # signalled while TensorFlow loaded: no run folder touched yet
            run_dir = Path(settings.out or default_run_dir(settings.dataset, settings.template))
            reporter.emit("done", status="interrupted", run_dir=str(run_dir), bundle=None,
                          best_map50=None, best_epoch=0, epoch=0, step=0)
            return TrainResult("interrupted", run_dir, None, None, 0, 0, 0, [])
        return _train(settings, reporter, stop)
    finally:
        release_run_dirs()  # the run folder is free for the next run (or a resume)
        stop.uninstall()


def _train(settings: TrainSettings, reporter: Reporter, stop: StopFlag) -> TrainResult:
    import keras
    import tensorflow as tf

    from workbench.darknet.weights import conv_layer_sizes
    from workbench.train.darknet_io import export_bundle, load_darknet_weights
    from workbench.train.data import examples_from_records, make_dataset
    from workbench.train.ema import WeightAverage
    from workbench.train.loss import yolo_loss
    from workbench.train.model import (
        build_model,
        heads_info,
        init_head_priors,
        run_heads,
        set_trainable_prefix,
    )
    from workbench.train.multiworker import (
        is_chief,
        remove_scratch,
        sync_batch_norm,
        weights_digest,
        write_dir,
    )
    from workbench.train.precision import keras_policy, resolve_precision

    class_names, train_records, valid_records = _load_records(settings)
    train_records, valid_records, skipped = _drop_undecodable(settings, train_records,
                                                              valid_records)
    strategy = _make_strategy(settings.strategy)
    run_dir, cfg, schedule, saved, plan = _prepare_run(
        settings, class_names, train_records, is_chief(strategy))  # chief: writes RUN_DIR
    out_dir = write_dir(run_dir, strategy)  # RUN_DIR, or a non-chief worker's scratch folder
    run = saved["settings"]  # a resumed run keeps its own geometry, seed and augmentation
    width, height = cfg.width, cfg.height
    num_classes = len(class_names)
    heads = heads_info(cfg)
    precision = resolve_precision(saved_setting(run, "precision"),
                                  bool(tf.config.list_logical_devices("GPU")))
    # the run file records what ran, not "auto": resumed on a machine where auto means
    # something else (a GPU: float16 and a loss-scaling optimizer), the run stays itself
    run["precision"] = precision
    replicas = strategy.num_replicas_in_sync
    batch = max(min(run["batch"], len(train_records)) // replicas, 1) * replicas
    train_ex = examples_from_records(train_records, num_classes)
    valid_ex = examples_from_records(valid_records, num_classes) if valid_records else None
    steps_per_epoch = len(train_records) // batch
    augment = (AugmentSettings.from_cfg(cfg, rotate=run["rotate"], zoom=run["zoom"])
               if run["augment"] else None)

    with strategy.scope():
        model = build_model(cfg, width, height, dtype=keras_policy(precision))
        if settings.strategy == "multiworker":
            sync_batch_norm(model)  # else each worker's moving statistics drift apart
        if run["optimizer"] == "sgd":
            momentum = cfg.net.get_float("momentum", 0.9)
            optimizer = keras.optimizers.SGD(schedule.rate(0), momentum=momentum)
        else:
            optimizer = keras.optimizers.Adam(schedule.rate(0))
        if precision == "float16":  # float16 gradients underflow without loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        # built on every variable up front: unfreezing later must find their slots
        optimizer.build(model.trainable_variables)
        state = {k: tf.Variable(v, dtype=tf.int64, trainable=False, name=k)
                 for k, v in (("step", 0), ("epoch", 0), ("batch_in_epoch", 0),
                              ("best_epoch", 0), ("bad_epochs", 0))}
        # the best epoch's --best-by score (mAP@0.5 in runs from before --best-by); saved
        # under its old name "best_map" so those runs resume
        best_score = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_map")
    # outside the strategy's scope: plain variables, updated in the step's cross-replica part
    # (mirrored ones assigned there hang a MirroredStrategy on CPU devices)
    ema_decay = float(saved_setting(run, "ema") or 0.0)
    average = WeightAverage(model.trainable_variables, ema_decay) if ema_decay > 0 else None
    extra = {"weight_average": average.module} if average is not None else {}
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, best_map=best_score,
                                     **extra, **state)
    manager = tf.train.CheckpointManager(checkpoint, out_dir / "checkpoints", max_to_keep=2)
    best_manager = tf.train.CheckpointManager(checkpoint, out_dir / "best", max_to_keep=1)

    loaded: list[int] = []
    weights_note = None
    resumed = plan is not None
    if resumed:
        restore_checkpoint(checkpoint, plan.saved.checkpoint)
    else:
        if run.get("weights"):
            from workbench.darknet.weights import read_weights_for_transfer

            transfer = read_weights_for_transfer(run["weights"], cfg)
            load_darknet_weights(model, cfg, transfer.weights)
            loaded = sorted(transfer.weights.layers)
            weights_note = transfer.summary(num_classes)
        # heads the file does not cover start from the priors, not from objectness 0.5
        init_head_priors(model, cfg, heads,
                         [i for i, *_ in conv_layer_sizes(cfg) if i not in loaded])
        if average is not None:  # the average starts from the start weights
            for shadow, v in zip(average.shadows, average.variables, strict=True):
                shadow.assign(v)
    frozen_layers = run.get("frozen_layers", 0) if resumed else _frozen_layers(cfg, loaded)
    saved["settings"]["frozen_layers"] = frozen_layers
    out_dir.mkdir(parents=True, exist_ok=True)
    # a resume writes its run file only when --epochs moved the end, and only now that the
    # checkpoint restored: a refused resume leaves the folder as it was
    if not resumed or plan.changed:
        atomic_write_text(out_dir / "config.json", json.dumps(saved, indent=2) + "\n")

    epochs = run["epochs"]  # a resumed run's own length (--epochs moved it in the plan)
    metrics = plan.saved.metrics if resumed else []
    metrics = [m for m in metrics if m["epoch"] <= int(state["epoch"].numpy())]
    bundle_dir = out_dir / "bundle"
    reporter.emit("start", run_dir=str(run_dir), dataset=str(settings.dataset),
                  template=run["template"], classes=class_names, width=width, height=height,
                  epochs=epochs, start_epoch=int(state["epoch"].numpy()) + 1,
                  step=int(state["step"].numpy()), steps_per_epoch=steps_per_epoch, batch=batch,
                  images_train=len(train_records), images_valid=len(valid_records),
                  strategy=settings.strategy, replicas=replicas, resumed=resumed,
                  optimizer=run["optimizer"], lr=schedule.lr, policy=schedule.policy,
                  freeze_epochs=run["freeze_epochs"], frozen_layers=frozen_layers,
                  skipped_images=skipped, precision=precision, ema=ema_decay,
                  weights_report=weights_note, anchors_report=saved.get("anchors_note"),
                  resume_note=plan.note if resumed else None)

    def make_step():
        variables = model.trainable_variables

        def replica_step(images, boxes, classes):
            with tf.GradientTape() as tape:
                parts = yolo_loss(run_heads(model, images, training=True), boxes, classes, heads,
                                  width, height, objectness=saved_setting(run, "objectness"))
                scaled = parts["total"] / replicas  # gradients are summed over replicas
                scaled = optimizer.scale_loss(scaled)  # unchanged unless float16
            grads = tape.gradient(scaled, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return parts

        @tf.function(autograph=False)
        def step(images, boxes, classes):
            parts = strategy.run(replica_step, args=(images, boxes, classes))
            if average is not None:
                average.update()
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                    for k, v in parts.items()}

        return step

    def save(kind: str) -> str:
        path = save_checkpoint(manager, int(state["step"].numpy()))
        reporter.emit("checkpoint", kind=kind, path=path, epoch=int(state["epoch"].numpy()),
                      step=int(state["step"].numpy()))
        return path

    def calibrate() -> dict:
        """Score the best bundle's operating point on the validation images; store its best-F1
        confidence in the bundle when detect's default 0.25 would lose recall."""
        if valid_ex is None or not bundle_dir.is_dir():
            return {}
        from workbench.darknet.bundle import write_model_conf
        from workbench.evaluation.operating_point import operating_point

        _, _, evaluation, preds = scored(bundle_dir, "scoring the best model")
        point = operating_point(evaluation, preds, DEFAULT_CONF)
        if point is None:
            return {}
        info = {"best_f1_conf": point.conf, "best_f1": point.f1,
                "recall_at_best_f1": point.recall, "recall_at_default_conf": point.recall_at,
                "default_conf": DEFAULT_CONF, "conf_stored": False}
        # the issue's rule: the default must keep the recall within 5 points of the best F1's
        if point.recall - point.recall_at > 0.05:
            write_model_conf(bundle_dir, point.conf,
                             f"best F1 on {len(valid_records)} validation images; "
                             f"recall {point.recall:.3f} there, {point.recall_at:.3f} at "
                             f"{DEFAULT_CONF}")
            info["conf_stored"] = True
        return info

    def best_figures() -> dict:
        """mAP@0.5 and mAP@[.5:.95] of the best epoch so far (None where not measured: no
        epoch yet, or no validation images)."""
        row = next((m for m in metrics if m["epoch"] == int(state["best_epoch"].numpy())), {})
        return {"best_map50": row.get("val_map50"), "best_map50_95": row.get("val_map50_95")}

    def finish(status: str) -> TrainResult:
        best = best_figures()
        calibration = calibrate() if out_dir == run_dir else {}  # the chief's bundle only
        # the last epoch's bundle was only there to be validated; the best one is `bundle`
        shutil.rmtree(candidate_dir, ignore_errors=True)
        remove_scratch(run_dir, out_dir)
        bundle = run_dir / "bundle" if (run_dir / "bundle").is_dir() else None
        synced = ({"weights_sha256": weights_digest(model)}
                  if settings.strategy == "multiworker" else {})
        reporter.emit("done", status=status, run_dir=str(run_dir), **synced,
                      bundle=str(bundle) if bundle else None,
                      **best, best_epoch=int(state["best_epoch"].numpy()),
                      epoch=int(state["epoch"].numpy()), step=int(state["step"].numpy()),
                      metrics_csv=str(run_dir / "metrics.csv"), plot=str(run_dir / "metrics.png"),
                      **calibration)
        return TrainResult(status, run_dir, bundle, best["best_map50"],
                           int(state["best_epoch"].numpy()), int(state["epoch"].numpy()),
                           int(state["step"].numpy()), metrics)

    def export(folder: Path) -> None:
        """The weight average (when on) exported as a bundle; the live weights stay."""
        layers = sum(1 for _ in conv_layer_sizes(cfg))
        with reporter.progress("exporting", layers, "layers") as bar:
            if average is None:
                export_bundle(model, cfg, class_names, folder, run["name"], progress=bar.update)
                return
            with average.swapped():
                export_bundle(model, cfg, class_names, folder, run["name"], progress=bar.update)

    def scored(folder: Path, label: str):
        """validate_bundle on the validation images, its progress drawn for people."""
        with reporter.progress(label, len(valid_records), "images") as bar:
            return validate_bundle(folder, valid_records, num_classes, progress=bar.update)

    def is_frozen(epoch: int) -> bool:
        return frozen_layers > 0 and epoch < run["freeze_epochs"]

    step_seconds: dict[bool, list[float]] = {True: [], False: []}  # by frozen
    valid_seconds: list[float] = []

    def eta(epoch: int, in_epoch: int) -> float:
        """Seconds left: the remaining steps of each phase at that phase's step time (an
        unfrozen step is estimated at UNFROZEN_STEP_COST frozen ones until timed), plus a
        validation per remaining epoch."""
        def per_step(frozen: bool) -> float:
            if step_seconds[frozen]:
                return float(np.median(step_seconds[frozen][-20:]))
            other = step_seconds[not frozen][-20:]
            if not other:
                return 0.0
            factor = 1 / UNFROZEN_STEP_COST if frozen else UNFROZEN_STEP_COST
            return float(np.median(other)) * factor
        left = 0.0
        for e in range(epoch, epochs):
            steps = steps_per_epoch - (in_epoch if e == epoch else 0)
            left += steps * per_step(is_frozen(e))
        if valid_seconds:
            left += (epochs - epoch) * float(np.median(valid_seconds[-5:]))
        return left

    candidate_dir = out_dir / "last"
    stop.install()
    try:
        if stop.is_set():  # signalled during start-up: keep the model built so far
            if not resumed:
                save("interrupt")
            return finish("interrupted")
        step_fn, frozen_now = None, None
        while int(state["epoch"].numpy()) < epochs:
            epoch = int(state["epoch"].numpy())
            frozen = is_frozen(epoch)
            if frozen != frozen_now:
                set_trainable_prefix(model, cfg, frozen_layers, not frozen)
                step_fn, frozen_now = make_step(), frozen
            skip = int(state["batch_in_epoch"].numpy())
            ds = make_dataset(train_ex, width, height, batch, augment=augment, seed=run["seed"],
                              epoch=epoch, shuffle=True, drop_remainder=True, skip_batches=skip)
            sums = {"box": 0.0, "obj": 0.0, "cls": 0.0, "total": 0.0}
            count, t_epoch, train_seconds = 0, time.perf_counter(), 0.0
            for images, boxes, classes in strategy.experimental_distribute_dataset(ds):
                t0 = time.perf_counter()
                step = int(state["step"].numpy())
                lr = schedule.rate(step)
                optimizer.learning_rate = lr
                parts = {k: float(v) for k, v in step_fn(images, boxes, classes).items()}
                if not np.isfinite(parts["total"]):
                    raise WorkbenchError(f"the loss became {parts['total']} at step {step + 1}; "
                                         "try a lower --lr")
                dt = time.perf_counter() - t0
                train_seconds += dt
                if count > 0:  # the first step of a phase includes tracing
                    step_seconds[frozen].append(dt)
                state["step"].assign_add(1)
                state["batch_in_epoch"].assign_add(1)
                count += 1
                for k in sums:
                    sums[k] += parts[k]
                in_epoch = int(state["batch_in_epoch"].numpy())
                if settings.batch_events and in_epoch % settings.batch_events == 0:
                    recent = float(np.median((step_seconds[frozen] or [dt])[-20:]))
                    reporter.emit("batch", epoch=epoch + 1, batch=in_epoch,
                                  step=int(state["step"].numpy()), box=parts["box"],
                                  obj=parts["obj"], cls=parts["cls"], loss=parts["total"],
                                  lr=lr, images_per_s=batch / max(recent, 1e-9),
                                  eta_s=eta(epoch, in_epoch))
                if stop.is_set():
                    save("interrupt")
                    return finish("interrupted")
            state["epoch"].assign(epoch + 1)
            state["batch_in_epoch"].assign(0)
            val_map = val_map95 = None
            if valid_ex is not None:
                t_valid = time.perf_counter()
                export(candidate_dir)
                val_map, val_map95, _, _ = scored(candidate_dir, "validating")
                valid_seconds.append(time.perf_counter() - t_valid)
            # runs from before --best-by chose by mAP@0.5, and their stored best is one
            score = epoch_score(val_map, val_map95, saved_setting(run, "best_by"))
            # no labeled objects in validation gives mAP NaN: reported as null
            val_map = None if val_map is None or not np.isfinite(val_map) else val_map
            val_map95 = None if val_map95 is None or not np.isfinite(val_map95) else val_map95
            improved = valid_ex is None or score > float(best_score.numpy())
            if improved:
                best_score.assign(score)
                state["best_epoch"].assign(epoch + 1)
                state["bad_epochs"].assign(0)
            else:
                state["bad_epochs"].assign_add(1)
            n = max(count, 1)
            row = {"epoch": epoch + 1, "step": int(state["step"].numpy()),
                   "loss": sums["total"] / n, "box": sums["box"] / n, "obj": sums["obj"] / n,
                   "cls": sums["cls"] / n, "lr": schedule.rate(int(state["step"].numpy()) - 1),
                   "val_map50": val_map, "val_map50_95": val_map95,
                   "images_per_s": count * batch / max(train_seconds, 1e-9),
                   "seconds": time.perf_counter() - t_epoch}
            metrics.append(row)
            write_metrics_csv(out_dir / "metrics.csv", metrics)
            draw_metrics_png(out_dir / "metrics.png", metrics)
            reporter.emit("epoch", **row, **best_figures(),
                          best_epoch=int(state["best_epoch"].numpy()), frozen=frozen,
                          eta_s=eta(epoch + 1, 0))
            if improved:
                path = save_checkpoint(best_manager, int(state["step"].numpy()))
                export(bundle_dir)
                reporter.emit("checkpoint", kind="best", path=path, epoch=epoch + 1,
                              step=int(state["step"].numpy()), bundle=str(bundle_dir),
                              val_map50=val_map, val_map50_95=val_map95)
            save("epoch")
            # early stopping waits for the learning rate's decay: before it, a plateau is
            # the high-rate phase, not the end of learning
            if (run["patience"] and int(state["bad_epochs"].numpy()) >= run["patience"]
                    and int(state["step"].numpy()) >= schedule.decay_step()):
                return finish("early_stopped")
            if stop.is_set():
                return finish("interrupted")
        return finish("finished")
    finally:
        stop.uninstall()
