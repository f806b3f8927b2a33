"""`workbench detect`: sources, output formats read back, summary, errors."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from workbench.cli import main
from workbench.data.images import list_images, load_bgr
from workbench.data.synth import make_demo_dataset
from workbench.detect.detector import Detector
from workbench.formats.coco import read_coco_results
from workbench.formats.voc import read_voc

CONF = "0.5"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = make_demo_dataset(tmp_path_factory.mktemp("data") / "ds", images=3, seed=1, size=192)
    return root, list_images(root)


@pytest.fixture(scope="module")
def expected(model, images):
    det = Detector(model, "cpu", size=160)
    return {p.name: det.detect(load_bgr(p), conf=float(CONF)) for p in images[1]}


def detect(*args):
    return main(["detect", *map(str, args), "--backend", "cpu", "--size", "160",
                 "--conf", CONF])


def test_yolo_output_has_a_confidence_column_and_classes(model, images, expected, tmp_path,
                                                         capsys):
    root, paths = images
    assert detect(root, "--model", model.cfg.parent, "--out", tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert "3 images" in out and "backend: opencv-cpu fp32 (" in out and "images/s" in out
    assert (tmp_path / "out" / "classes.txt").read_text().split() == [f"class{i}" for i in range(4)]
    total = 0
    for p in paths:
        rows = np.loadtxt(tmp_path / "out" / f"{p.stem}.txt", ndmin=2).reshape(-1, 6)
        want = expected[p.name]
        total += len(want)
        assert len(rows) == len(want)
        np.testing.assert_array_equal(rows[:, 0], want.class_ids)
        np.testing.assert_allclose(rows[:, 5], want.scores, atol=1e-6)
        cx = (want.boxes[:, 0] + want.boxes[:, 2]) / 2 / 192
        np.testing.assert_allclose(rows[:, 1], cx, atol=2e-6)
    assert f"{total} detections" in out


def test_voc_coco_and_csv_outputs_read_back(model, images, expected, tmp_path, capsys):
    root, paths = images
    for fmt in ("voc", "coco", "csv"):
        assert detect(root, "--model", model.cfg.parent, "--out", tmp_path / fmt,
                      "--format", fmt) == 0
    capsys.readouterr()
    first = paths[0]
    ann = read_voc(tmp_path / "voc" / f"{first.stem}.xml")
    assert len(ann.objects) == len(expected[first.name])
    results = read_coco_results(tmp_path / "coco" / "detections.json")
    doc = json.loads((tmp_path / "coco" / "images.json").read_text())
    ids = {im["file_name"]: im["id"] for im in doc["images"]}
    assert set(ids) == {p.name for p in paths}
    mine = [r for r in results if r["image_id"] == ids[first.name]]
    want = expected[first.name]
    assert len(mine) == len(want)
    np.testing.assert_allclose([r["bbox"][2] for r in mine],
                               want.boxes[:, 2] - want.boxes[:, 0], atol=1e-3)
    assert {r["category_id"] for r in mine} <= {c + 1 for c in want.class_ids.tolist()}
    with open(tmp_path / "csv" / "detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(d) for d in expected.values())
    assert rows[0]["image"] in ids and rows[0]["class_name"].startswith("class")


def test_single_image_and_list_file_print_without_out(model, images, expected, tmp_path,
                                                      capsys):
    root, paths = images
    files = [str(model.cfg), str(model.weights), str(model.names)]
    assert detect(paths[0], "--cfg", files[0], "--weights", files[1], "--names", files[2]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "\t" in ln]
    assert len(lines) == len(expected[paths[0].name])
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in paths[1:]) + "\nmissing.jpg\n")
    assert detect(listing, "--model", model.cfg.parent) == 0
    captured = capsys.readouterr()
    assert "2 images" in captured.out and "1 skipped" in captured.out
    assert "skipped:" in captured.err and "missing.jpg" in captured.err


def test_save_images_draws_into_annotated(model, images, tmp_path, capsys):
    root, paths = images
    assert detect(root, "--model", model.cfg.parent, "--out", tmp_path / "o",
                  "--save-images") == 0
    drawn = sorted(p.name for p in (tmp_path / "o" / "annotated").iterdir())
    assert drawn == [p.with_suffix(".jpg").name for p in paths]
    assert load_bgr(tmp_path / "o" / "annotated" / drawn[0]).shape == (192, 192, 3)


@pytest.mark.parametrize(("extra", "message"), [
    ([], "a model is needed"),
    (["--model", "MODEL", "--cfg", "x.cfg"], "not both"),
    (["--model", "MODEL", "--backend", "cuda"], "-DWITH_CUDA=ON"),
    (["--model", "MODEL", "--size", "100"], "multiples of 32"),
    (["--model", "MODEL", "--save-images"], "--save-images needs --out"),
])
def test_bad_input_is_one_line_and_exit_2(model, images, capsys, extra, message):
    extra = [str(model.cfg.parent) if a == "MODEL" else a for a in extra]
    assert main(["detect", str(images[0]), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench detect: error:") and message in err
    assert "\n" not in err


def test_missing_source_is_a_clear_error(model, tmp_path, capsys):
    assert detect(tmp_path / "nope", "--model", model.cfg.parent) == 2
    assert "no such image, folder or list file" in capsys.readouterr().err


def _stem_clash_sources(tmp_path, images):
    """a.jpg + a.png in one folder, and b.jpg in two subfolders, all different images."""
    _, paths = images
    src = tmp_path / "src"
    (src / "one").mkdir(parents=True)
    (src / "two").mkdir()
    pictures = [load_bgr(p) for p in paths]
    cv2.imwrite(str(src / "a.jpg"), pictures[0])
    cv2.imwrite(str(src / "a.png"), pictures[1])
    cv2.imwrite(str(src / "one" / "b.jpg"), pictures[2])
    cv2.imwrite(str(src / "two" / "b.jpg"), pictures[0][:, ::-1].copy())
    return src


def test_images_sharing_a_stem_each_get_their_own_output(model, images, tmp_path, capsys):
    """Issue 11 item 2: a.jpg and a.png used to write one a.txt (and one annotated a.jpg)."""
    src = _stem_clash_sources(tmp_path, images)
    out = tmp_path / "out"
    assert detect(src, "--model", model.cfg.parent, "--out", out, "--save-images") == 0
    assert "4 images" in capsys.readouterr().out
    labels = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt")
                    if p.name != "classes.txt")
    assert labels == ["a_jpg.txt", "a_png.txt", "one/b.txt", "two/b.txt"]
    drawn = sorted(p.relative_to(out).as_posix() for p in (out / "annotated").rglob("*.jpg"))
    assert drawn == ["annotated/a_jpg.jpg", "annotated/a_png.jpg", "annotated/one/b.jpg",
                     "annotated/two/b.jpg"]
    det = Detector(model, "cpu", size=160)
    for image, label in [("a.jpg", "a_jpg.txt"), ("a.png", "a_png.txt"),
                         ("one/b.jpg", "one/b.txt"), ("two/b.jpg", "two/b.txt")]:
        want = det.detect(load_bgr(src / image), conf=float(CONF))
        rows = np.loadtxt(out / label, ndmin=2).reshape(-1, 6)
        assert len(rows) == len(want)
        np.testing.assert_allclose(rows[:, 5], want.scores, atol=1e-6)


def test_a_list_file_naming_one_file_name_in_two_folders_writes_both(model, images, tmp_path,
                                                                      capsys):
    src = _stem_clash_sources(tmp_path, images)
    listing = tmp_path / "lists" / "images.txt"  # outside SRC: outputs are flattened to names
    listing.parent.mkdir()
    listing.write_text(f"{src / 'one' / 'b.jpg'}\n{src / 'two' / 'b.jpg'}\n")
    out = tmp_path / "out"
    assert detect(listing, "--model", model.cfg.parent, "--out", out) == 0
    assert sorted(p.name for p in out.glob("*.txt")) == ["b_jpg.txt", "b_jpg_2.txt",
                                                         "classes.txt"]


def test_output_stems_are_unique_and_deterministic(tmp_path):
    from workbench.detect.sinks import output_stems

    src = tmp_path
    paths = [src / "a.jpg", src / "A.PNG", src / "a_jpg.jpg", src / "s" / "x.jpg",
             src / "s" / "x.jpeg", src / "c.v2.jpg"]
    stems = output_stems(paths, src)
    assert len({s.as_posix().casefold() for s in stems.values()}) == len(paths)
    assert stems == output_stems(list(paths), src)
    assert stems[src / "c.v2.jpg"].as_posix() == "c.v2"
    assert stems[src / "s" / "x.jpeg"].as_posix() == "s/x_jpeg"


def test_a_prediction_set_keeps_clashing_names_apart(model, images, tmp_path):
    """The Detect dock's sets write what detect --out writes (a_jpg.txt, a_png.txt), and read
    each image's own file back; export writes the same files again."""
    from workbench.predictions import sets as sets
    from workbench.predictions.run import detect_into_set, export_set

    src = _stem_clash_sources(tmp_path, images)
    det = Detector(model, "cpu", size=160)
    set_dir = sets.set_folder(src, "mine")
    info = detect_into_set(det, str(src), src, set_dir, float(CONF), 0.45, sets.RunInfo())
    assert sets.read_info(set_dir).renamed == {"a.jpg": "a_jpg", "a.png": "a_png"}
    for rel in ("a.jpg", "a.png", "one/b.jpg"):
        want = det.detect(load_bgr(src / rel), conf=float(CONF))
        w, h = next((w, h) for r, w, h in info.images if r == rel)
        got = sets.read_predictions(set_dir, rel, w, h, None, info.renamed)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)
    out = tmp_path / "exported"
    export_set(set_dir, src, out, "yolo")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt")) == sorted(
        p.relative_to(set_dir).as_posix() for p in set_dir.rglob("*.txt"))


def test_eval_reads_the_names_detect_gives_clashing_images():
    from workbench.evaluation.sources import Truth, _prediction_files

    truth = Truth(["x"], {"a.jpg": None, "a.png": None, "b.jpg": None}, left_out={"c.png"})
    wanted, left_out = _prediction_files(truth)
    assert wanted["a_jpg.txt"] == "a.jpg" and wanted["a_png.txt"] == "a.png"
    assert "a.txt" not in wanted and wanted["b.txt"] == "b.jpg" and left_out == {"c.txt"}
    # one split evaluated, its clash partner in another split: detect wrote the plain name
    split = Truth(["x"], {"a.jpg": None}, left_out={"a.png"})
    wanted, left_out = _prediction_files(split)
    assert wanted == {"a_jpg.txt": "a.jpg", "a.txt": "a.jpg"} and left_out == {"a_png.txt"}
