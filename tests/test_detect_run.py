"""The detection service: DetectConfig's defaults (the CLI's own), and run_detection feeding
any object with the Sink methods."""

from __future__ import annotations

import dataclasses
from threading import Event

import numpy as np
import pytest

from workbench.cli import build_parser
from workbench.data.images import list_images, load_bgr
from workbench.data.synth import make_demo_dataset
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS, FORMATS, DetectConfig
from workbench.detect.detector import Detector
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.run import run_detection
from workbench.detect.sinks import FORMAT_SINKS, Sink


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = make_demo_dataset(tmp_path_factory.mktemp("data") / "ds", images=4, seed=3, size=160)
    return root, list_images(root)


def test_the_cli_defaults_are_detect_configs():
    args = build_parser().parse_args(["detect", "images"])
    config = DetectConfig()
    assert args.nms == config.nms == DEFAULT_NMS == 0.45
    assert config.conf == DEFAULT_CONF == 0.25  # --conf None: the model's, else this one
    assert args.conf is None
    assert args.backend == config.engine and args.precision == config.precision
    assert args.batch == config.batch and args.every == config.every
    assert args.letterbox == config.letterbox and args.size is config.size
    assert args.calibrate is config.calibrate
    help_text = build_parser()._subparsers._group_actions[0].choices["detect"].format_help()
    assert f"else {DEFAULT_CONF:g})" in help_text and f"(default {DEFAULT_NMS:g})" in help_text


def test_every_format_has_its_sink_and_the_config_is_frozen():
    assert tuple(FORMAT_SINKS) == FORMATS
    with pytest.raises(dataclasses.FrozenInstanceError):
        DetectConfig().conf = 0.5  # type: ignore[misc]


class Recorder:
    """A sink of our own: what a new output format implements."""

    def __init__(self) -> None:
        self.written: list[ImageResult] = []
        self.closed: RunSummary | None = None
        self.aborted: BaseException | None = None

    def write(self, result: ImageResult) -> None:
        self.written.append(result)

    def close(self, summary: RunSummary) -> None:
        self.closed = summary

    def abort(self, error: BaseException) -> None:
        self.aborted = error


def test_a_custom_sink_gets_every_image_in_order_then_the_summary(model, images, tmp_path):
    root, paths = images
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    sources = [paths[0], broken, *paths[1:]]
    config = DetectConfig(model=model, engine="cpu", size=160, conf=0.3, keep_images=True)
    sink: Sink = Recorder()
    seen = []
    summary = run_detection(config, sources, [sink], lambda done, total: seen.append(
        (done, total)))
    assert [r.path for r in sink.written] == paths  # the unreadable image is not written
    assert sink.closed is summary and sink.aborted is None
    assert summary.images == 5 and summary.skipped == 1 and "broken.jpg" in summary.errors[0]
    assert seen == [(i, 5) for i in range(1, 6)]
    detector = Detector(model, "cpu", size=160)
    for result in sink.written:
        assert result.image is not None
        want = detector.detect(load_bgr(result.path), conf=0.3)
        np.testing.assert_allclose(result.detections.scores, want.scores, atol=1e-6)
    assert summary.detections == sum(len(r.detections) for r in sink.written)


def test_cancel_closes_the_sinks_after_the_image_in_hand(model, images):
    _, paths = images
    config = DetectConfig(model=model, engine="cpu", size=160)
    sink, cancel = Recorder(), Event()
    summary = run_detection(config, paths, [sink], lambda done, _: cancel.set(), cancel)
    assert len(sink.written) == 1 and summary.cancelled and sink.closed is summary


def test_a_failing_sink_aborts_the_others(model, images):
    _, paths = images

    class Failing(Recorder):
        def write(self, result: ImageResult) -> None:
            raise OSError("disk full")

    config = DetectConfig(model=model, engine="cpu", size=160)
    first, failing = Recorder(), Failing()
    with pytest.raises(OSError, match="disk full"):
        run_detection(config, paths, [first, failing])
    assert isinstance(first.aborted, OSError) and first.closed is None
