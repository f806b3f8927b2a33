"""`workbench eval --plots`, the per-image confusion entries and the matplotlib plots."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_eval_cli import write_predictions
from workbench.cli import main
from workbench.data.folder import open_dataset
from workbench.data.synth import make_demo_dataset
from workbench.evaluation.confusion import confusion_entries, confusion_matrix
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate
from workbench.evaluation.report import evaluate_prediction_set
from workbench.evaluation.sources import load_predictions, truth_from_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("gt") / "shapes", images=14, size=160,
                             seed=7)


def _inputs(dataset: Path, pred: Path):
    truth = truth_from_dataset(open_dataset(dataset))
    preds, _ = load_predictions(pred, truth)
    gt = {k: GroundTruth.from_boxes(r.boxes) for k, r in truth.records.items()}
    return truth, gt, preds


def _matplotlib_png(path: Path) -> bool:
    return Image.open(path).info.get("Software", "").startswith("Matplotlib")


def test_confusion_entries_are_the_matrix_image_by_image(dataset, tmp_path):
    truth, gt, preds = _inputs(dataset, write_predictions(dataset, tmp_path / "p", seed=3))
    k = len(truth.class_names)
    entries = confusion_entries(gt, preds, k, conf_threshold=0.3)
    total = np.zeros((k + 1, k + 1), np.int64)
    np.add.at(total, (entries.true, entries.predicted), 1)
    assert (total == confusion_matrix(gt, preds, k, conf_threshold=0.3).counts).all()
    # each cell's images, against the matrix of each image alone (matching is per image)
    alone = {name: confusion_matrix({name: gt[name]}, {name: preds[name]} if name in preds
                                    else {}, k, conf_threshold=0.3).counts for name in gt}
    for t in range(k + 1):
        for p in range(k + 1):
            expected = {n: int(c[t, p]) for n, c in alone.items() if c[t, p]}
            assert entries.images_of(t, p) == expected
    assert sum(total[k, :]) > 0 and sum(total[:, k]) > 0  # the data has errors to find


def test_images_by_errors_are_each_image_evaluated_above_the_threshold(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "p", seed=5)
    report = evaluate_prediction_set(open_dataset(dataset), pred, conf=0.3)
    truth, gt, preds = _inputs(dataset, pred)
    k = len(truth.class_names)
    rows = report.images_by_errors()
    assert [r.errors for r in rows] == sorted((r.errors for r in rows), reverse=True)
    assert rows[0].errors > 0 and len(rows) == len(gt)
    for row in rows:
        # the reference: the image alone, its predictions below the threshold dropped
        p = preds[row.name]
        keep = p.scores >= 0.3
        alone = evaluate({row.name: gt[row.name]}, {row.name: Predictions(
            p.boxes[keep], p.scores[keep], p.class_ids[keep])}, k).per_image[row.name]
        assert (row.tp, row.fp, row.fn) == (alone.tp, alone.fp, alone.fn)
        outcome = report.outcome(row.name)
        assert len(outcome.pred_scores) == int(keep.sum())
        assert len(outcome.missed_classes) == alone.fn


def test_eval_plots_writes_pngs_and_the_curves(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "p", seed=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["eval", "--gt", str(dataset), "--pred", str(pred), "--json",
                     "--plots", str(tmp_path / "plots")])
    assert code == 0
    for name in ("pr_curves.png", "confusion_matrix.png"):
        image = Image.open(tmp_path / "plots" / name)
        assert image.size[0] > 300 and _matplotlib_png(tmp_path / "plots" / name)
    curves = json.loads((tmp_path / "plots" / "curves.json").read_text())
    truth, gt, preds = _inputs(dataset, pred)
    api = evaluate(gt, preds, len(truth.class_names))
    assert curves["map50"] == pytest.approx(json.loads(out.getvalue())["map50"])
    for k, c in api.per_class.items():
        saved = curves["classes"][truth.class_names[k]]
        np.testing.assert_allclose(saved["precision"], c.curve.precision)
        np.testing.assert_allclose(saved["recall"], c.curve.recall)
        np.testing.assert_allclose(saved["scores"], c.curve.scores)


def test_pr_figure_draws_each_class_curve(dataset, tmp_path):
    from workbench.evaluation.plots import draw_pr_curves, new_figure

    report = evaluate_prediction_set(open_dataset(dataset),
                                     write_predictions(dataset, tmp_path / "p", seed=2))
    figure = new_figure()
    draw_pr_curves(figure, report.result, report.class_names)
    curves = [line for line in figure.axes[0].lines if line.get_drawstyle() == "steps-post"]
    assert len(curves) == len(report.result.per_class)
    for line, k in zip(curves, sorted(report.result.per_class), strict=True):
        np.testing.assert_allclose(line.get_xdata()[1:], report.result.per_class[k].curve.recall)


def test_training_plot_is_matplotlib_with_the_rows(tmp_path):
    from workbench.evaluation.plots import draw_training, new_figure
    from workbench.train.protocol import draw_metrics_png

    rows = [{"epoch": e, "loss": 10.0 / e, "box": 4.0 / e, "obj": 3.0 / e, "cls": 1.0 / e,
             "val_map50": 0.1 * e} for e in range(1, 6)]
    draw_metrics_png(tmp_path / "metrics.png", rows)
    assert Image.open(tmp_path / "metrics.png").size == (800, 360)
    assert _matplotlib_png(tmp_path / "metrics.png")
    figure = new_figure()
    draw_training(figure, rows)
    loss_ax, map_ax = figure.axes
    assert loss_ax.get_yscale() == "log"
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [r["loss"] for r in rows])
    np.testing.assert_allclose(map_ax.lines[0].get_ydata(), [r["val_map50"] for r in rows])


def test_matplotlib_loads_only_when_a_plot_is_drawn(tmp_path):
    """The window and the CLI start without it: the CLI parser, the core modules that plot,
    and a whole main window (Train and Evaluate docks hidden)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ui import settings\n"
        f"settings.use_file({str(tmp_path / 's.ini')!r})\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from workbench.cli import build_parser; build_parser()\n"
        "import workbench.evaluation.plots, workbench.evaluation.report, workbench.train.protocol\n"
        "from ui.main_window import MainWindow\n"
        "w = MainWindow(); w.show(); app.processEvents()\n"
        "print('matplotlib' in sys.modules)\n"
        "w.docks['train'].show(); w.docks['train'].raise_(); w.trainer.plot.set_rows([])\n"
        "app.processEvents()\n"
        "print('matplotlib' in sys.modules)\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
