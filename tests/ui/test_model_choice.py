"""Choosing the window's model (issue 13, bugs 1 and 9) and not losing proposals on Ctrl+Q.

Bug 1: stopping a training run made its useless model the current one. Bug 9: Load model
accepted any folder and failed only at propose time.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from tests.model_factory import random_bundle
from tests.ui.conftest import wait_idle
from ui import settings
from ui.session import Proposal
from workbench.labels.dataset import Box


def _trained(w, bundle: Path, status: str, best_map50: float | None) -> None:
    """What the Train dock holds and emits when a run ends (see test_train_panel.py for the
    real child process producing these events)."""
    w.trainer.done_event = {"event": "done", "status": status, "epoch": 1,
                            "best_map50": best_map50, "bundle": str(bundle)}
    w.trainer.model_ready.emit(str(bundle))


def test_a_stopped_run_never_replaces_the_current_model(open_window, demo, tmp_path, qtbot):
    w = open_window(demo)
    asked: list[str] = []
    w.ask_use_trained = lambda text: asked.append(text) or True
    bundle = random_bundle(tmp_path / "run" / "bundle", classes=4, size=160).cfg.parent
    _trained(w, bundle, "interrupted", 0.9)
    wait_idle(qtbot)
    assert str(w.prelabeler.model) == "demo" and not asked
    assert str(w.detector_panel.model) == "demo"
    picker = w.detector_panel.picker
    assert picker.findData(str(bundle)) >= 0          # one click away, not forced on anyone
    assert "unchanged" in w.statusBar().currentMessage()


def test_a_finished_run_replaces_only_a_worse_model_and_only_after_asking(
        open_window, demo, tmp_path, qtbot):
    w = open_window(demo)
    asked: list[str] = []
    answer = [False]
    w.ask_use_trained = lambda text: asked.append(text) or answer[0]
    # not better than the demo model on the validation images: nothing asked, nothing changed
    worse = random_bundle(tmp_path / "worse", classes=4, size=160).cfg.parent
    _trained(w, worse, "finished", 0.0)
    wait_idle(qtbot, 60_000)
    assert str(w.prelabeler.model) == "demo" and not asked
    assert "not better" in w.statusBar().currentMessage()
    # a current model that scores 0 (random weights, other class names), a better run: asked
    current = random_bundle(tmp_path / "current", classes=4, size=160, seed=1).cfg.parent
    assert w.use_model(str(current))
    better = random_bundle(tmp_path / "better", classes=4, size=160, seed=2).cfg.parent
    _trained(w, better, "finished", 0.5)
    wait_idle(qtbot, 60_000)
    assert len(asked) == 1 and "0.5000" in asked[0] and "0.0000" in asked[0]
    assert w.current_model() == str(current)         # the user said no
    answer[0] = True
    _trained(w, better, "finished", 0.5)
    wait_idle(qtbot, 60_000)
    assert len(asked) == 2 and w.current_model() == str(better.resolve())


def test_demo_and_recent_models_are_one_click_away(open_window, demo, tmp_path, qtbot):
    w = open_window(demo)
    bundle = random_bundle(tmp_path / "model", classes=3, size=160).cfg.parent
    assert w.use_model(str(bundle))
    assert settings.recent_models() == [str(bundle.resolve())]
    recent = [a.text() for a in w.recent_models_menu.actions()]
    assert recent == [str(bundle.resolve())]
    w.act["demo_model"].trigger()
    assert str(w.prelabeler.model) == "demo"
    w.recent_models_menu.actions()[0].trigger()
    assert w.current_model() == str(bundle.resolve())
    picker = w.detector_panel.picker
    assert picker.itemData(0) == "demo" and picker.findData(str(bundle.resolve())) >= 0
    wait_idle(qtbot, 60_000)


def test_load_model_refuses_a_bad_folder_at_once_with_one_line(open_window, demo, tmp_path,
                                                                 qtbot):
    w = open_window(demo)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not w.use_model(str(empty))
    assert str(w.prelabeler.model) == "demo" and str(w.detector_panel.model) == "demo"
    message = w.statusBar().currentMessage()
    assert message.startswith("Model not loaded: ") and str(empty) in message
    assert "\n" not in message
    # weights that do not fit the cfg: the file is named, before anything runs
    bundle = random_bundle(tmp_path / "cut", classes=3, size=160)
    data = bundle.weights.read_bytes()
    bundle.weights.write_bytes(data[: len(data) // 2])
    assert not w.use_model(str(bundle.cfg.parent))
    assert str(bundle.weights) in w.statusBar().currentMessage()
    # names that do not match the cfg's classes
    other = random_bundle(tmp_path / "names", classes=3, size=160)
    other.names.write_text("a\nb\n")
    assert not w.use_model(str(other.cfg.parent))
    assert "2 class names" in w.statusBar().currentMessage()
    assert str(w.prelabeler.model) == "demo"
    wait_idle(qtbot)


def test_ctrl_q_asks_before_discarding_proposals(open_window, demo, qtbot):
    w = open_window(demo)
    for row in (0, 1):
        w.session.set_proposals(row, [Proposal(Box(2, 2, 40, 40, 0), 0.9, "circle")])
    asked: list[str] = []
    answer = [False]
    w.ask_discard = lambda what: asked.append(what) or answer[0]
    qtbot.keyClick(w.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert asked == ["2 proposed boxes on 2 image(s) not accepted"]
    assert w.isVisible() and len(w.session.proposals) == 2
    answer[0] = True
    qtbot.keyClick(w.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert len(asked) == 2 and not w.isVisible()


def test_ctrl_q_without_proposals_does_not_ask(open_window, demo, qtbot):
    w = open_window(demo)
    w.ask_discard = lambda what: (_ for _ in ()).throw(AssertionError(what))
    qtbot.keyClick(w.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not w.isVisible()


def test_the_detect_dock_fits_1024x700_and_1280x800(open_window, demo, qtbot):
    w = open_window(demo)
    for width, height in ((1280, 800), (1024, 700)):
        w.resize(width, height)
        w.act["detect"].trigger() if not w.docks["detect"].isVisible() else None
        qtbot.wait(50)
        assert w.docks["detect"].isVisible()
        assert w.minimumSizeHint().height() <= height and w.minimumHeight() <= height
        assert w.height() <= height and w.width() <= width
        # the dock scrolls instead of growing, and never sideways: every field shows whole
        scroll = w.docks["detect"].widget()
        assert scroll.widget() is w.detector_panel
        assert not scroll.horizontalScrollBar().isVisible()
