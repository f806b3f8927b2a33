"""The evaluation as text: the per-class table and the confusion grid ``workbench eval``
prints."""

from __future__ import annotations

import math

from workbench.evaluation.confusion import ConfusionMatrix
from workbench.evaluation.evaluate import Evaluation


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_table(result: Evaluation, class_names: list[str], n_images: int) -> str:
    """The per-class table and the means, as printed by ``workbench eval``."""
    width = max([5, *(len(n) for n in class_names)])
    ap_name = {"voc": f"AP@{result.iou_threshold:g}", "voc07": f"AP07@{result.iou_threshold:g}",
               "coco": "AP@.5:.95"}[result.metric]
    head = (f"{'class':<{width}}  {'GT':>6} {'pred':>7} {ap_name:>10} {'P':>6} {'R':>6} "
            f"{'conf':>6} {'TP':>6} {'FP':>6} {'FN':>6}")
    lines = [head, "-" * len(head)]
    for k in sorted(result.per_class):
        c = result.per_class[k]
        name = class_names[k] if k < len(class_names) else str(k)
        lines.append(f"{name:<{width}}  {c.n_gt:>6} {c.n_pred:>7} {_cell(c.ap):>10} "
                     f"{_cell(c.precision):>6} {_cell(c.recall):>6} {_cell(c.conf, 2):>6} "
                     f"{c.tp:>6} {c.fp:>6} {c.fn:>6}")
    lines.append("-" * len(head))
    lines.append(f"{'all':<{width}}  {sum(c.n_gt for c in result.per_class.values()):>6} "
                 f"{sum(c.n_pred for c in result.per_class.values()):>7} "
                 f"{_cell(result.map):>10} {'':>6} {'':>6} {'':>6} "
                 f"{result.tp:>6} {result.fp:>6} {result.fn:>6}")
    lines.append("")
    lines.append(f"{n_images} images, metric {result.metric}: mAP@0.5 {_cell(result.map50, 4)}"
                 f"  mAP@0.75 {_cell(result.map75, 4)}  mAP@[.5:.95] "
                 f"{_cell(result.map50_95, 4)}")
    lines.append("P, R, TP, FP, FN at each class's best-F1 confidence (conf), "
                 f"IoU {result.iou_threshold:g}")
    return "\n".join(lines)


def format_confusion(matrix: ConfusionMatrix, class_names: list[str]) -> str:
    """The confusion matrix as a text grid: rows true class, columns predicted class."""
    rows = matrix.row_labels(class_names)
    cols = matrix.column_labels(class_names)
    width = max(len(n) for n in rows + cols) + 1
    lines = [f"confusion at IoU {matrix.iou_threshold:g}, conf {matrix.conf_threshold:g} "
             "(rows: true, columns: predicted)",
             " " * width + "".join(f"{c:>{width}}" for c in cols)]
    for name, counts in zip(rows, matrix.counts.tolist(), strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in counts))
    return "\n".join(lines)
