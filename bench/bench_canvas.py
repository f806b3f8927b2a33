"""Pan and zoom frames of the canvas with 1,000 boxes, against the same image with no boxes.

Offscreen (QT_QPA_PLATFORM=offscreen), 1400x900 window, a 1600x1200 image; each frame is one
zoom or scroll step followed by a synchronous repaint of the viewport.
Usage: python3 bench/bench_canvas.py [--frames 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def frames(app, window, n: int) -> list[float]:
    canvas = window.canvas
    bar = canvas.horizontalScrollBar()
    times = []
    for i in range(n):
        start = time.perf_counter()
        if i % 4 in (0, 1):
            canvas.zoom_by(1.25 if (i // 4) % 2 == 0 else 0.8)
        else:
            bar.setValue(bar.value() + (30 if (i // 4) % 2 == 0 else -30))
        canvas.viewport().repaint()
        app.processEvents()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--boxes", type=int, default=1000)
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtWidgets import QApplication

    from ui import settings, workers
    from ui.main_window import MainWindow
    from workbench.data.synth import make_demo_dataset
    from workbench.labels.dataset import Box

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        settings.use_file(Path(tmp) / "settings.ini")
        data = make_demo_dataset(Path(tmp) / "data", images=2, seed=1, size=1200)
        window = MainWindow()
        window.resize(1400, 900)
        window.show()
        window.open_folder(data)
        while window.loading() or window.canvas.decoded is None or not workers.idle():
            app.processEvents()
        rng = np.random.default_rng(0)
        record = window.session.record
        many = [Box(x, y, x + w, y + h, int(k % 4)) for k, (x, y, w, h) in enumerate(
            np.c_[rng.uniform(0, 1100, (args.boxes, 2)), rng.uniform(10, 80, (args.boxes, 2))])]
        few: list[Box] = []
        runs = {"1,000 boxes": [], "no boxes": []}
        for _ in range(3):                       # alternate A B, after a warm-up of each
            for name, boxes in (("1,000 boxes", many), ("no boxes", few)):
                record.boxes = list(boxes)
                window.canvas.sync_boxes([])
                window.canvas.fit()
                frames(app, window, 8)
                runs[name] += frames(app, window, args.frames)
        window.close()
    med = {k: statistics.median(v) * 1e3 for k, v in runs.items()}
    p95 = {k: float(np.percentile(v, 95)) * 1e3 for k, v in runs.items()}
    for k in runs:
        print(f"{k:12s} frame median {med[k]:6.1f} ms  p95 {p95[k]:6.1f} ms  "
              f"({1000 / med[k]:.0f} frames/s)")
    print(f"ratio 1,000 boxes / no boxes: {med['1,000 boxes'] / med['no boxes']:.2f}x")


if __name__ == "__main__":
    main()
