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

The steps are the methods of ``workbench.train.trainer.Trainer``; the settings are
``workbench.train.settings.TrainSettings``; the events ``workbench.train.events``. This module
is the entry point and keeps the names callers import from it.
"""

from __future__ import annotations

from workbench.train import events as ev
from workbench.train.prepare import (
    load_records,
    preflight,
    resolve_template,
    run_dir_of,
)
from workbench.train.protocol import Reporter
from workbench.train.run_folder import default_run_dir, release_run_dirs
from workbench.train.settings import TEMPLATES, TrainSettings, resolved_freeze_epochs
from workbench.train.stop import StopFlag
from workbench.train.timing import UNFROZEN_STEP_COST
from workbench.train.trainer import Trainer, TrainResult
from workbench.train.validation import epoch_score, ground_truth, validate_bundle

__all__ = ["TEMPLATES", "UNFROZEN_STEP_COST", "StopFlag", "TrainResult", "TrainSettings",
           "Trainer", "default_run_dir", "epoch_score", "preflight", "resolve_template",
           "resolved_freeze_epochs", "train", "validate_bundle"]

# the names tests and scripts knew these by
_load_records = load_records
_ground_truth = ground_truth


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
            run_dir = run_dir_of(settings)
            reporter.report(ev.Finished(status="interrupted", run_dir=str(run_dir),
                                        bundle=None, best_map50=None, best_epoch=0, epoch=0,
                                        step=0))
            return TrainResult("interrupted", run_dir, None, None, 0, 0, 0, [])
        return Trainer(settings, reporter, stop).run()
    finally:
        release_run_dirs()  # the run folder is free for the next run (or a resume)
        stop.uninstall()
