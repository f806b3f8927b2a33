"""Box conversions and pairwise IoU / GIoU / DIoU, with their input checks."""

import numpy as np
import pytest

from workbench.geometry.boxes import (
    box_areas,
    cxcywh_to_xyxy,
    denormalize,
    diou_matrix,
    giou_matrix,
    iou_matrix,
    normalize,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)


def random_boxes(rng, n, scale=100.0):
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(0, scale / 3, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def brute_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_conversions_round_trip():
    rng = np.random.default_rng(0)
    b = random_boxes(rng, 50)
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(b)), b)
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(b)), b)
    np.testing.assert_allclose(denormalize(normalize(b, 640, 480), 640, 480), b)


def test_conversions_known_values():
    b = np.array([[10, 20, 30, 60]])
    np.testing.assert_array_equal(xyxy_to_xywh(b), [[10, 20, 20, 40]])
    np.testing.assert_array_equal(xyxy_to_cxcywh(b), [[20, 40, 20, 40]])
    np.testing.assert_array_equal(normalize(b, 100, 200), [[0.1, 0.1, 0.3, 0.3]])
    np.testing.assert_array_equal(box_areas(b), [800])


def test_iou_matrix_matches_brute_force():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 30), random_boxes(rng, 20)
    m = iou_matrix(a, b)
    assert m.shape == (30, 20)
    expected = np.array([[brute_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(m, expected, rtol=1e-12, atol=1e-15)
    assert (m > 0).any()


def test_iou_one_third_and_identity():
    a = xywh_to_xyxy([[0, 0, 10, 10]])
    b = xywh_to_xyxy([[5, 0, 10, 10]])
    assert iou_matrix(a, b)[0, 0] == pytest.approx(1 / 3)
    assert iou_matrix(a, a)[0, 0] == 1.0


def test_zero_area_boxes_have_zero_iou():
    z = np.array([[5, 5, 5, 5], [0, 0, 10, 0]], float)
    assert np.all(iou_matrix(z, z) == 0)
    assert np.all(np.isfinite(giou_matrix(z, z)))
    assert np.all(np.isfinite(diou_matrix(z, z)))


def test_giou_and_diou_known_values():
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[3, 0, 5, 2]], float)      # disjoint, enclosing box 5 x 2
    assert giou_matrix(a, b)[0, 0] == pytest.approx(0 - (10 - 8) / 10)
    # centres 3 apart, enclosing diagonal^2 = 25 + 4
    assert diou_matrix(a, b)[0, 0] == pytest.approx(-9 / 29)
    assert giou_matrix(a, a)[0, 0] == pytest.approx(1.0)
    assert diou_matrix(a, a)[0, 0] == pytest.approx(1.0)


def test_giou_diou_bounded_by_iou():
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 40), random_boxes(rng, 40)
    iou = iou_matrix(a, b)
    assert np.all(giou_matrix(a, b) <= iou + 1e-12)
    assert np.all(diou_matrix(a, b) <= iou + 1e-12)
    assert np.all(giou_matrix(a, b) >= -1 - 1e-12)


def test_integer_and_non_contiguous_input():
    rng = np.random.default_rng(3)
    big = random_boxes(rng, 20)
    as_int = np.round(big).astype(np.int32)
    strided = np.asfortranarray(big)[::2]
    np.testing.assert_allclose(iou_matrix(as_int, as_int), iou_matrix(as_int.astype(float),
                                                                         as_int.astype(float)))
    np.testing.assert_allclose(iou_matrix(strided, strided),
                               iou_matrix(big[::2].copy(), big[::2].copy()))
    assert xyxy_to_xywh(as_int.tolist()).dtype == np.float64


def test_empty_inputs_give_empty_outputs():
    b = random_boxes(np.random.default_rng(4), 3)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    assert iou_matrix(b, []).shape == (3, 0)
    assert xyxy_to_xywh([]).shape == (0, 4)
    assert normalize(np.zeros((0, 4)), 10, 10).shape == (0, 4)


@pytest.mark.parametrize("bad, match", [
    ([[0, 0, np.nan, 1]], "row 0 has a NaN"),
    ([[0, 0, 1, 1], [0, 0, np.inf, 1]], "row 1 has a NaN or infinite"),
    ([[0, 0, 1]], r"expected shape \(N, 4\)"),
    ([0, 0, 1, 1], "single box"),
    ([["a", 0, 1, 1]], "not an array of numbers"),
    ([[5, 0, 1, 1]], "row 0 is not x1 <= x2"),
])
def test_bad_boxes_raise_one_line_value_error(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        iou_matrix(bad, [[0, 0, 1, 1]])
    assert "\n" not in str(info.value)


def test_bad_image_size():
    with pytest.raises(ValueError, match="image size"):
        normalize([[0, 0, 1, 1]], 0, 10)
    with pytest.raises(ValueError, match="image size"):
        denormalize([[0, 0, 1, 1]], 10, np.nan)


def test_nms_importable_from_boxes():
    from workbench import boxes
    from workbench.geometry import nms

    assert boxes.nms is nms.nms
    assert boxes.batched_nms is nms.batched_nms
    with pytest.raises(AttributeError):
        _ = boxes.no_such_name
