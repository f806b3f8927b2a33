"""Plots with matplotlib: PR curves, the confusion matrix and the training curves.

Each ``draw_*`` function draws into a ``matplotlib.figure.Figure`` it is given, so the same
drawing goes to a PNG file (Agg, :func:`save_png`, no display needed) and into the window
(the Qt canvas of ``matplotlib.backends.backend_qtagg`` in ``ui/plot_canvas.py``).
matplotlib is imported inside the functions: the CLI and the GUI start without it.
No pyplot: its global figure state does not belong in a library or a GUI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.storage.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from workbench.evaluation.confusion import ConfusionMatrix
    from workbench.evaluation.evaluate import Evaluation
    from workbench.evaluation.report import Report

LOSS_PARTS = ("loss", "box", "obj", "cls")


def new_figure(width: float = 8.0, height: float = 6.0, dpi: int = 100) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def save_png(figure: Figure, path: str | Path) -> Path:
    """Render ``figure`` with Agg and write it atomically."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def draw_pr_curves(figure: Figure, result: Evaluation, class_names: list[str],
                   only: list[int] | None = None) -> None:
    """One precision-recall curve per class (``only``: these class ids), AP in the legend."""
    figure.clear()
    ax = figure.add_subplot()
    for k in sorted(result.per_class):
        if only is not None and k not in only:
            continue
        c = result.per_class[k]
        name = class_names[k] if k < len(class_names) else str(k)
        ap = f"{c.ap:.3f}" if _finite(c.ap) else "-"
        recall = [0.0, *c.curve.recall.tolist()]
        precision = [c.curve.precision[0] if len(c.curve.precision) else 0.0,
                     *c.curve.precision.tolist()]
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name}  AP {ap}")
        if c.tp or c.fp:  # the best-F1 operating point the table reports
            ax.plot([c.recall], [c.precision], "o", color=ax.lines[-1].get_color(), ms=4)
    title = f"PR curves at IoU {result.iou_threshold:g}"
    if _finite(result.map50):
        title += f", mAP@0.5 {result.map50:.3f}"
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(loc="lower left", fontsize="small")


def draw_confusion(figure: Figure, matrix: ConfusionMatrix, class_names: list[str]) -> None:
    """Counts, coloured by each row's share (rows: true class, columns: predicted)."""
    figure.clear()
    ax = figure.add_subplot()
    share = matrix.normalized()
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    rows, cols = matrix.row_labels(class_names), matrix.column_labels(class_names)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted", ylabel="true",
           title=f"confusion (IoU {matrix.iou_threshold:g}, conf ≥ {matrix.conf_threshold:g})")
    for (i, j), n in _cells(matrix.counts):
        ax.text(j, i, str(n), ha="center", va="center",
                color="white" if share[i, j] > 0.5 else "black", fontsize="small")


def _cells(counts: np.ndarray) -> Iterator[tuple[tuple[int, int], int]]:
    for i, row in enumerate(counts.tolist()):
        for j, n in enumerate(row):
            yield (i, j), n


def draw_training(figure: Figure, rows: list[dict[str, Any]]) -> None:
    """Loss parts per epoch (log scale, left) and validation mAP@0.5 and mAP@[.5:.95]
    (right)."""
    figure.clear()
    loss_ax, map_ax = figure.subplots(1, 2)
    for key in LOSS_PARTS:
        points = [(r["epoch"], r[key]) for r in rows
                  if _finite(r.get(key)) and r[key] > 0]
        if points:
            loss_ax.plot(*zip(*points, strict=True), marker="." if len(points) < 30 else None,
                         label=key, lw=2 if key == "loss" else 1)
    loss_ax.set(xlabel="epoch", title="loss")
    if loss_ax.lines:
        loss_ax.set_yscale("log")
        loss_ax.legend(fontsize="small")
    for key, label, color in (("val_map50", "mAP@0.5", "tab:purple"),
                              ("val_map50_95", "mAP@[.5:.95]", "tab:green")):
        points = [(r["epoch"], r[key]) for r in rows if _finite(r.get(key))]
        if points:
            map_ax.plot(*zip(*points, strict=True), marker=".", color=color, label=label)
    if map_ax.lines:
        map_ax.legend(fontsize="small")
    map_ax.set(xlabel="epoch", ylim=(0, 1), title="validation mAP")
    for ax in (loss_ax, map_ax):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)


def curves_dict(result: Evaluation, class_names: list[str]) -> dict[str, Any]:
    """The PR curve of every class as JSON-ready lists (what pr_curves.png draws)."""
    classes = {}
    for k in sorted(result.per_class):
        c = result.per_class[k]
        classes[class_names[k] if k < len(class_names) else str(k)] = {
            "class_id": k, "ap": c.ap if _finite(c.ap) else None, "n_gt": c.n_gt,
            "scores": c.curve.scores.tolist(), "precision": c.curve.precision.tolist(),
            "recall": c.curve.recall.tolist()}
    return {"metric": result.metric, "iou_threshold": result.iou_threshold,
            "map50": result.map50 if _finite(result.map50) else None, "classes": classes}


def write_evaluation_plots(report: Report, folder: Path) -> list[Path]:
    """``pr_curves.png``, ``confusion_matrix.png`` and ``curves.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = report.class_names
    pr = new_figure(8, 6)
    draw_pr_curves(pr, report.result, names)
    size = 3.0 + 0.6 * len(names)
    confusion = new_figure(size + 1.0, size)
    draw_confusion(confusion, report.matrix, names)
    curves = folder / "curves.json"
    atomic_write_text(curves, json.dumps(curves_dict(report.result, names), indent=1) + "\n")
    return [save_png(pr, folder / "pr_curves.png"),
            save_png(confusion, folder / "confusion_matrix.png"), curves]


def write_training_plot(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """The training run's ``metrics.png``."""
    figure = new_figure(8, 3.6)  # 800 x 360 px
    draw_training(figure, rows)
    return save_png(figure, path)
