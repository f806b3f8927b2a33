"""A training run's settings, defined once: the fields, their defaults, what each meant in run
files written before it existed, and which of them a resumed run keeps.

``TrainSettings`` is what the CLI's flags fill (``workbench/commands/train.py`` states these
defaults in its help and leaves a flag not given to them), what ``config.json`` records under
``settings`` (:meth:`TrainSettings.to_run_file`) and what ``--resume`` reads back
(:meth:`TrainSettings.from_run_file`, :func:`saved_setting`).

Imports no TensorFlow and nothing heavy: the CLI builds its parser from these at every start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.train.ema import DEFAULT_DECAY

#: built-in templates: darknet_cfg/NAME.cfg (yolov3-tiny-3l: a third head at stride 8)
TEMPLATES = ("yolov3-tiny", "yolov3-tiny-3l", "yolov3", "demo-tiny")
OPTIMIZERS = ("adam", "sgd")
POLICIES = ("auto", "steps", "cosine", "constant")
STRATEGIES = ("default", "mirrored", "multiworker")
#: what picks the best epoch (and what early stopping waits on): YOLOv5's fitness weighs
#: mAP@[.5:.95] 0.9 and mAP@0.5 0.1; map50 is mAP@0.5 alone
BEST_BY = ("fitness", "map50")
#: [yolo] iou_thresh when the template has none (AlexeyAB's YOLOv4 value): with the IoU
#: objectness target, +1.5 points of mAP@[.5:.95] on BCCD in two runs (docs/training.md)
DEFAULT_ANCHOR_IOU = 0.213
#: [yolo] scale_x_y when the cfg has none (YOLOv5's reach; docs/training.md has the runs)
DEFAULT_SCALE_XY = 2.0
#: with --close-mosaic -1 (the default): the last sixth of the epochs train without mosaic,
#: on images as the detector sees them (YOLOv5/v8's "close mosaic")
AUTO_CLOSE_MOSAIC = 1 / 6
#: with --weights and no --freeze-epochs: epochs that train only what the file does not cover
AUTO_FREEZE_EPOCHS = 2


def _kept(default: Any, before: Any = None, json: tuple[type, ...] | None = None,
          legacy: bool = False) -> Any:
    """A setting a resumed run keeps from its run file (given again with another value, the
    resume is refused). ``before`` (with ``legacy``): what a run file written before the
    setting existed trained with. ``json``: the JSON types a run file must hold for it."""
    meta: dict[str, Any] = {"kept": True}
    if legacy:
        meta["before"] = before
    if json is not None:
        meta["json"] = json
    return field(default=default, metadata=meta)


@dataclass
class TrainSettings:
    """Everything a run needs; the CLI flags map onto these one to one."""

    dataset: Path
    template: str = _kept("yolov3-tiny", json=(str,))
    weights: Path | None = _kept(None)
    size: int = _kept(416)
    epochs: int = field(default=50, metadata={"json": (int,)})  # --resume: moves the end
    batch: int = _kept(8, json=(int,))
    lr: float = _kept(1e-3)
    optimizer: str = _kept("adam", json=(str,))
    policy: str = _kept("cosine")
    freeze_epochs: int = _kept(-1, json=(int,))  # -1: AUTO_FREEZE_EPOCHS with --weights, else 0
    out: Path | None = None
    resume: bool = False
    strategy: str = "default"
    patience: int = _kept(10, json=(int,))
    seed: int = _kept(0, json=(int,))
    augment: bool = _kept(True, json=(bool,))
    rotate: float = _kept(0.0, json=(int, float))
    zoom: float = _kept(0.0, json=(int, float))
    # four images in one (workbench/train/mosaic.py). Off by default: on BCCD in 30 epochs it
    # scored 0.852 / 0.485 against 0.886 / 0.523 without (docs/training.md)
    mosaic: bool = _kept(False, before=False, legacy=True)
    # the last epochs train on single images (-1: a sixth of the run, AUTO_CLOSE_MOSAIC)
    close_mosaic: int = _kept(-1, before=0, legacy=True)
    # share of mosaics blended with a second one (YOLOv5's mixup; 0: off)
    mixup: float = _kept(0.0, before=0.0, legacy=True)
    # chance of each object being copied to its mirrored place (workbench/train/copy_paste.py;
    # 0: off, measured in docs/training.md)
    copy_paste: float = _kept(0.0, before=0.0, legacy=True)
    # the input size changes every 10 batches within +-multiscale of --size (0: off)
    multiscale: float = _kept(0.0, before=0.0, legacy=True)
    valid_fraction: float = 0.1
    # auto | float32 | bfloat16 | float16 (workbench.train.precision)
    precision: str = _kept("auto", before="float32", legacy=True)
    # decay of the weight average validated and exported (0: off)
    ema: float = _kept(DEFAULT_DECAY, before=0.0, legacy=True)
    # cfg: the template's; auto: k-means over the training split
    anchors: str = _kept("cfg", before="cfg", legacy=True)
    # cfg: the [yolo] sections' iou_loss (mse when absent); mse; ciou
    box_loss: str = _kept("cfg", before="cfg", legacy=True)
    # [yolo] iou_thresh (None: the cfg's, DEFAULT_ANCHOR_IOU when it has none)
    anchor_iou: float | None = _kept(None, before=None, legacy=True)
    # [yolo] scale_x_y (None: the cfg's, DEFAULT_SCALE_XY when it has none); 2 also trains each
    # box's two nearest neighbour cells. A run resumed from before keeps its cfg's value
    scale_xy: float | None = _kept(None, before=None, legacy=True)
    # a positive cell's objectness target: iou (YOLOv5, the default since the setting exists)
    # or one (darknet: what every run file without the key trained with)
    objectness: str = _kept("iou", before="one", legacy=True)
    # the best epoch: fitness (0.1 mAP@0.5 + 0.9 mAP@[.5:.95]) or map50 (runs from before)
    best_by: str = _kept("fitness", before="map50", legacy=True)
    name: str = _kept("model", json=(str,))
    batch_events: int = 1  # report every n-th step (0: never)
    labels: Path | None = None  # label folder apart from the images (--labels)
    #: the fields the user gave (the CLI's flags); None: those that differ from the defaults.
    #: A resume keeps the run's own settings and refuses a given one that differs
    #: (workbench/train/resume.py); never written to the run file
    explicit: frozenset[str] | None = field(default=None, metadata={"session": True})

    def to_run_file(self) -> dict:
        """The run file's ``settings`` object: every field but ``explicit``, paths as text."""
        return {k: (str(v) if isinstance(v, Path) else v)
                for k, v in asdict(self).items() if k != "explicit"}

    @classmethod
    def from_run_file(cls, run: dict, **session: Any) -> TrainSettings:
        """The settings a run file records (a key it lacks: what runs from before that setting
        trained with, :func:`saved_setting`); ``session``: fields this session sets
        (``dataset``, ``strategy``, ...). Keys that are no field (``frozen_layers``) are
        left out."""
        values = {f.name: saved_setting(run, f.name) for f in fields(cls)
                  if f.name in run or "before" in f.metadata}
        for key in ("dataset", "weights", "out", "labels"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        values.pop("explicit", None)
        values.update(session)
        values.setdefault("dataset", Path("."))
        return cls(**values)


def default_settings(dataset: Path | str = ".") -> TrainSettings:
    return TrainSettings(dataset=Path(dataset))


#: settings a resumed run keeps from its run file: given again with another value, refused
KEPT = tuple(f.name for f in fields(TrainSettings) if f.metadata.get("kept"))

#: what a run file from before a setting existed trained with (the trainer reads the same)
LEGACY = {f.name: f.metadata["before"] for f in fields(TrainSettings) if "before" in f.metadata}

#: settings a resumed run reads back, and the JSON types each must have in the run file
RUN_SETTINGS: dict[str, tuple[type, ...]] = {
    f.name: f.metadata["json"] for f in fields(TrainSettings) if "json" in f.metadata}


def saved_setting(run: dict, key: str) -> Any:
    """A setting of the run file's ``settings``, or what runs from before it trained with."""
    return run.get(key, LEGACY.get(key))


def resolved_freeze_epochs(settings: TrainSettings) -> int:
    """``--freeze-epochs``, or with -1 (the default) AUTO_FREEZE_EPOCHS when starting from
    weights (at most a fifth of the run) and 0 without."""
    if settings.freeze_epochs >= 0:
        return settings.freeze_epochs
    return min(AUTO_FREEZE_EPOCHS, settings.epochs // 5) if settings.weights else 0


def resolved_close_mosaic(settings: TrainSettings) -> int:
    """How many of the last epochs train without mosaic: ``--close-mosaic``, or with -1 (the
    default) a sixth of the run (at least 1 when the run has 3 epochs or more)."""
    if not settings.mosaic:
        return settings.epochs
    if settings.close_mosaic >= 0:
        return settings.close_mosaic
    return max(int(settings.epochs * AUTO_CLOSE_MOSAIC), 1 if settings.epochs >= 3 else 0)
