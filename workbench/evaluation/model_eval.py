"""``workbench eval --model``'s service: run a model on the labeled images, then score it.

:func:`evaluate_model` reads the ground truth (a dataset folder, one split of it), runs the
model over those images with every candidate above
:data:`~workbench.detect.config.MAP_CONF` (the PR curve needs the low ones; class-aware NMS
at :data:`~workbench.detect.config.DEFAULT_NMS`) through ``run_detection``, and evaluates the
detections as ``eval --pred`` evaluates a prediction folder. With ``tta`` it does so twice,
without and with test-time augmentation (``workbench.detect.tta``), and returns the two
scores apart: the plain figure and the TTA figure are never mixed.

The model's classes are paired with the labels' by name; detections of a class the labels do
not have are left out (said in a note), and a model sharing no class with them is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from workbench.darknet.bundle import find_bundle
from workbench.detect.config import (
    DEFAULT_CONF,
    DEFAULT_ENGINE,
    DEFAULT_NMS,
    DEFAULT_TTA_MERGE,
    MAP_CONF,
    DetectConfig,
)
from workbench.detect.detector import Detector
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.run import run_detection
from workbench.detect.tta import TtaDetector
from workbench.errors import WorkbenchError
from workbench.evaluation.inputs import Predictions, Truth
from workbench.evaluation.plots import write_evaluation_plots
from workbench.evaluation.report import evaluate_truth
from workbench.evaluation.run import EvalOutcome
from workbench.evaluation.sources import load_truth


@dataclass(frozen=True)
class ModelEvalRequest:
    """What to evaluate: the labels (``gt``, a dataset folder) against ``model`` (a bundle
    folder or "demo") run on them; ``tta`` adds the test-time augmented run."""

    gt: str | Path
    model: str | Path
    iou: float = 0.5
    metric: str = "voc"
    conf: float = DEFAULT_CONF    # the confusion matrix's confidence threshold
    split: str = "all"
    labels: str | None = None
    plots: str | Path | None = None  # with tta: DIR/plain and DIR/tta
    tta: bool = False
    tta_merge: str = DEFAULT_TTA_MERGE
    engine: str = DEFAULT_ENGINE


@dataclass(frozen=True)
class ModelRun:
    """One run of the model and its score: ``name`` "plain" or "tta", ``passes`` the run in
    words (the input sizes, the TTA merge), ``engine`` as ``detect`` prints it."""

    name: str
    outcome: EvalOutcome
    images: int
    seconds: float
    engine: str
    passes: str

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.images if self.images else 0.0


@dataclass
class _Collect:
    """A run_detection sink keeping each image's detections as Predictions in the labels'
    class ids (``to_truth`` maps the model's ids; -1: a class the labels lack)."""

    keys: dict[Path, str]
    to_truth: np.ndarray
    found: dict[str, Predictions] = field(default_factory=dict)

    def write(self, result: ImageResult) -> None:
        d = result.found
        ids = self.to_truth[d.class_ids]
        keep = ids >= 0
        self.found[self.keys[result.path]] = Predictions(d.boxes[keep], d.scores[keep],
                                                         ids[keep])

    def close(self, summary: RunSummary) -> None:
        pass

    def abort(self, error: BaseException) -> None:
        pass


def _silent(_: str) -> None:
    pass


def evaluate_model(request: ModelEvalRequest,
                   say: Callable[[str], None] | None = None) -> list[ModelRun]:
    """The plain run's score, then with ``request.tta`` the TTA run's; WorkbenchError for a
    GT that is no dataset folder, a model sharing no class with it, or unreadable inputs."""
    say = say or _silent
    gt = Path(request.gt)
    if not gt.is_dir():
        raise WorkbenchError(f"--gt {request.gt}: --model needs a dataset folder (the images "
                             "the model runs on)")
    truth = load_truth(gt, request.split, request.labels)
    if not truth.class_names:
        raise WorkbenchError(f"{request.gt}: no class list (classes.txt, obj.names or "
                             "categories)")
    bundle = find_bundle(request.model)
    config = DetectConfig(model=bundle, engine=request.engine, conf=MAP_CONF, nms=DEFAULT_NMS)
    plain = Detector.from_config(config)
    runs = [_run("plain", config, plain, truth, request, say, several=request.tta)]
    if request.tta:  # the TTA run's first pass is the plain detector, not a second load
        tta = replace(config, tta=True, tta_merge=request.tta_merge)
        runs.append(_run("tta", tta, TtaDetector.around(plain, tta), truth, request, say,
                         several=True))
    return runs


def _run(name: str, config: DetectConfig, detector: Detector, truth: Truth,
         request: ModelEvalRequest, say: Callable[[str], None], several: bool) -> ModelRun:
    """One detection run of ``detector`` over the GT's images, evaluated."""
    to_truth, notes = _class_map(detector.class_names, truth.class_names, request.model)
    keys = {truth.records[key].path: key for key in truth.records}
    collect = _Collect(keys, to_truth)
    summary = run_detection(config, list(keys), [collect], detector=detector)
    notes += [f"skipped (counts as detecting nothing): {error}" for error in summary.errors]
    report = evaluate_truth(truth, collect.found, iou=request.iou, metric=request.metric,
                            conf=request.conf, notes=notes)
    for note in report.notes:
        say(f"{name}: warning: {note}" if several else f"warning: {note}")
    written: list[Path] = []
    if request.plots:
        folder = Path(request.plots) / name if several else Path(request.plots)
        written = write_evaluation_plots(report, folder)
        say(f"plots written: {', '.join(str(p) for p in written)}")
    passes = getattr(detector, "describe", None)
    return ModelRun(name, EvalOutcome(report, "model", written), summary.images - summary.skipped,
                    summary.seconds, detector.backend.engine,
                    passes() if passes is not None else f"{detector.width}x{detector.height}")


def _class_map(model: list[str], gt: list[str], where: str | Path) -> tuple[np.ndarray, list[str]]:
    """The model's class ids as the labels' (-1: not in the labels), and a note when some
    model classes are left out; WorkbenchError when none is shared."""
    index = {n: i for i, n in enumerate(gt)}
    to_truth = np.array([index.get(n, -1) for n in model], np.int64)
    if not (to_truth >= 0).any():
        raise WorkbenchError(f"{where}: the model's classes ({', '.join(model[:5])}"
                             f"{', ...' if len(model) > 5 else ''}) share no name with the "
                             f"labels' ({', '.join(gt[:5])}{', ...' if len(gt) > 5 else ''})")
    left = [n for n in model if n not in index]
    notes = [f"{len(left)} model class(es) not in the labels' class list are left out: "
             f"{', '.join(left[:5])}{', ...' if len(left) > 5 else ''}"] if left else []
    return to_truth, notes
