"""Anchors: k-means with 1 - IoU over dataset boxes, and `workbench anchors`."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.cli import main
from workbench.darknet.anchors import dataset_box_sizes, kmeans_anchors, wh_iou
from workbench.darknet.cfg import parse_cfg
from workbench.data.folder import open_dataset
from workbench.data.synth import make_demo_dataset
from workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "ds", images=12, seed=3,
                             size=320)


def test_wh_iou_of_centred_boxes():
    got = wh_iou(np.array([[10.0, 10.0], [20.0, 5.0]]), np.array([[10.0, 10.0], [5.0, 20.0]]))
    np.testing.assert_allclose(got, [[1.0, 50 / 150], [50 / 150, 25 / 175]])


def test_kmeans_finds_well_separated_clusters_sorted_by_area():
    rng = np.random.default_rng(0)
    truth = np.array([[12.0, 10.0], [60.0, 30.0], [110.0, 220.0]])
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, (50, 2)) for c in truth[[2, 0, 1]]])
    result = kmeans_anchors(wh, 3, seed=1)
    np.testing.assert_allclose(result.anchors, truth, rtol=0.03)
    assert result.mean_iou > 0.9 and result.boxes == 150
    rounded = ",  ".join(f"{round(w)},{round(h)}" for w, h in result.anchors)
    assert result.cfg_line() == f"anchors = {rounded}"


def test_kmeans_is_seeded_and_beats_the_naive_choice():
    rng = np.random.default_rng(5)
    wh = rng.lognormal(3.5, 0.7, (400, 2))
    a, b = kmeans_anchors(wh, 9, seed=7), kmeans_anchors(wh, 9, seed=7)
    np.testing.assert_array_equal(a.anchors, b.anchors)
    areas = a.anchors.prod(axis=1)
    assert np.all(np.diff(areas) >= 0)
    # the mean IoU reported is the mean best IoU, and k-means beats 9 random boxes
    assert a.mean_iou == pytest.approx(wh_iou(wh, a.anchors).max(axis=1).mean())
    naive = wh[rng.choice(len(wh), 9, replace=False)]
    assert a.mean_iou > wh_iou(wh, naive).max(axis=1).mean()
    # at a fixed point every anchor is the mean of the boxes it serves best
    assign = wh_iou(wh, a.anchors).argmax(axis=1)
    for j in range(9):
        np.testing.assert_allclose(a.anchors[j], wh[assign == j].mean(axis=0), rtol=1e-9)


def test_too_few_boxes_is_a_clear_error():
    with pytest.raises(WorkbenchError, match="2 labeled boxes are too few for 3 anchors"):
        kmeans_anchors(np.ones((2, 2)), 3)


def test_box_sizes_are_scaled_to_the_network(demo):
    dataset = open_dataset(demo)
    at_320 = dataset_box_sizes(dataset, 320, 320)
    at_640x160 = dataset_box_sizes(dataset, 640, 160)
    assert len(at_320) == sum(len(r.boxes) for r in dataset.images) > 0
    np.testing.assert_allclose(at_640x160, at_320 * [2.0, 0.5])


def test_cli_prints_a_pasteable_line_and_mean_iou(demo, capsys):
    assert main(["anchors", str(demo), "-n", "6", "--size", "416"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("anchors = ") and "mean IoU" in out[1]
    head = parse_cfg(f"[net]\n[yolo]\n{out[0]}\n").layers[0]
    values = [float(v) for v in head.get("anchors").split(",")]
    pairs = np.array(values).reshape(-1, 2)
    assert len(pairs) == 6 and np.all(np.diff(pairs.prod(axis=1)) >= 0)
    mean_iou = float(out[1].split()[2])
    assert 0.5 < mean_iou <= 1.0


def test_cli_rejects_a_folder_without_boxes(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["anchors", str(tmp_path / "empty")]) == 2
    assert "no labeled boxes" in capsys.readouterr().err
    assert main(["anchors", str(tmp_path / "empty"), "--size", "big"]) == 2
