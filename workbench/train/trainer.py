"""One training run as a sequence of steps: ``Trainer(settings, reporter, stop).run()``.

The steps, each a method: :meth:`Trainer.build_data` (records, the run folder prepared or read
back, the input examples), :meth:`Trainer.build_model` (Keras model, optimizer, weight average,
checkpoints), :meth:`Trainer.load_weights` (the checkpoint of a resumed run, or darknet start
weights), :meth:`Trainer.set_frozen` (freeze or unfreeze what the start weights cover),
:meth:`Trainer.run_epoch`, :meth:`Trainer.validate`, :meth:`Trainer.end_epoch` (best epoch,
metrics, checkpoints), :meth:`Trainer.checkpoint`, :meth:`Trainer.export` and
:meth:`Trainer.finish`. Each reports typed events (``workbench/train/events.py``) to the
reporter: the JSON lines of ``--json``, the lines for people, or a test's recorder.

TensorFlow is imported inside the methods that use it (and the loss module, which imports it),
so importing this module does not load it: the CLI imports it after its checks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.darknet.cfg import DarknetCfg
from workbench.darknet.weights import conv_layer_sizes, read_weights_for_transfer
from workbench.errors import WorkbenchError
from workbench.network.darknet_io import export_bundle, load_darknet_weights
from workbench.network.keras_model import (
    build_model,
    heads_info,
    init_head_priors,
    run_heads,
    set_trainable_prefix,
)
from workbench.train import events as ev
from workbench.train import prepare
from workbench.train.checkpoints import restore_checkpoint, save_checkpoint
from workbench.train.data import examples_from_records, make_dataset
from workbench.train.ema import WeightAverage
from workbench.train.multiworker import (
    is_chief,
    remove_scratch,
    sync_batch_norm,
    weights_digest,
    write_dir,
)
from workbench.train.precision import keras_policy, resolve_precision
from workbench.train.protocol import Reporter, draw_metrics_png, write_metrics_csv
from workbench.train.recipe import ImageRecipe
from workbench.train.settings import TrainSettings
from workbench.train.stop import StopFlag
from workbench.train.strategy import make_strategy
from workbench.train.timing import EtaClock
from workbench.train.validation import calibrate, epoch_score, finite_or_none, validate_bundle

LOSS_PARTS = ("box", "obj", "cls", "total")


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


@dataclass
class EpochStats:
    """An epoch's training steps: loss sums, step count and seconds."""

    sums: dict[str, float]
    count: int
    train_seconds: float
    started: float  # perf_counter at the epoch's start
    interrupted: bool = False


def frozen_layers_for(cfg: DarknetCfg, loaded: list[int]) -> int:
    """How many leading darknet layers the freeze phase holds: what the start weights cover,
    never past the first head's convolution (the heads always train)."""
    if not loaded:
        return 0
    first_head = cfg.yolo_layers()[0] - 1
    return min(max(loaded) + 1, first_head)


class Trainer:
    """One run (module docstring). ``run()`` does every step in order and returns the
    TrainResult; SIGINT/SIGTERM (``stop``) end it with a checkpoint."""

    def __init__(self, settings: TrainSettings, reporter: Reporter | None = None,
                 stop: StopFlag | None = None) -> None:
        self.settings = settings
        self.reporter = reporter or Reporter()
        self.stop = stop or StopFlag()
        self.metrics: list[dict] = []
        self._step_fn: Callable[..., dict[str, Any]] | None = None
        self._frozen_now: bool | None = None

    # --- the run -----------------------------------------------------------------------
    def run(self) -> TrainResult:
        self.build_data()
        self.build_model()
        self.load_weights()
        self.report_start()
        self.stop.install()
        try:
            if self.stop.is_set():  # signalled during start-up: keep the model built so far
                if not self.resumed:
                    self.checkpoint("interrupt")
                return self.finish("interrupted")
            while self.count("epoch") < self.epochs:
                status = self.train_epoch()
                if status is not None:
                    return self.finish(status)
            return self.finish("finished")
        finally:
            self.stop.uninstall()

    def train_epoch(self) -> str | None:
        """One epoch: steps, validation, checkpoints. The status the run ends with, or None
        to go on."""
        epoch = self.count("epoch")
        frozen = self.is_frozen(epoch)
        self.set_frozen(frozen)
        stats = self.run_epoch(epoch, frozen)
        if stats.interrupted:
            return "interrupted"
        self.state["epoch"].assign(epoch + 1)
        self.state["batch_in_epoch"].assign(0)
        val_map, val_map95 = self.validate()
        self.end_epoch(epoch, frozen, stats, val_map, val_map95)
        # early stopping waits for the learning rate's decay: before it, a plateau is
        # the high-rate phase, not the end of learning
        if (self.run_settings.patience and self.count("bad_epochs") >= self.run_settings.patience
                and self.count("step") >= self.schedule.decay_step()):
            return "early_stopped"
        return "interrupted" if self.stop.is_set() else None

    # --- data ---------------------------------------------------------------------------
    def build_data(self) -> None:
        """Records (undecodable images left out), the strategy, the run prepared (fresh or
        read back), the examples and the global batch."""
        settings = self.settings
        names, train_records, valid_records = prepare.load_records(settings)
        train_records, valid_records, self.skipped = prepare.drop_undecodable(
            settings, train_records, valid_records)
        self.class_names, self.train_records, self.valid_records = (names, train_records,
                                                                    valid_records)
        self.strategy = make_strategy(settings.strategy)
        run = prepare.prepare_run(settings, names, train_records,
                                  is_chief(self.strategy))  # chief: writes RUN_DIR
        self.run_dir, self.cfg, self.schedule, self.config, self.plan = (
            run.run_dir, run.cfg, run.schedule, run.config, run.plan)
        self.resumed = self.plan is not None
        self.out_dir = write_dir(self.run_dir, self.strategy)  # or a non-chief's scratch folder
        # a resumed run keeps its own geometry, seed and augmentation: the run file's settings
        self.run_settings = TrainSettings.from_run_file(
            self.config["settings"], dataset=settings.dataset, strategy=settings.strategy)
        self.epochs = self.run_settings.epochs  # a resumed run's own (--epochs moved it)
        self.heads = heads_info(self.cfg)
        self.replicas = self.strategy.num_replicas_in_sync
        replicas = self.replicas
        self.batch = max(min(self.run_settings.batch, len(train_records)) // replicas,
                         1) * replicas
        num_classes = len(names)
        self.train_ex = examples_from_records(train_records, num_classes)
        self.valid_ex = examples_from_records(valid_records, num_classes) if valid_records \
            else None
        self.steps_per_epoch = len(train_records) // self.batch
        self.images = ImageRecipe.of(self.cfg, self.run_settings)

    # --- model ---------------------------------------------------------------------------
    def build_model(self) -> None:
        """The model, optimizer, step counters, weight average and checkpoint managers."""
        import tensorflow as tf  # lazy: the CLI and the window start without TensorFlow

        precision = resolve_precision(self.run_settings.precision,
                                      bool(tf.config.list_logical_devices("GPU")))
        # the run file records what ran, not "auto": resumed on a machine where auto means
        # something else (a GPU: float16 and a loss-scaling optimizer), the run stays itself
        self.config["settings"]["precision"] = self.run_settings.precision = precision
        self.precision = precision
        with self.strategy.scope():
            self.model = build_model(self.cfg, self.cfg.width, self.cfg.height,
                                     dtype=keras_policy(precision),
                                     also_sizes=self.images.other_sizes)
            if self.settings.strategy == "multiworker":
                sync_batch_norm(self.model)  # else each worker's moving statistics drift apart
            self.optimizer = self._optimizer()
            self.state = {k: tf.Variable(0, dtype=tf.int64, trainable=False, name=k)
                          for k in ("step", "epoch", "batch_in_epoch", "best_epoch",
                                    "bad_epochs")}
            # the best epoch's --best-by score (mAP@0.5 in runs from before --best-by); saved
            # under its old name "best_map" so those runs resume
            self.best_score = tf.Variable(-1.0, dtype=tf.float64, trainable=False,
                                          name="best_map")
        # outside the strategy's scope: plain variables, updated in the step's cross-replica
        # part (mirrored ones assigned there hang a MirroredStrategy on CPU devices)
        self.ema_decay = float(self.run_settings.ema or 0.0)
        self.average = (WeightAverage(self.model.trainable_variables, self.ema_decay)
                        if self.ema_decay > 0 else None)
        extra = {"weight_average": self.average.module} if self.average is not None else {}
        self.tf_checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                                 best_map=self.best_score, **extra,
                                                 **self.state)
        self.manager = tf.train.CheckpointManager(self.tf_checkpoint,
                                                  self.out_dir / "checkpoints", max_to_keep=2)
        self.best_manager = tf.train.CheckpointManager(self.tf_checkpoint, self.out_dir / "best",
                                                       max_to_keep=1)

    def _optimizer(self):
        import keras  # lazy: Keras loads TensorFlow

        if self.run_settings.optimizer == "sgd":
            momentum = self.cfg.net.get_float("momentum", 0.9)
            optimizer = keras.optimizers.SGD(self.schedule.rate(0), momentum=momentum)
        else:
            optimizer = keras.optimizers.Adam(self.schedule.rate(0))
        if self.precision == "float16":  # float16 gradients underflow without loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        # built on every variable up front: unfreezing later must find their slots
        optimizer.build(self.model.trainable_variables)
        return optimizer

    def load_weights(self) -> None:
        """A resumed run's checkpoint; or the darknet start weights (``--weights``) and the
        head priors. Then the run file, with what the freeze phase holds."""
        loaded: list[int] = []
        self.weights_note = None
        if self.plan is not None:
            restore_checkpoint(self.tf_checkpoint, self.plan.saved.checkpoint)
        else:
            if self.run_settings.weights:
                transfer = read_weights_for_transfer(self.run_settings.weights, self.cfg)
                load_darknet_weights(self.model, self.cfg, transfer.weights)
                loaded = sorted(transfer.weights.layers)
                self.weights_note = transfer.summary(len(self.class_names))
            # heads the file does not cover start from the priors, not from objectness 0.5
            init_head_priors(self.model, self.cfg, self.heads,
                             [i for i, *_ in conv_layer_sizes(self.cfg) if i not in loaded])
            if self.average is not None:  # the average starts from the start weights
                for shadow, v in zip(self.average.shadows, self.average.variables, strict=True):
                    shadow.assign(v)
        run = self.config["settings"]
        self.frozen_layers = (run.get("frozen_layers", 0) if self.resumed
                              else frozen_layers_for(self.cfg, loaded))
        run["frozen_layers"] = self.frozen_layers
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # a resume writes its run file only when --epochs moved the end, and only now that
        # the checkpoint restored: a refused resume leaves the folder as it was
        if self.plan is None or self.plan.changed:
            prepare.write_run_file(self.out_dir, self.config)
        metrics = self.plan.saved.metrics if self.plan is not None else []
        self.metrics = [m for m in metrics if m["epoch"] <= self.count("epoch")]
        self.clock = EtaClock(self.epochs, self.steps_per_epoch, self.is_frozen)

    def report_start(self) -> None:
        run = self.run_settings
        self.reporter.report(ev.Started(
            run_dir=str(self.run_dir), dataset=str(self.settings.dataset),
            template=run.template, classes=self.class_names, width=self.cfg.width,
            height=self.cfg.height, epochs=self.epochs, start_epoch=self.count("epoch") + 1,
            step=self.count("step"), steps_per_epoch=self.steps_per_epoch, batch=self.batch,
            images_train=len(self.train_records), images_valid=len(self.valid_records),
            strategy=self.settings.strategy, replicas=self.replicas, resumed=self.resumed,
            optimizer=run.optimizer, lr=self.schedule.lr, policy=self.schedule.policy,
            freeze_epochs=run.freeze_epochs, frozen_layers=self.frozen_layers,
            skipped_images=self.skipped, precision=self.precision, ema=self.ema_decay,
            weights_report=self.weights_note, anchors_report=self.config.get("anchors_note"),
            resume_note=self.plan.note if self.plan is not None else None))

    # --- freezing and the step ------------------------------------------------------------
    def is_frozen(self, epoch: int) -> bool:
        return self.frozen_layers > 0 and epoch < self.run_settings.freeze_epochs

    def set_frozen(self, frozen: bool) -> None:
        """Freeze (or unfreeze) the layers the start weights cover; a new step function for
        the new set of trainable variables."""
        if frozen == self._frozen_now:
            return
        set_trainable_prefix(self.model, self.cfg, self.frozen_layers, not frozen)
        self._step_fn, self._frozen_now = self._make_step(), frozen

    def _make_step(self):
        import tensorflow as tf  # lazy: the CLI and the window start without TensorFlow

        from workbench.train.loss import yolo_loss  # imports TensorFlow

        model, optimizer, strategy, average = (self.model, self.optimizer, self.strategy,
                                               self.average)
        variables = model.trainable_variables
        heads, replicas = self.heads, self.replicas
        objectness = self.run_settings.objectness

        def replica_step(images, boxes, classes):
            # traced once per input size (multi-scale): the size is static in each trace,
            # unless a strategy hands over a relaxed shape
            height, width = (images.shape[1], images.shape[2]) if images.shape[1:3].is_fully_defined() \
                else tuple(tf.cast(tf.shape(images)[k], tf.float32) for k in (1, 2))
            with tf.GradientTape() as tape:
                parts = yolo_loss(run_heads(model, images, training=True), boxes, classes, heads,
                                  width, height, objectness=objectness)
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

    # --- an epoch --------------------------------------------------------------------------
    def count(self, key: str) -> int:
        """A step counter of the checkpoint: step, epoch, batch_in_epoch, best_epoch, ..."""
        return int(self.state[key].numpy())

    def run_epoch(self, epoch: int, frozen: bool) -> EpochStats:
        """The epoch's training steps (from where a resumed run stopped within it); a stop
        request saves an ``interrupt`` checkpoint and ends it early."""
        skip = self.count("batch_in_epoch")
        images = self.images
        ds = make_dataset(self.train_ex, self.cfg.width, self.cfg.height, self.batch,
                          augment=images.augment, seed=self.run_settings.seed, epoch=epoch,
                          shuffle=True, drop_remainder=True, skip_batches=skip,
                          mosaic=images.mosaic_for(epoch, self.epochs),
                          multiscale=images.multiscale, copy_paste=images.copy_paste)
        stats = EpochStats(dict.fromkeys(LOSS_PARTS, 0.0), 0, 0.0, time.perf_counter())
        for images, boxes, classes in self.strategy.experimental_distribute_dataset(ds):
            parts, seconds = self._step(images, boxes, classes)
            stats.train_seconds += seconds
            if stats.count > 0:  # the first step of a phase includes tracing
                self.clock.step_took(frozen, seconds)
            self.state["step"].assign_add(1)
            self.state["batch_in_epoch"].assign_add(1)
            stats.count += 1
            for k in stats.sums:
                stats.sums[k] += parts[k]
            self._report_step(epoch, frozen, parts, seconds)
            if self.stop.is_set():
                self.checkpoint("interrupt")
                stats.interrupted = True
                break
        return stats

    def _step(self, images, boxes, classes) -> tuple[dict[str, float], float]:
        """One training step: (its loss parts, its seconds)."""
        t0 = time.perf_counter()
        step = self.count("step")
        self.optimizer.learning_rate = self.schedule.rate(step)
        if self._step_fn is None:
            raise RuntimeError("a training step before set_frozen made the step function")
        parts = {k: float(v) for k, v in self._step_fn(images, boxes, classes).items()}
        if not np.isfinite(parts["total"]):
            raise WorkbenchError(f"the loss became {parts['total']} at step {step + 1}; "
                                 "try a lower --lr")
        return parts, time.perf_counter() - t0

    def _report_step(self, epoch: int, frozen: bool, parts: dict, seconds: float) -> None:
        in_epoch = self.count("batch_in_epoch")
        every = self.settings.batch_events
        if not every or in_epoch % every:
            return
        step = self.count("step")
        recent = self.clock.recent_step(frozen, seconds)
        self.reporter.report(ev.StepProgress(
            epoch=epoch + 1, batch=in_epoch, step=step, box=parts["box"], obj=parts["obj"],
            cls=parts["cls"], loss=parts["total"], lr=self.schedule.rate(step - 1),
            images_per_s=self.batch / max(recent, 1e-9), eta_s=self.clock.eta(epoch, in_epoch)))

    def validate(self) -> tuple[float | None, float | None]:
        """(mAP@0.5, mAP@[.5:.95]) of this epoch's model (None without validation images): the
        (averaged) weights exported as a bundle and scored as detect + eval would."""
        if self.valid_ex is None:
            return None, None
        started = time.perf_counter()
        candidate = self.out_dir / "last"
        self.export(candidate)
        val_map, val_map95, _, _ = self._scored(candidate, "validating")
        self.clock.validation_took(time.perf_counter() - started)
        return val_map, val_map95

    def _scored(self, folder: Path, label: str, merge_boxes: bool = False):
        """validate_bundle on the validation images, its progress drawn for people."""
        with self.reporter.progress(label, len(self.valid_records), "images") as bar:
            return validate_bundle(folder, self.valid_records, len(self.class_names),
                                   progress=bar.update, merge_boxes=merge_boxes)

    def end_epoch(self, epoch: int, frozen: bool, stats: EpochStats, val_map: float | None,
                  val_map95: float | None) -> None:
        """The best epoch so far, the metrics files and the ``epoch`` event, the best model's
        checkpoint and bundle when this epoch is better, the epoch's checkpoint."""
        # runs from before --best-by chose by mAP@0.5, and their stored best is one
        score = epoch_score(val_map, val_map95, self.run_settings.best_by)
        val_map, val_map95 = finite_or_none(val_map), finite_or_none(val_map95)
        improved = self.valid_ex is None or score > float(self.best_score.numpy())
        if improved:
            self.best_score.assign(score)
            self.state["best_epoch"].assign(epoch + 1)
            self.state["bad_epochs"].assign(0)
        else:
            self.state["bad_epochs"].assign_add(1)
        n, step = max(stats.count, 1), self.count("step")
        row = {"epoch": epoch + 1, "step": step, "loss": stats.sums["total"] / n,
               "box": stats.sums["box"] / n, "obj": stats.sums["obj"] / n,
               "cls": stats.sums["cls"] / n, "lr": self.schedule.rate(step - 1),
               "val_map50": val_map, "val_map50_95": val_map95,
               "images_per_s": stats.count * self.batch / max(stats.train_seconds, 1e-9),
               "seconds": time.perf_counter() - stats.started}
        self.metrics.append(row)
        write_metrics_csv(self.out_dir / "metrics.csv", self.metrics)
        draw_metrics_png(self.out_dir / "metrics.png", self.metrics)
        self.reporter.report(ev.EpochEnded(**row, **self.best_figures(),
                                           best_epoch=self.count("best_epoch"), frozen=frozen,
                                           eta_s=self.clock.eta(epoch + 1, 0)))
        if improved:
            path = save_checkpoint(self.best_manager, step)
            self.export(self.bundle_dir)
            self.reporter.report(ev.Checkpointed(
                kind="best", path=path, epoch=epoch + 1, step=step, bundle=str(self.bundle_dir),
                val_map50=val_map, val_map50_95=val_map95))
        self.checkpoint("epoch")

    def best_figures(self) -> dict[str, Any]:  # Any: spread into events' float fields
        """mAP@0.5 and mAP@[.5:.95] of the best epoch so far (None where not measured: no
        epoch yet, or no validation images)."""
        best = self.count("best_epoch")
        row = next((m for m in self.metrics if m["epoch"] == best), {})
        return {"best_map50": row.get("val_map50"), "best_map50_95": row.get("val_map50_95")}

    # --- checkpoints and bundles -----------------------------------------------------------
    @property
    def bundle_dir(self) -> Path:
        return self.out_dir / "bundle"

    def checkpoint(self, kind: str) -> str:
        """Save the run's state (``epoch`` or ``interrupt``); report it."""
        step = self.count("step")
        path = save_checkpoint(self.manager, step)
        self.reporter.report(ev.Checkpointed(kind=kind, path=path, epoch=self.count("epoch"),
                                             step=step))
        return path

    def export(self, folder: Path) -> None:
        """The weight average (when on) exported as a bundle; the live weights stay."""
        layers = sum(1 for _ in conv_layer_sizes(self.cfg))
        name = self.run_settings.name
        with self.reporter.progress("exporting", layers, "layers") as bar:
            if self.average is None:
                export_bundle(self.model, self.cfg, self.class_names, folder, name,
                              progress=bar.update)
                return
            with self.average.swapped():
                export_bundle(self.model, self.cfg, self.class_names, folder, name,
                              progress=bar.update)

    def calibrate(self) -> dict:
        """Score the best bundle's operating point on the validation images; store its best-F1
        confidence in the bundle when detect's default 0.25 would lose recall, and
        merge_boxes when merged boxes score better there (fitness)."""
        if self.valid_ex is None or not self.bundle_dir.is_dir():
            return {}
        plain = self._scored(self.bundle_dir, "scoring the best model")
        merged = self._scored(self.bundle_dir, "scoring it with merged boxes", merge_boxes=True)
        return calibrate(self.bundle_dir, plain, merged, len(self.valid_records))

    def finish(self, status: str) -> TrainResult:
        """The ``done`` event and the result; the last epoch's scratch bundle removed."""
        run_dir = self.run_dir
        best = self.best_figures()
        calibration = self.calibrate() if self.out_dir == run_dir else {}  # the chief's only
        # the last epoch's bundle was only there to be validated; the best one is `bundle`
        shutil.rmtree(self.out_dir / "last", ignore_errors=True)
        remove_scratch(run_dir, self.out_dir)
        bundle = run_dir / "bundle" if (run_dir / "bundle").is_dir() else None
        synced: dict[str, Any] = ({"weights_sha256": weights_digest(self.model)}
                  if self.settings.strategy == "multiworker" else {})
        self.reporter.report(ev.Finished(
            status=status, run_dir=str(run_dir), **synced,
            bundle=str(bundle) if bundle else None, **best,
            best_epoch=self.count("best_epoch"), epoch=self.count("epoch"),
            step=self.count("step"), metrics_csv=str(run_dir / "metrics.csv"),
            plot=str(run_dir / "metrics.png"), **calibration))
        return TrainResult(status, run_dir, bundle, best["best_map50"],
                           self.count("best_epoch"), self.count("epoch"), self.count("step"),
                           self.metrics)
