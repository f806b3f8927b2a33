"""YOLO txt labels and classes.txt: labelImg-compatible reading and writing."""

from __future__ import annotations

import math
import random

import pytest
from data_factory import random_xyxy

from workbench.errors import FormatError
from workbench.formats import ProblemLog
from workbench.formats.yolo import (
    format_yolo,
    parse_classes,
    parse_yolo,
    read_classes,
    read_yolo,
    write_classes,
    write_yolo,
)
from workbench.labels.dataset import Box

# what labelImg writes for a 640x480 image: "%d %.6f %.6f %.6f %.6f" and a newline per box
LABELIMG_TEXT = "0 0.500000 0.500000 0.250000 0.333333\n2 0.103125 0.904167 0.200000 0.187500\n"


def test_labelimg_file_reads_and_writes_back_byte_for_byte(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(LABELIMG_TEXT)
    boxes = read_yolo(path, 640, 480, num_classes=3)
    assert [b.class_id for b in boxes] == [0, 2]
    assert boxes[0].xyxy() == pytest.approx((240.0, 160.00008, 400.0, 319.99992))
    write_yolo(tmp_path / "b.txt", boxes, 640, 480)
    assert (tmp_path / "b.txt").read_bytes() == LABELIMG_TEXT.encode()


def test_boxes_round_trip_within_the_six_decimal_precision():
    rng = random.Random(3)
    width, height = 1920, 1080
    boxes = [Box(*random_xyxy(rng, width, height), rng.randrange(5)) for _ in range(300)]
    back = parse_yolo(format_yolo(boxes, width, height), "x.txt", width, height, 5)
    assert len(back) == len(boxes)
    for a, b in zip(boxes, back, strict=True):
        assert a.class_id == b.class_id
        # each normalized number is rounded to 5e-7; an edge is cx +- w/2: 1e-6 of the side
        assert b.x1 == pytest.approx(a.x1, abs=1e-6 * width)
        assert b.y2 == pytest.approx(a.y2, abs=1e-6 * height)
    # and a second write of what was read is identical text
    assert format_yolo(back, width, height) == format_yolo(boxes, width, height)


def test_reader_accepts_any_whitespace_crlf_bom_floats_and_blank_lines():
    text = "\ufeff1\t0.5   0.5 0.2 0.2\r\n\r\n  0 5e-1 0.50 .2 2E-1  \r\n"
    boxes = parse_yolo(text, "x.txt", 100, 100, 2)
    assert [b.class_id for b in boxes] == [1, 0]
    for box in boxes:
        assert box.xyxy() == pytest.approx((40, 40, 60, 60))


def test_lone_cr_line_endings_count_as_lines():
    with pytest.raises(FormatError) as info:
        parse_yolo("0 0.5 0.5 0.1 0.1\r0 0.5 0.5 nan 0.1\r", "old_mac.txt", 10, 10, 1)
    assert info.value.line == 2


def test_empty_file_means_labeled_with_nothing(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert read_yolo(path, 10, 10, 1) == []
    write_yolo(tmp_path / "out.txt", [], 10, 10)
    assert (tmp_path / "out.txt").read_bytes() == b""


@pytest.mark.parametrize("line, words", [
    ("3 0.5 0.5 0.1 0.1", "class id 3 is out of range"),
    ("0 nan 0.5 0.1 0.1", "not a finite number"),
    ("0 0.5 0.5 inf 0.1", "not a finite number"),
    ("0 0.5 0.5 -0.1 0.1", "negative box size"),
    ("0 0.5 0.5 0.1", "expected 5 fields"),
    ("0 0.5 0.5 0.1 0.1 0.9", "expected 5 fields"),
    ("cat 0.5 0.5 0.1 0.1", "not a whole number"),
    ("-1 0.5 0.5 0.1 0.1", "not a whole number"),
    ("1.5 0.5 0.5 0.1 0.1", "not a whole number"),
    ("0 0.5 half 0.1 0.1", "cy 'half' is not a number"),
])
def test_bad_lines_are_format_errors_naming_file_and_line(line, words):
    text = "0 0.5 0.5 0.1 0.1\n" + line + "\n"
    with pytest.raises(FormatError) as info:
        parse_yolo(text, "labels/img.txt", 100, 100, num_classes=3)
    err = info.value
    assert err.line == 2
    assert str(err).startswith("labels/img.txt:2: ")
    assert words in str(err)
    assert "\n" not in str(err)


def test_lenient_log_keeps_the_good_lines_and_lists_the_bad():
    log = ProblemLog(strict=False)
    text = "0 0.5 0.5 0.1 0.1\n9 0.5 0.5 0.1 0.1\n1 0.5 0.5 nan 0.1\n1 0.2 0.2 0.1 0.1\n"
    boxes = parse_yolo(text, "x.txt", 100, 100, 2, log)
    assert [b.class_id for b in boxes] == [0, 1]
    assert [e.line for e in log.errors] == [2, 3]
    assert all(isinstance(e, FormatError) for e in log.errors)


def test_class_written_as_float_is_accepted():
    assert parse_yolo("2.0 0.5 0.5 0.1 0.1", "x.txt", 10, 10, 3)[0].class_id == 2


def test_no_class_list_skips_the_range_check():
    assert parse_yolo("41 0.5 0.5 0.1 0.1", "x.txt", 10, 10, None)[0].class_id == 41


def test_box_sticking_out_is_clipped_with_a_warning():
    log = ProblemLog()
    boxes = parse_yolo("0 0.95 0.5 0.2 0.2\n", "x.txt", 100, 50, 1, log)
    assert boxes[0].xyxy() == pytest.approx((85, 20, 100, 30))
    assert len(log.warnings) == 1
    assert log.warnings[0].startswith("x.txt:1: ") and "clipped" in log.warnings[0]


def test_box_entirely_outside_is_an_error():
    with pytest.raises(FormatError, match="lies outside"):
        parse_yolo("0 1.5 0.5 0.2 0.2\n", "x.txt", 100, 100, 1)


def test_tiny_overhang_from_rounding_is_left_alone():
    log = ProblemLog()
    boxes = parse_yolo("0 0.999999 0.5 0.000004 0.1\n", "x.txt", 5000, 100, 1, log)
    assert log.warnings == []
    assert boxes[0].x2 > 5000  # unchanged, so the file writes back identically
    assert format_yolo(boxes, 5000, 100) == "0 0.999999 0.500000 0.000004 0.100000\n"


def test_unknown_image_size_is_an_error_not_a_crash():
    with pytest.raises(FormatError, match="image size"):
        parse_yolo("0 0.5 0.5 0.1 0.1", "x.txt", 0, 0, 1)


def test_non_utf8_file_is_a_format_error_naming_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"0 0.5 0.5 0.1 0.1\n\xe9\n")
    with pytest.raises(FormatError) as info:
        read_yolo(path, 10, 10, 1)
    assert info.value.line == 2 and str(path) in str(info.value)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        read_yolo(tmp_path / "nope.txt", 10, 10, 1)


def test_classes_file_round_trip_keeps_order_and_utf8_names(tmp_path):
    names = ["zèbre", "chat noir", "猫", "a"]
    path = tmp_path / "classes.txt"
    write_classes(path, names)
    assert path.read_text(encoding="utf-8") == "zèbre\nchat noir\n猫\na\n"
    assert read_classes(path).names == names


def test_classes_file_with_crlf_bom_and_trailing_blank_lines():
    classes = parse_classes("\ufeffdog\r\ncat \r\n\r\n\r\n", "classes.txt")
    assert classes.names == ["dog", "cat"]


def test_blank_line_inside_classes_is_an_error_since_it_shifts_ids():
    with pytest.raises(FormatError) as info:
        parse_classes("dog\n\ncat\n", "classes.txt")
    assert info.value.line == 2


def test_duplicate_class_name_is_an_error():
    with pytest.raises(FormatError) as info:
        parse_classes("dog\ncat\ndog\n", "classes.txt")
    assert info.value.line == 3 and "twice" in str(info.value)


def test_written_numbers_use_labelimg_format():
    text = format_yolo([Box(0, 0, 10, 5, 7)], 20, 10)
    assert text == "7 0.250000 0.250000 0.500000 0.500000\n"
    assert all(not math.isnan(float(v)) for v in text.split())


def test_detections_with_confidence_round_trip_and_bad_lines_name_the_line(tmp_path):
    import pytest

    from workbench.errors import FormatError
    from workbench.formats.yolo import format_yolo_detections, parse_yolo_detections
    from workbench.labels.dataset import Box

    boxes = [Box(10.0, 20.0, 110.0, 70.0, 2), Box(-5.0, 0.0, 30.0, 40.0, 0)]  # past the border
    text = format_yolo_detections(boxes, [0.9, 0.25], 200, 100)
    assert text.splitlines()[0] == "2 0.300000 0.450000 0.500000 0.500000 0.900000"
    back, scores = parse_yolo_detections(text, tmp_path / "p.txt", 200, 100, num_classes=3)
    assert scores == [0.9, 0.25]
    for a, b in zip(back, boxes, strict=True):
        assert a.class_id == b.class_id
        assert max(abs(u - v) for u, v in zip(a.xyxy(), b.xyxy(), strict=True)) < 1e-3
    for bad, where in (("0 0.5 0.5 0.1 0.1\n", "p.txt:1: expected 6 fields"),
                       ("0 0.5 0.5 0.1 0.1 0.3\n1 nan 0.5 0.1 0.1 0.2\n", "p.txt:2: NaN"),
                       ("5 0.5 0.5 0.1 0.1 0.3\n", "p.txt:1: class id 5")):
        with pytest.raises(FormatError, match=where):
            parse_yolo_detections(bad, tmp_path / "p.txt", 200, 100, num_classes=3)
    with pytest.raises(ValueError):
        format_yolo_detections(boxes, [0.5], 200, 100)
