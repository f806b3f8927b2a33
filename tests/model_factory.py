"""Random-weight Darknet model bundles for tests (no pretrained weights can be downloaded here).

The real loading code stays real: the bundle is written with our own cfg/weights writers and
read back by whoever is under test (OpenCV, ONNX export, Keras).
"""

from __future__ import annotations

from pathlib import Path

from workbench.darknet.bundle import ModelBundle, write_bundle
from workbench.darknet.cfg import DarknetCfg, customize, read_cfg
from workbench.darknet.weights import random_weights

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {
    "yolov3-tiny": ROOT / "darknet_cfg" / "yolov3-tiny.cfg",
    "yolov3": ROOT / "darknet_cfg" / "yolov3.cfg",
    "yolov3-tiny-3l": ROOT / "darknet_cfg" / "yolov3-tiny-3l.cfg",
    # every YOLOv3 layer kind, three heads, plus tiny's stride-1 maxpool; 160x160 by default
    "yolov3-reduced": ROOT / "tests" / "data" / "yolov3-reduced.cfg",
}


def random_cfg(template: str = "yolov3-tiny", classes: int = 3, size: int = 160) -> DarknetCfg:
    return customize(read_cfg(TEMPLATES[template]), classes, size, size)


def random_bundle(folder: Path, template: str = "yolov3-tiny", classes: int = 3,
                  size: int = 160, seed: int = 0) -> ModelBundle:
    """Write ``folder/model.{cfg,weights,names}`` with random weights and random BN statistics."""
    cfg = random_cfg(template, classes, size)
    names = [f"class{i}" for i in range(classes)]
    return write_bundle(folder, "model", cfg, random_weights(cfg, seed), names)
