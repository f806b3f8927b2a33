"""`workbench detect VIDEO`: frames through the pipeline, --every, every output format with frame
indices, --save-video, progress in frames, cancel. The video is written with cv2.VideoWriter
from demo images (data_factory.write_demo_video: MJPG in AVI, what every OpenCV wheel can
write and read)."""

from __future__ import annotations

import csv
import json
import threading

import cv2
import numpy as np
import pytest
from data_factory import write_demo_video

from workbench.cli import main
from workbench.data.synth import make_demo_dataset
from workbench.detect.detector import Detector
from workbench.detect.video import VideoSource, detect_video, is_video

CONF = "0.5"
FRAMES = 7


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 7-frame 192x192 video of demo images; also returns the frames as OpenCV reads them."""
    path = write_demo_video(tmp_path_factory.mktemp("video"), FRAMES)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == FRAMES
    return path, frames


@pytest.fixture(scope="module")
def expected(model, video):
    det = Detector(model, "cpu", size=160)
    return [det.detect(f, conf=float(CONF)) for f in video[1]]


def detect(*args):
    return main(["detect", *map(str, args), "--backend", "cpu", "--size", "160",
                 "--conf", CONF])


def test_is_video_by_suffix():
    assert is_video("a.mp4") and is_video("B.MKV") and is_video("c.avi")
    assert not is_video("a.jpg") and not is_video("list.txt")


def test_detect_video_yields_each_kept_frame_in_order(model, video, expected):
    path, frames = video
    det = Detector(model, "cpu", size=160)
    seen = []
    results = list(detect_video(det, path, float(CONF), every=3,
                                progress=lambda done, total: seen.append((done, total))))
    assert [r.frame for r in results] == [0, 3, 6]
    assert seen == [(1, 3), (2, 3), (3, 3)]  # progress counts frames
    for r in results:
        assert (r.width, r.height) == (192, 192)
        np.testing.assert_array_equal(r.detections.class_ids, expected[r.frame].class_ids)
        np.testing.assert_allclose(r.detections.boxes, expected[r.frame].boxes, atol=1e-3)


def test_cancel_stops_a_video_run(model, video):
    det = Detector(model, "cpu", size=160)
    cancel = threading.Event()
    got = []
    for r in detect_video(det, video[0], float(CONF), cancel=cancel):
        got.append(r.frame)
        cancel.set()
    assert got == [0]


def test_yolo_files_are_named_by_frame_index(model, video, expected, tmp_path, capsys):
    assert detect(video[0], "--model", model.cfg.parent, "--out", tmp_path / "out",
                  "--every", 2) == 0
    out = capsys.readouterr().out
    assert "4 frames" in out and "frames/s" in out
    names = sorted(p.name for p in (tmp_path / "out").glob("clip_*.txt"))
    assert names == [f"clip_{i:06d}.txt" for i in (0, 2, 4, 6)]
    for i in (0, 2, 4, 6):
        rows = np.loadtxt(tmp_path / "out" / f"clip_{i:06d}.txt", ndmin=2).reshape(-1, 6)
        assert len(rows) == len(expected[i])
        np.testing.assert_allclose(rows[:, 5], expected[i].scores, atol=1e-6)


def test_coco_has_one_image_per_frame_with_frame_ids(model, video, expected, tmp_path, capsys):
    assert detect(video[0], "--model", model.cfg.parent, "--out", tmp_path / "o",
                  "--format", "coco") == 0
    images = json.loads((tmp_path / "o" / "images.json").read_text())["images"]
    assert [im["frame_id"] for im in images] == list(range(FRAMES))
    assert {im["video"] for im in images} == {"clip.avi"}
    frame_of = {im["id"]: im["frame_id"] for im in images}
    rows = json.loads((tmp_path / "o" / "detections.json").read_text())
    per_frame = [0] * FRAMES
    for r in rows:
        per_frame[frame_of[r["image_id"]]] += 1
    assert per_frame == [len(e) for e in expected]
    assert sum(per_frame) > 0


def test_csv_has_a_frame_column(model, video, expected, tmp_path, capsys):
    assert detect(video[0], "--model", model.cfg.parent, "--out", tmp_path / "o",
                  "--format", "csv") == 0
    with open(tmp_path / "o" / "detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["image"] == "clip.avi" for r in rows)
    counts = [sum(int(r["frame"]) == i for r in rows) for i in range(FRAMES)]
    assert counts == [len(e) for e in expected]


def test_voc_files_are_named_by_frame_index(model, video, tmp_path, capsys):
    assert detect(video[0], "--model", model.cfg.parent, "--out", tmp_path / "o",
                  "--format", "voc", "--every", 4) == 0
    assert sorted(p.name for p in (tmp_path / "o").glob("*.xml")) == \
        ["clip_000000.xml", "clip_000004.xml"]


def test_save_video_draws_the_boxes(model, video, expected, tmp_path, capsys):
    out = tmp_path / "boxes.mp4"
    assert detect(video[0], "--model", model.cfg.parent, "--save-video", out,
                  "--every", 2) == 0
    assert f"video written to {out}" in capsys.readouterr().out
    written = VideoSource(out)
    try:
        assert written.frames == 4 and (written.width, written.height) == (192, 192)
        assert written.fps == pytest.approx(5.0)  # 10 fps, one frame in 2
        drawn = written.read(0)
    finally:
        written.close()
    assert expected[0] and drawn is not None
    # the first frame's boxes are drawn: the frame differs from the source along its edges
    x1, y1, x2, y2 = expected[0].boxes[0].astype(int)
    original = video[1][0].astype(int)
    edge = (slice(max(y1, 0), min(y2, 191)), max(min(x1, 191), 0))
    assert np.abs(drawn.astype(int)[edge] - original[edge]).mean() > 20
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed


@pytest.mark.parametrize("extra,message", [
    (["--every", "0"], "--every must be 1 or more"),
    (["--save-video", "out.txt"], "needs a video suffix"),
])
def test_bad_video_options_are_one_line(model, video, capsys, extra, message):
    assert detect(video[0], "--model", model.cfg.parent, *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_video_options_need_a_video(model, tmp_path, capsys):
    root = make_demo_dataset(tmp_path / "ds", images=1, seed=1, size=192)
    assert detect(root, "--model", model.cfg.parent, "--every", "2") == 2
    assert "need a video" in capsys.readouterr().err


def test_unreadable_video_is_one_line(model, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    assert detect(bad, "--model", model.cfg.parent) == 2
    err = capsys.readouterr().err
    assert "bad.mp4" in err and "cannot open" in err and "Traceback" not in err


def test_a_source_that_ends_early_stops_the_run_cleanly(model, video, expected):
    """A video shorter than its header says: the job past the end returns None."""
    from workbench.detect.pipeline import ImageResult, run_jobs

    det = Detector(model, "cpu", size=160)
    frames = video[1]

    def job(i):
        if i >= 3:
            return None
        return ImageResult(video[0], 192, 192, frame=i), det.prepare(frames[i])

    seen = []
    results = list(run_jobs(det, (lambda i=i: job(i) for i in range(FRAMES)), FRAMES,
                            float(CONF), 0.45, progress=lambda d, t: seen.append(d)))
    assert [r.frame for r in results] == [0, 1, 2] and seen == [1, 2, 3]
    for r in results:
        np.testing.assert_array_equal(r.detections.class_ids, expected[r.frame].class_ids)
