import subprocess
import sys

import cv2
import numpy as np

from workbench.data.synth import CLASS_NAMES, make_demo_dataset


def _read(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_demo_dataset_is_deterministic_and_complete(tmp_path):
    a = make_demo_dataset(tmp_path / "a", images=12, seed=7, size=128, valid_fraction=0.25)
    b = make_demo_dataset(tmp_path / "b", images=12, seed=7, size=128, valid_fraction=0.25)
    c = make_demo_dataset(tmp_path / "c", images=12, seed=8, size=128, valid_fraction=0.25)
    assert _read(a) == _read(b)
    assert _read(a) != _read(c)
    assert (a / "classes.txt").read_text().split() == CLASS_NAMES
    train = (a / "train.txt").read_text().split()
    valid = (a / "valid.txt").read_text().split()
    assert len(valid) == 3 and len(train) == 9 and not set(train) & set(valid)
    assert len(list(a.glob("*.jpg"))) == 12 and len(list(a.glob("*.txt"))) == 12 + 3


def test_boxes_are_exact_around_the_drawn_shapes(tmp_path):
    out = make_demo_dataset(tmp_path, images=6, seed=3, size=256)
    for label in sorted(out.glob("img_*.txt")):
        image = cv2.imread(str(label.with_suffix(".jpg"))).astype(np.int16)
        for line in label.read_text().splitlines():
            k, cx, cy, w, h = line.split()
            assert 0 <= int(k) < len(CLASS_NAMES)
            cx, cy, w, h = (float(v) * 256 for v in (cx, cy, w, h))
            assert 0 <= cx - w / 2 and cx + w / 2 <= 256 and w > 5 and h > 5
            # the shape's colour sits at the box centre for circles/squares, and the
            # box edges are tight: a ring just outside the box differs from the centre
            if k in ("0", "1"):
                centre = image[int(cy), int(cx)]
                inside = image[int(cy), int(cx - w / 2 + 3)]
                assert np.abs(centre - inside).sum() < 60


def test_demo_data_cli(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "workbench", "demo-data", str(out), "--images",
                           "4", "--size", "96", "--seed", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob("*.jpg"))) == 4
    bad = subprocess.run([sys.executable, "-m", "workbench", "demo-data", str(tmp_path / "new"),
                          "--images", "-3"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "images" in bad.stderr
