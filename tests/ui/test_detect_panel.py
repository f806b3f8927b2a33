"""The Detect dock with the real demo model, the real pipeline and real files.

Its saved prediction set must be what ``workbench detect --out`` writes on the same images,
model and thresholds; exports must be what ``detect --format`` writes.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel

from tests.ui.conftest import wait_idle
from workbench.cli import main
from workbench.data.synth import make_demo_dataset

RUN_MS = 60_000


def _files(folder: Path) -> dict[str, str]:
    # run.json is the set's own record; .workbench-detect.json the CLI's mark on its --out
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*")
            if p.is_file() and p.name not in ("run.json", ".workbench-detect.json")}


def _run(qtbot, w, name: str = "mine") -> None:
    panel = w.detector_panel
    wait_idle(qtbot, RUN_MS)                 # the model loads when the dock shows
    panel.set_name.setText(name)
    assert panel.run()
    qtbot.waitUntil(lambda: not panel.running(), timeout=RUN_MS)
    wait_idle(qtbot, RUN_MS)


@pytest.fixture
def detected(open_window, demo, qtbot):
    """A window on the demo folder whose Detect dock ran the demo model at conf 0.3, NMS 0.5."""
    w = open_window(demo)
    w.act["detect"].trigger()                # Model > Detect (Ctrl+R)
    assert w.docks["detect"].isVisible()
    panel = w.detector_panel
    panel.conf.setValue(0.3)
    panel.nms.setValue(0.5)
    _run(qtbot, w)
    return w


def test_the_saved_set_is_what_detect_out_writes(detected, demo, tmp_path):
    set_dir = demo / ".predictions" / "mine"
    assert main(["detect", str(demo), "--model", "demo", "--conf", "0.3", "--nms", "0.5",
                 "--out", str(tmp_path / "cli")]) == 0
    cli = _files(tmp_path / "cli")
    assert len(cli) == 7 and "classes.txt" in cli          # 6 images + the model's names
    assert _files(set_dir) == cli
    info = json.loads((set_dir / "run.json").read_text())
    assert info["conf"] == 0.3 and info["nms"] == 0.5 and not info["cancelled"]
    assert info["engine"] == detected.detector_panel.engine_name != ""
    assert len(info["images"]) == 6
    assert detected.detector_panel.sets.currentData() == "mine"   # shown at once


def test_status_bar_shows_model_classes_engine_and_device(detected):
    from workbench.detect.detector import Detector

    reference = Detector("demo").backend         # what `detect` would choose here, and why
    text = detected.model_label.text()
    assert text == (f"Model: built-in demo · 4 classes · engine {reference.name} · "
                    f"{'cuda' if 'cuda' in reference.name else 'cpu'}")
    assert detected.detector_panel.engine_label.text() == f"{reference.name}: {reference.reason}"


def test_the_engine_list_holds_only_engines_that_run_here(open_window, demo, qtbot):
    from workbench.darknet.bundle import find_bundle
    from workbench.detect.backends import BACKEND_CHOICES, make_backend

    w = open_window(demo)
    combo = w.detector_panel.engine
    listed = [combo.itemData(i) for i in range(combo.count())]
    assert listed[0] == "auto" and set(listed) <= set(BACKEND_CHOICES)
    for name in listed[1:]:
        if name == "tensorflow":     # building it loads TensorFlow: the probe is the package
            assert importlib.util.find_spec("tensorflow") is not None
            continue
        backend = make_backend(find_bundle("demo"), name, 192, 192)   # raises if it cannot
        assert backend.name
    for name in set(BACKEND_CHOICES) - set(listed):
        with pytest.raises(Exception):  # noqa: B017 - whatever the engine's own error is
            make_backend(find_bundle("demo"), name, 192, 192)


def _cli_lines(demo: Path, record) -> list[list[str]]:
    """The lines of the set's file for ``record`` (the same text `detect --out` writes)."""
    path = (demo / ".predictions" / "mine" / record.path.relative_to(demo)).with_suffix(".txt")
    return [line.split() for line in path.read_text().splitlines()]


def test_overlay_shows_labels_predictions_or_both_filtered(detected, demo, qtbot):
    w, panel = detected, detected.detector_panel
    record = w.session.record
    lines = _cli_lines(demo, record)
    assert lines, "the demo model finds shapes on the first image"
    panel.show_mode.setCurrentIndex(panel.show_mode.findData("both"))
    assert panel.overlay_count() == len(lines)
    assert all(item.isVisible() for item in w.canvas.boxes) and w.canvas.boxes
    panel.show_mode.setCurrentIndex(panel.show_mode.findData("predictions"))
    assert panel.overlay_count() == len(lines)
    assert not any(item.isVisible() for item in w.canvas.boxes)
    panel.show_mode.setCurrentIndex(panel.show_mode.findData("labels"))
    assert panel.overlay_count() == 0 and all(i.isVisible() for i in w.canvas.boxes)
    panel.show_mode.setCurrentIndex(panel.show_mode.findData("both"))
    first = int(lines[0][0])
    panel.class_filter.setCurrentIndex(panel.class_filter.findData(first))
    assert panel.overlay_count() == sum(int(f[0]) == first for f in lines)
    panel.class_filter.setCurrentIndex(0)
    panel.min_score.setValue(0.9)
    assert panel.overlay_count() == sum(float(f[5]) >= 0.9 for f in lines)
    panel.min_score.setValue(0.0)
    w.go_to(1)          # the overlay follows the image
    assert panel.overlay_count() == len(_cli_lines(demo, w.session.record))


def test_the_set_survives_a_restart(detected, demo, open_window, qtbot):
    detected.close()
    w = open_window(demo)
    panel = w.detector_panel
    assert panel.sets.findData("mine") > 0
    panel.sets.setCurrentIndex(panel.sets.findData("mine"))
    assert panel.overlay_count() == len(_cli_lines(demo, w.session.record)) > 0


@pytest.mark.parametrize("fmt", ["coco", "csv", "voc", "yolo"])
def test_export_writes_what_detect_format_writes(detected, demo, tmp_path, qtbot, fmt):
    cli, out = tmp_path / "cli", tmp_path / "exported"
    assert main(["detect", str(demo), "--model", "demo", "--conf", "0.3", "--nms", "0.5",
                 "--format", fmt, "--out", str(cli)]) == 0
    worker = detected.detector_panel.export(out, fmt)
    assert worker is not None
    wait_idle(qtbot, RUN_MS)
    if fmt == "coco":
        a = json.loads((cli / "detections.json").read_text())
        b = json.loads((out / "detections.json").read_text())
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert (x["image_id"], x["category_id"]) == (y["image_id"], y["category_id"])
            assert x["bbox"] == pytest.approx(y["bbox"], abs=1e-3)   # through %.6f text
            assert x["score"] == pytest.approx(y["score"], abs=1e-6)
        assert (cli / "images.json").read_text() == (out / "images.json").read_text()
    elif fmt == "csv":
        a = list(csv.reader((cli / "detections.csv").open()))
        b = list(csv.reader((out / "detections.csv").open()))
        assert a[0] == b[0] and len(a) == len(b) > 1
        for x, y in zip(a[1:], b[1:], strict=True):
            assert x[:5] == y[:5]
            assert [float(v) for v in x[5:]] == pytest.approx([float(v) for v in y[5:]],
                                                              abs=0.011)
    else:
        assert _files(out) == _files(cli) and len(_files(cli)) >= 6


def test_accept_predictions_for_selected_images_one_undo_each(open_window, tmp_path, qtbot):
    data = make_demo_dataset(tmp_path / "accept", images=6, seed=3, size=160)
    for name in ("img_00002", "img_00004"):
        (data / f"{name}.txt").unlink()            # two images to label from predictions
    w = open_window(data)
    w.act["detect"].trigger()
    _run(qtbot, w)
    panel = w.detector_panel
    images = w.session.dataset.images
    rows = [i for i, r in enumerate(images) if not r.labeled]
    assert rows == [2, 4]
    selection = w.images.list.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(w.images.filter.index(row, 0), QItemSelectionModel.SelectionFlag.Select)
    assert w.selected_rows() == rows
    expected = {row: _cli_lines(data, images[row]) for row in rows}
    assert all(expected.values())
    added = panel.accept_selected()
    assert added == sum(len(lines) for lines in expected.values())
    for row in rows:
        assert sorted(b.class_id for b in images[row].boxes) == sorted(int(f[0]) for f in expected[row])   # demo names = data set's
        stack = w.session.stack(row)
        assert stack.count() == 1 and stack.isClean()                # saved with autosave
        label = images[row].path.with_suffix(".txt").read_text().splitlines()
        assert len(label) == len(expected[row])
        stack.undo()
        assert images[row].boxes == []
    assert all(w.session.stack(r).count() == 0 for r in range(6) if r not in rows)


def test_a_run_shows_rate_and_eta_and_cancel_keeps_what_was_done(open_window, tmp_path, qtbot):
    data = make_demo_dataset(tmp_path / "many", images=80, seed=5, size=160)
    w = open_window(data)
    w.act["detect"].trigger()                # Model > Detect (Ctrl+R)
    assert w.docks["detect"].isVisible()
    panel = w.detector_panel
    wait_idle(qtbot, RUN_MS)
    panel.set_name.setText("partial")
    assert panel.run()
    assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    assert "a detection run in progress" in w.unaccepted_work()   # Ctrl+Q would ask
    qtbot.waitUntil(lambda: panel.progress.value() >= 2, timeout=RUN_MS)
    assert "images/s" in panel.rate.text() and "ETA" in panel.rate.text()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.running(), timeout=RUN_MS)
    wait_idle(qtbot, RUN_MS)
    info = json.loads((data / ".predictions" / "partial" / "run.json").read_text())
    assert info["cancelled"] and 2 <= len(info["images"]) < 80
    assert "Cancelled" in panel.rate.text() and panel.run_button.isEnabled()


def test_a_folder_source_saves_its_set_beside_its_images(open_window, demo, tmp_path, qtbot):
    other = make_demo_dataset(tmp_path / "other", images=3, seed=9, size=160)
    w = open_window(demo)
    w.detector_panel.set_source_path(other)
    _run(qtbot, w, "elsewhere")
    assert main(["detect", str(other), "--model", "demo", "--out", str(tmp_path / "cli")]) == 0
    assert _files(other / ".predictions" / "elsewhere") == _files(tmp_path / "cli")
    assert w.detector_panel.sets.findData("elsewhere") < 0   # not a set of the open data set


def test_export_with_images_draws_each_one(detected, tmp_path, qtbot):
    out = tmp_path / "drawn"
    assert detected.detector_panel.export(out, "yolo", save_images=True) is not None
    wait_idle(qtbot, RUN_MS)
    drawn = sorted(p.name for p in (out / "annotated").rglob("*.jpg"))
    assert len(drawn) == 6
    main(["detect", str(detected.session.dataset.root), "--model", "demo", "--conf", "0.3",
          "--nms", "0.5", "--out", str(tmp_path / "cli"), "--save-images"])
    assert drawn == sorted(p.name for p in (tmp_path / "cli" / "annotated").rglob("*.jpg"))


def test_an_explicit_engine_and_size_run_as_detect_backend_and_size(open_window, demo,
                                                                      tmp_path, qtbot):
    w = open_window(demo)
    w.act["detect"].trigger()
    panel = w.detector_panel
    wait_idle(qtbot, RUN_MS)
    panel.engine.setCurrentIndex(panel.engine.findData("cpu"))
    panel.size.setValue(160)
    panel.size.editingFinished.emit()
    wait_idle(qtbot, RUN_MS)
    assert panel.engine_name == "opencv-cpu" and "engine opencv-cpu · cpu" in \
        w.model_label.text()
    _run(qtbot, w, "cpu160")
    info = json.loads((demo / ".predictions" / "cpu160" / "run.json").read_text())
    assert info["engine"] == "opencv-cpu" and info["size"] == [160, 160]
    assert main(["detect", str(demo), "--model", "demo", "--backend", "cpu", "--size", "160",
                 "--out", str(tmp_path / "cli")]) == 0
    assert _files(demo / ".predictions" / "cpu160") == _files(tmp_path / "cli")


def test_data_set_sources_all_unlabeled_and_filtered(open_window, demo, qtbot):
    w = open_window(demo)
    panel = w.detector_panel
    images = w.session.dataset.images
    for record in images[3:]:
        record.path.with_suffix(".txt").unlink()
    w.open_folder(demo)                         # re-read: three images have no labels now
    qtbot.waitUntil(lambda: not w.loading(), timeout=10_000)
    wait_idle(qtbot)
    images = w.session.dataset.images
    panel.source.setCurrentIndex(panel.source.findData("all"))
    assert panel.sources()[0] == [r.path for r in images]
    panel.source.setCurrentIndex(panel.source.findData("unlabeled"))
    assert panel.sources()[0] == [r.path for r in images[3:]]
    w.images.name_edit.setText(images[1].path.stem)   # the list's filter
    panel.source.setCurrentIndex(panel.source.findData("filtered"))
    assert panel.sources() == ([images[1].path], demo.resolve())


def test_a_video_source_is_refused_with_where_to_run_it(open_window, demo, tmp_path, qtbot):
    """A set is one prediction file per image on disk; a video is refused with one line naming
    the command that runs it, not run into an empty set."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")                    # refused by its kind, before anything reads it
    w = open_window(demo)
    panel = w.detector_panel
    wait_idle(qtbot, RUN_MS)
    panel.set_source_path(clip)
    with qtbot.waitSignal(panel.status) as said:
        assert not panel.run()
    assert "clip.mp4 is a video" in said.args[0] and "workbench detect" in said.args[0]
    assert not (tmp_path / ".predictions").exists() and not panel.running()
