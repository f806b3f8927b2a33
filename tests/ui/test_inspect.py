"""The Inspect dock with the bundled demo model on the demo data: candidates once per image,
NMS re-run live exactly as workbench.geometry.nms, the table's decisions, the overlay, labels untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import wait_idle
from workbench.data.images import load_bgr
from workbench.detect.detector import Detector
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate
from workbench.geometry.nms import Decision, batched_nms, diou_nms, nms, soft_nms


@pytest.fixture(scope="module")
def demo_detector() -> Detector:
    return Detector("demo")


def label_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.suffix in (".txt", ".xml")}


def show_inspect(w, qtbot):
    qtbot.keyClick(w.canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert w.docks["inspect"].isVisible()
    wait_idle(qtbot, 30_000)
    panel = w.inspector
    qtbot.waitUntil(lambda: panel.trace is not None, timeout=5_000)
    return panel


def kept_rects(w) -> list[tuple[float, float, float, float]]:
    return [(r.left(), r.top(), r.right(), r.bottom()) for r, _, _ in w.canvas.overlay.kept]


def as_rects(boxes: np.ndarray) -> list[tuple[float, float, float, float]]:
    return [tuple(float(v) for v in b) for b in boxes]


def assert_same_rects(got: list[tuple[float, ...]], expected: list[tuple[float, ...]]) -> None:
    """Same number of rectangles, every coordinate within 1e-3 (a flat array comparison: pytest 9's
    approx refuses nested lists, and pytest 8's silently compared the inner tuples with ==)."""
    assert len(got) == len(expected)
    np.testing.assert_allclose(np.asarray(got, dtype=float).reshape(-1, 4),
                               np.asarray(expected, dtype=float).reshape(-1, 4), atol=1e-3, rtol=0)


def test_live_nms_matches_workbench_nms_and_labels_stay(open_window, demo, qtbot, demo_detector):
    before = label_bytes(demo)
    w = open_window(demo)
    record = w.session.record
    boxes_before = [b.xyxy() for b in record.boxes]
    panel = show_inspect(w, qtbot)
    assert panel.runs == 1
    # the same candidates as the model gives directly
    ref = demo_detector.candidates(load_bgr(record.path), conf=0.001)
    c = panel.candidates
    assert len(c) == len(ref) > 20
    np.testing.assert_allclose(c.boxes, ref.boxes, atol=1e-3)
    assert f"{len(c)} candidates" in panel.info.text()
    # default settings = the pre-labeler's: per-class greedy NMS, as Detector.detect
    detected = demo_detector.detect(load_bgr(record.path), conf=0.25, nms=0.45)
    assert_same_rects(sorted(kept_rects(w)), sorted(as_rects(detected.boxes)))

    panel.per_class.setChecked(False)
    panel.conf_slider.setValue(50)
    seen = set()
    for value in (10, 30, 60, 90):
        panel.iou_slider.setValue(value)
        expected = nms(c.boxes, c.scores, value / 100, score_threshold=0.05)
        np.testing.assert_array_equal(panel.trace.kept, expected)
        assert_same_rects(kept_rects(w), as_rects(c.boxes[expected]))
        seen.add(len(expected))
    assert len(seen) > 1                       # the slider really changes the kept set
    panel.per_class.setChecked(True)
    np.testing.assert_array_equal(panel.trace.kept,
                                  batched_nms(c.boxes, c.scores, c.class_ids, 0.9, 0.05))

    panel.iou_slider.setValue(40)
    panel.method.setCurrentIndex(panel.method.findData("diou"))
    np.testing.assert_array_equal(
        panel.trace.kept, diou_nms(c.boxes, c.scores, 0.4, 0.05, class_ids=c.class_ids))
    assert panel.model.headerData(4, Qt.Orientation.Horizontal) == "DIoU"
    panel.method.setCurrentIndex(panel.method.findData("soft-gaussian"))
    assert not panel.per_class.isEnabled()     # Soft-NMS is class-agnostic
    kept, scores = soft_nms(c.boxes, c.scores, 0.4, 0.05, method="gaussian")
    np.testing.assert_array_equal(panel.trace.kept, kept)
    assert len(w.canvas.overlay.kept) == len(kept)
    assert panel.runs == 1                     # sliders and methods never re-detect

    assert w.canvas.viewport().grab().width() > 0   # the overlay paints
    assert [b.xyxy() for b in record.boxes] == boxes_before
    assert not w.session.is_dirty()
    w.save_current()                           # even a save writes the labels as they were
    assert label_bytes(demo) == before


def test_table_lists_suppressed_boxes_with_by_and_selection_highlights(open_window, demo, qtbot):
    w = open_window(demo)
    panel = show_inspect(w, qtbot)
    panel.conf_slider.setValue(5)
    panel.iou_slider.setValue(30)
    trace, c, model = panel.trace, panel.candidates, panel.model
    listed = np.flatnonzero(c.scores > np.float32(0.005))
    assert model.rowCount() == len(listed)
    suppressed = np.flatnonzero(trace.decision == Decision.SUPPRESSED)
    assert len(suppressed) > 0
    assert not w.canvas.overlay.suppressed     # hidden until asked for
    panel.show_suppressed.setChecked(True)
    assert len(w.canvas.overlay.suppressed) == len(suppressed)
    assert w.canvas.overlay.suppressed_pen.style() == Qt.PenStyle.DashLine
    scores = [float(model.data(model.index(r, 1)).split()[0]) for r in range(model.rowCount())]
    assert scores == sorted(scores, reverse=True)
    for i in suppressed.tolist():
        row = panel.row_of_box(i)
        by_row = int(model.data(model.index(row, 3))) - 1
        assert model.data(model.index(row, 2)) == "suppressed"
        assert panel.box_of_row(by_row) == trace.by[i]
        assert trace.decision[trace.by[i]] == Decision.KEPT
        assert float(model.data(model.index(row, 4))) == pytest.approx(trace.overlap[i],
                                                                        abs=1e-3)
        assert float(model.data(model.index(row, 4))) > 0.3
    i = int(suppressed[0])
    panel.table.selectRow(panel.row_of_box(i))
    h = w.canvas.overlay.highlight
    assert_same_rects([(r.left(), r.top(), r.right(), r.bottom()) for r in (h["selected"], h["by"])],
                      as_rects(c.boxes[[i, trace.by[i]]]))
    panel.iou_slider.setValue(29)              # the selection follows the candidate
    assert panel.table.selectionModel().selectedRows()[0].row() == panel.row_of_box(i)
    k = int(panel.trace.kept[0])
    panel.table.selectRow(panel.row_of_box(k))
    assert set(w.canvas.overlay.highlight) == {"selected"}
    # TP / FP / FN of the kept boxes, as workbench.evaluation.evaluate counts them
    record = w.session.record
    names = w.session.dataset.classes.names
    assert panel.class_names == names           # the demo model knows the demo classes
    kept = panel.trace.kept
    result = evaluate({"i": GroundTruth(np.array([b.xyxy() for b in record.boxes]),
                                        np.array([b.class_id for b in record.boxes]))},
                      {"i": Predictions(c.boxes[kept], panel.trace.scores[kept],
                                        c.class_ids[kept])},
                      len(names)).per_image["i"]
    assert panel.match_counts() == (result.tp, result.fp, result.fn)
    assert f"TP {result.tp}, FP {result.fp}, FN {result.fn}" in panel.info.text()


def test_switching_images_recomputes_and_hiding_clears(open_window, demo, tmp_path, qtbot,
                                                      demo_detector):
    w = open_window(demo)
    panel = show_inspect(w, qtbot)
    first = panel.candidates
    assert not w.canvas.overlay.is_empty()
    assert w.next_image()
    assert w.canvas.overlay.is_empty()         # cleared at once, before the new result
    wait_idle(qtbot, 30_000)
    assert panel.runs == 2 and panel.candidates is not first
    ref = demo_detector.candidates(load_bgr(w.session.record.path), conf=0.001)
    np.testing.assert_allclose(panel.candidates.boxes, ref.boxes, atol=1e-3)
    assert not w.canvas.overlay.is_empty()
    assert w.previous_image()                  # seen before: no second detection
    wait_idle(qtbot)
    assert panel.runs == 2 and panel.candidates is first and not w.canvas.overlay.is_empty()

    qtbot.keyClick(w.canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert not w.docks["inspect"].isVisible() and w.canvas.overlay.is_empty()
    w.go_to(3)                                 # hidden: nothing runs
    wait_idle(qtbot)
    assert panel.runs == 2 and w.canvas.overlay.is_empty()
    w.prelabeler.set_model(tmp_path / "no-model")
    w.inspector.model_changed()
    qtbot.keyClick(w.canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, 30_000)
    assert panel.runs == 3 and "Detection failed" in panel.info.text()
    assert panel.candidates is None and w.canvas.overlay.is_empty()
    w.prelabeler.set_model("demo")
    w.inspector.model_changed()
    wait_idle(qtbot, 30_000)
    assert panel.runs == 4 and panel.trace is not None and not w.canvas.overlay.is_empty()
