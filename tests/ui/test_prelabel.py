"""Pre-labeling with a real (random-weight) model: dashed proposals, Enter accepts, Esc rejects."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.model_factory import random_bundle
from tests.ui.conftest import wait_idle


def test_proposals_accept_as_one_undoable_edit_and_reject(open_window, demo, tmp_path, qtbot):
    bundle = random_bundle(tmp_path / "model", classes=3, size=160)
    w = open_window(demo)
    w.prelabeler.set_model(bundle.cfg.parent)
    w.prelabeler.conf = 0.0   # random weights: take whatever comes out
    w.ask_add_classes = lambda names: "add"   # the model's classes are new to the data set
    record = w.session.record
    n = len(record.boxes)
    qtbot.keyClick(w.canvas, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, 60_000)
    proposals = w.session.current_proposals()
    assert proposals and len(w.canvas.proposals) == len(proposals)
    assert all(item.pen().style() == Qt.PenStyle.DashLine for item in w.canvas.proposals)
    assert len(record.boxes) == n                        # nothing added until accepted
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    assert len(record.boxes) == n + len(proposals) and not w.canvas.proposals
    assert "class0" in w.session.dataset.classes.names or \
           all(p.box.class_id >= 0 for p in proposals)
    w.session.undo_group.undo()
    assert len(record.boxes) == n
    w.prelabeler.propose_current()
    wait_idle(qtbot, 60_000)
    assert w.canvas.proposals
    qtbot.keyClick(w.canvas, Qt.Key.Key_Escape)
    assert not w.canvas.proposals and len(record.boxes) == n


def test_proposals_stay_when_the_class_list_cannot_be_saved(open_window, demo, qtbot):
    import pytest

    from ui.session import Proposal
    from workbench.labels.dataset import Box

    w = open_window(demo)
    row = w.session.index
    w.session.set_proposals(row, [Proposal(Box(2, 2, 40, 40, -1), 0.9, "hexagon")])
    (demo / "classes.txt").unlink()
    (demo / "classes.txt").mkdir()              # the class file cannot be written
    boxes_before = len(w.session.record.boxes)
    with pytest.raises(OSError):
        w.session.accept_proposals()
    assert len(w.session.current_proposals()) == 1
    assert len(w.session.record.boxes) == boxes_before
