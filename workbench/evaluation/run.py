"""``workbench eval``'s service: labels on disk against predictions on disk, in one call.

:func:`evaluate_folder` reads the ground truth (a dataset folder or a COCO JSON), the
predictions (a folder ``workbench detect --out`` wrote, in any of its formats, or a COCO
results JSON), evaluates them (:func:`workbench.evaluation.report.evaluate_truth`) and, when
asked, writes the plots. What it has to tell the user on the way (the prediction format it
recognised, the warnings, the plots written) goes to a ``say`` callback as it happens, so a
caller shows it where it belongs (the CLI: stderr, prefixed with ``workbench eval:``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.detect.config import DEFAULT_CONF
from workbench.errors import WorkbenchError
from workbench.evaluation.plots import write_evaluation_plots
from workbench.evaluation.report import Report, evaluate_truth
from workbench.evaluation.sources import load_truth, read_predictions


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: ``gt`` and ``pred`` as the user named them (messages quote them)."""

    gt: str | Path
    pred: str | Path
    iou: float = 0.5
    metric: str = "voc"           # voc (all-point AP), voc07 (11-point) or coco
    conf: float = DEFAULT_CONF    # the confusion matrix's confidence threshold
    split: str = "all"
    labels: str | None = None     # the label folder, when not where the layout puts it
    plots: str | Path | None = None  # write pr_curves.png, confusion_matrix.png, curves.json


@dataclass(frozen=True)
class EvalOutcome:
    """The report, the prediction format read ("yolo", "coco", "csv", "voc" for a folder,
    "coco results" for a file) and the plot files written (none unless asked)."""

    report: Report
    pred_format: str
    plots: list[Path] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return self.report.class_names

    def to_dict(self, confusion: bool = False) -> dict[str, Any]:
        """The JSON object ``workbench eval --json`` prints (the confusion matrix with
        ``confusion``)."""
        report, names = self.report, self.report.class_names
        out = report.result.to_dict(names)
        out["images"] = report.n_images
        if confusion:
            matrix = report.matrix
            out["confusion"] = {"rows": matrix.row_labels(names),
                                "columns": matrix.column_labels(names),
                                "counts": matrix.counts.tolist(), "conf": matrix.conf_threshold}
        return out


def _silent(_: str) -> None:
    pass


def evaluate_folder(request: EvalRequest,
                    say: Callable[[str], None] | None = None) -> EvalOutcome:
    """Evaluate ``request.pred`` against ``request.gt``; WorkbenchError for a GT without a
    class list, predictions that do not pair with it, or an unreadable input."""
    say = say or _silent
    gt, pred_path = Path(request.gt), Path(request.pred)
    truth = load_truth(gt, request.split, request.labels)
    if not truth.class_names:
        raise WorkbenchError(f"{request.gt}: no class list (classes.txt, obj.names or "
                             "categories)")
    pred, notes, kind = read_predictions(pred_path, truth)
    if pred_path.is_dir():  # detect writes four formats: say which one was read
        say(f"predictions: {request.pred} (detect's {kind} output)")
    report = evaluate_truth(truth, pred, iou=request.iou, metric=request.metric,
                            conf=request.conf, notes=notes)
    for note in report.notes:
        say(f"warning: {note}")
    written: list[Path] = []
    if request.plots:
        written = write_evaluation_plots(report, Path(request.plots))
        say(f"plots written: {', '.join(str(p) for p in written)}")
    return EvalOutcome(report, kind, written)
