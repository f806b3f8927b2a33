"""Render the main window on demo data into docs/screenshots/*.png (offscreen, for the README).

Run: python3 scripts/render_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtWidgets import QApplication

    from ui import settings, workers
    from ui.main_window import MainWindow
    from workbench.data.synth import make_demo_dataset

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        settings.use_file(Path(tmp) / "settings.ini")
        data = make_demo_dataset(Path(tmp) / "demo", images=24, seed=7, size=416)
        for i in (5, 9, 14, 20):
            (data / f"img_{i:05d}.txt").unlink()      # some work left to do
        window = MainWindow()
        window.resize(1400, 860)
        window.show()
        open_on_third_image(app, window, data)
        window.canvas.select([0])
        window.stats.refresh()
        app.processEvents()
        window.grab().save(str(out / "main_window.png"))
        # proposals (dashed) on an unlabeled image: the bundled demo model, Model > Propose boxes
        window.go_to(5)
        while window.canvas.decoded is None or not workers.idle():
            app.processEvents()
        window.prelabeler.propose_current()
        while window.prelabeler.busy() or not workers.idle():
            app.processEvents()
        if not window.session.current_proposals():
            raise SystemExit("the demo model proposed nothing: is resources/models/demo there?")
        app.processEvents()
        window.grab().save(str(out / "proposals.png"))
        window.session.reject_proposals()
        # the Inspect dock: every NMS decision over the demo model's candidates
        window.docks["stats"].hide()
        window.docks["inspect"].show()
        window.go_to(2)
        inspector = window.inspector
        while inspector.busy() or window.canvas.decoded is None or not workers.idle():
            app.processEvents()
        inspector.conf_slider.setValue(20)           # confidence 0.02
        inspector.show_suppressed.setChecked(True)
        inspector.refresh()
        suppressed = [r for r in range(inspector.model.rowCount())
                      if inspector.model.data(inspector.model.index(r, 2)) == "suppressed"]
        if suppressed:
            inspector.table.selectRow(suppressed[0])
        app.processEvents()
        window.grab().save(str(out / "inspect.png"))
        # the Detect dock mid-run: the demo model over the whole data set, into a named set
        window.docks["inspect"].hide()
        window.act["detect"].trigger()
        panel = window.detector_panel
        while not workers.idle() or not panel.engine_name:
            app.processEvents()
        panel.set_name.setText("demo-model")            # kept in .predictions/demo-model
        panel.conf.setValue(0.1)
        if not panel.run():
            raise SystemExit("the Detect dock did not start a run")
        half = len(window.session.dataset.images) // 2
        while panel.running() and panel.progress.value() < half:
            app.processEvents()
        window.grab().save(str(out / "detect_run.png"))
        while panel.running() or not workers.idle():
            app.processEvents()
        # the saved set drawn over an image: labels solid, predictions dashed with scores
        window.go_to(5)                                # one without labels: predictions only
        window.go_to(3)
        while window.canvas.decoded is None or not workers.idle():
            app.processEvents()
        panel.show_mode.setCurrentIndex(panel.show_mode.findData("both"))
        panel.min_score.setValue(0.3)
        app.processEvents()
        if not panel.overlay_count():
            raise SystemExit("the prediction set has nothing on this image")
        window.grab().save(str(out / "predictions.png"))
        panel.sets.setCurrentIndex(0)                  # no overlay under Evaluate's picture
        window.docks["detect"].hide()
        # the Evaluate dock: the demo model's predictions (as `workbench detect --out`
        # writes them, kept in the data set's .predictions folder) against the labels
        render_evaluate(app, window, data, out)
        window.close()
        settings.use_file(Path(tmp) / "small.ini")   # a first run again: the default layout
        render_small_screen(app, data, out)
    print(f"wrote main_window.png, proposals.png, inspect.png, detect_run.png, predictions.png, "
          f"evaluate.png, evaluate_confusion.png and small_screen.png to {out}")
    return 0


def open_on_third_image(app, window, data: Path) -> None:
    """Open ``data`` and show its third image, waiting until it is decoded and drawn."""
    from ui import workers

    window.open_folder(data)
    while window.loading() or window.canvas.decoded is None or not workers.idle():
        app.processEvents()
    window.go_to(2)
    while window.canvas.decoded is None or not workers.idle():
        app.processEvents()


def render_evaluate(app, window, data: Path, out: Path) -> None:
    import contextlib
    import io

    from PySide6.QtCore import Qt

    from ui import workers
    from workbench.cli import main as cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if cli(["detect", str(data), "--model", "demo", "--conf", "0.1",
                # its own set: detect --out never writes into a folder it did not make
                "--out", str(data / ".predictions" / "demo-detect-out")]) != 0:
            raise SystemExit("workbench detect failed on the demo data")
    window.docks["inspect"].hide()
    window.evaluator.refresh_sets()
    window.evaluator.sets.setCurrentIndex(window.evaluator.sets.findText("demo-detect-out"))
    window.act["evaluate"].trigger()
    window.resizeDocks([window.docks["evaluate"]], [620], Qt.Orientation.Horizontal)
    panel = window.evaluator
    panel.start()
    while panel.busy() or not workers.idle():
        app.processEvents()
    if panel.report is None:
        raise SystemExit(f"evaluation failed: {panel.summary.text()}")
    panel.tabs.setCurrentIndex(1)   # PR curves
    app.processEvents()
    window.grab().save(str(out / "evaluate.png"))
    panel.tabs.setCurrentIndex(2)   # the confusion matrix, one cell's images listed
    app.processEvents()
    counts = panel.report.matrix.counts
    k = counts.shape[0] - 1
    cell = max(((int(counts[t, p]), t, p) for t in range(k + 1) for p in range(k + 1)
                if t != p), default=(0, 0, 0))
    images = panel.select_cell(cell[1], cell[2])
    if images:   # the first of them on the canvas, with its TP / FP / FN boxes
        window.show_evaluated(next(iter(sorted(images))))
        while window.canvas.decoded is None or not workers.idle():
            app.processEvents()
    app.processEvents()
    window.grab().save(str(out / "evaluate_confusion.png"))


def render_small_screen(app, data: Path, out: Path) -> None:
    """The first run on a 1024x700 screen: every dock a tab of one column, Images in front."""
    from ui.main_window import MainWindow

    window = MainWindow()
    window.resize(1024, 700)
    window.show()
    open_on_third_image(app, window, data)
    app.processEvents()
    window.grab().save(str(out / "small_screen.png"))
    window.close()


if __name__ == "__main__":
    sys.exit(main())
