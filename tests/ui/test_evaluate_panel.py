"""The Evaluate dock on the demo data with predictions of the demo model, written by the real
`workbench detect --out` into the data set's prediction-set folder: its numbers are the ones
`workbench eval` prints on the same files; a confusion cell lists its images; the error list
jumps to the image."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from tests.ui.conftest import wait_idle
from workbench.cli import main
from workbench.data.folder import open_dataset
from workbench.data.synth import make_demo_dataset
from workbench.evaluation.confusion import confusion_matrix
from workbench.evaluation.evaluate import GroundTruth
from workbench.evaluation.sources import load_predictions, truth_from_dataset


@pytest.fixture
def predicted(tmp_path: Path) -> tuple[Path, Path]:
    root = make_demo_dataset(tmp_path / "data", images=10, seed=11, size=192)
    out = root / ".predictions" / "demo-run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # a low threshold: false alarms and misses make a confusion matrix worth clicking
        assert main(["detect", str(root), "--model", "demo", "--conf", "0.05",
                     "--out", str(out)]) == 0
    return root, out


def cli_eval(root: Path, pred: Path, *extra: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["eval", "--gt", str(root), "--pred", str(pred), "--json", "--confusion",
                     *extra]) == 0
    return json.loads(out.getvalue())


def evaluate_in_window(w, qtbot, metric: str = "voc", conf: float = 0.25):
    panel = w.evaluator
    w.act["evaluate"].trigger()
    assert w.docks["evaluate"].isVisible()
    panel.metric_box.setCurrentIndex(panel.metric_box.findData(metric))
    panel.conf.setValue(conf)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, 20_000)
    assert panel.report is not None, panel.summary.text()
    return panel


def table_rows(panel) -> dict[str, list[str]]:
    t = panel.table
    return {t.item(r, 0).text(): [t.item(r, c).text() for c in range(1, t.columnCount())]
            for r in range(t.rowCount())}


@pytest.mark.parametrize("metric", ["voc", "coco"])
def test_numbers_are_the_cli_numbers(open_window, predicted, qtbot, metric):
    root, pred = predicted
    w = open_window(root)
    panel = w.evaluator
    assert panel.sets.currentText() == "demo-run"   # the data set's prediction sets are listed
    (root / ".predictions" / "later-run").mkdir()     # a set made while the window is open
    w.act["evaluate"].trigger()
    assert [panel.sets.itemText(i) for i in range(panel.sets.count())] == ["demo-run",
                                                                          "later-run"]
    assert panel.sets.currentText() == "demo-run"
    w.act["evaluate"].trigger()
    panel = evaluate_in_window(w, qtbot, metric=metric, conf=0.3)
    cli = cli_eval(root, pred, "--metric", metric, "--conf", "0.3")
    assert panel.report.result.to_dict(panel.report.class_names) == {
        k: v for k, v in cli.items() if k not in ("images", "confusion")}
    assert panel.report.matrix.counts.tolist() == cli["confusion"]["counts"]
    shown = table_rows(panel)
    assert set(shown) == set(cli["per_class"])
    for name, c in cli["per_class"].items():
        expected = [str(c["n_gt"]), str(c["n_pred"]),
                    *("-" if c[k] is None else f"{c[k]:.3f}" for k in ("ap", "precision",
                                                                       "recall")),
                    str(c["tp"]), str(c["fp"]), str(c["fn"])]
        assert shown[name] == expected
    assert f"mAP@0.5 {cli['map50']:.4f}" in panel.summary.text()
    assert f"mAP@[.5:.95] {cli['map50_95']:.4f}" in panel.summary.text()


def test_a_confusion_cell_click_lists_its_images_and_errors_jump(open_window, predicted, qtbot):
    root, pred = predicted
    w = open_window(root)
    panel = evaluate_in_window(w, qtbot, conf=0.25)
    panel.tabs.setCurrentIndex(2)
    qtbot.waitUntil(lambda: panel.confusion.canvas is not None
                    and bool(panel.confusion.figure.axes), timeout=5_000)
    counts = panel.report.matrix.counts
    k = counts.shape[0] - 1
    # the busiest cell off the diagonal (false alarms or misses: the demo model has both)
    cells = [(int(counts[t, p]), t, p) for t in range(k + 1) for p in range(k + 1) if t != p]
    n, true, predicted_class = max(cells)
    assert n > 0
    # an independent reference: each image's own confusion matrix
    dataset = open_dataset(root)
    truth = truth_from_dataset(dataset)
    preds, _ = load_predictions(pred, truth)
    expected = {}
    for name, record in truth.records.items():
        c = confusion_matrix({name: GroundTruth.from_boxes(record.boxes)},
                             {name: preds[name]} if name in preds else {}, k, conf_threshold=0.25)
        if c.counts[true, predicted_class]:
            expected[name] = int(c.counts[true, predicted_class])
    # a real click on the cell's centre in the matplotlib canvas
    canvas = panel.confusion.canvas
    canvas.draw()
    ax = panel.confusion.figure.axes[0]
    x, y = ax.transData.transform((predicted_class, true))
    ratio = canvas.device_pixel_ratio
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(x / ratio), int(canvas.height() - y / ratio)))
    listed = {panel.cell_images.item(i).data(Qt.ItemDataRole.UserRole + 1): i
              for i in range(panel.cell_images.count())}
    assert set(listed) == set(expected)
    # the images-by-errors list: worst first; a click shows that image
    errors = panel.errors
    assert errors.count() == len(truth.records)
    worst = errors.item(0).data(Qt.ItemDataRole.UserRole + 1)
    assert worst != dataset.relative_path(w.session.record).as_posix()
    panel.tabs.setCurrentIndex(3)
    qtbot.mouseClick(errors.viewport(), Qt.MouseButton.LeftButton,
                     pos=errors.visualItemRect(errors.item(0)).center())
    wait_idle(qtbot)
    assert w.session.dataset.relative_path(w.session.record).as_posix() == worst
    # with Inspect's picture: the image's predictions above the threshold as TP / FP, and
    # its missed objects as FN, exactly the counts the list shows
    tags = [text.split()[0] for _, _, text in w.canvas.overlay.kept]
    row = panel.report.images_by_errors()[0]
    assert (tags.count("TP"), tags.count("FP"), tags.count("FN")) == (row.tp, row.fp, row.fn)
    assert row.fp + row.fn > 0 and errors.item(0).text().split()[0] == str(row.fp + row.fn)
    # another image (the worst may be the last one): the picture belongs to its image
    assert w.next_image() or w.previous_image()
    assert w.session.dataset.relative_path(w.session.record).as_posix() != worst
    assert w.canvas.overlay.is_empty()
