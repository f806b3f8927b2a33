"""Next/previous on 4000x3000 JPEGs: the window with prefetch vs decoding on demand.

Prints, per switch, the time from the key press to the new image on screen (the window keeps
neighbours decoded ahead, downscaled to the view) and the time a decode-on-demand viewer
spends (full decode + QImage + QPixmap, as labelImg does), alternating A B A B, medians and
the ratio. The annotator is given a realistic pause between switches, during which the
prefetch runs. Run: python3 bench/bench_image_switch.py [N_IMAGES]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def make_images(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:3000, 0:4000]
    base = ((xx / 4000 * 200) + (yy / 3000 * 55)).astype(np.uint8)
    for i in range(n):
        image = np.dstack([base, np.roll(base, 500 * i, axis=1), 255 - base]).copy()
        for _ in range(40):
            x, y = rng.integers(0, 3800), rng.integers(0, 2800)
            cv2.rectangle(image, (int(x), int(y)), (int(x) + 200, int(y) + 150),
                          tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        image = cv2.add(image, rng.integers(0, 30, image.shape, dtype=np.uint8))
        cv2.imwrite(str(folder / f"photo_{i:03d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QApplication

    from ui import settings, workers
    from ui.image_cache import to_qimage
    from ui.main_window import MainWindow
    from workbench.data.images import load_rgb

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        print(f"writing {n} 4000x3000 JPEGs…", flush=True)
        make_images(folder, n)
        settings.use_file(Path(tmp) / "settings.ini")
        window = MainWindow()
        window.resize(1280, 800)
        window.show()
        window.open_folder(folder)

        def settle(seconds: float) -> None:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end or not workers.idle():
                app.processEvents()

        while window.loading() or window.canvas.decoded is None:
            app.processEvents()
        settle(0.5)

        def on_demand(path: Path) -> float:
            start = time.perf_counter()
            QPixmap.fromImage(to_qimage(load_rgb(path)))
            return time.perf_counter() - start

        def switch() -> float:
            start = time.perf_counter()
            window.next_image()
            while window.canvas.decoded is None:
                app.processEvents()
            return time.perf_counter() - start

        on_demand(folder / "photo_000.jpg")  # warm up both
        paths = sorted(folder.glob("*.jpg"))
        prefetched, direct = [], []
        for i in range(1, n):
            prefetched.append(switch())
            settle(0.4)                        # the annotator looks at the image
            direct.append(on_demand(paths[i]))
        window.close()
    a, b = statistics.median(prefetched), statistics.median(direct)
    print(f"switch with prefetch (shown)   median {a * 1000:7.1f} ms  "
          f"max {max(prefetched) * 1000:7.1f} ms")
    print(f"decode on demand (full, pixmap) median {b * 1000:7.1f} ms  "
          f"max {max(direct) * 1000:7.1f} ms")
    print(f"ratio on-demand / prefetch: {b / a:.1f}x  (target: prefetch < 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
