"""Fuzzing every reader: random bytes and random lines give a FormatError or a result, fast.

Nothing else may come out (no ValueError, IndexError, UnicodeError, lxml or json errors),
and each example must finish within the deadline.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.data.darknet_layout import read_obj_data
from workbench.data.folder import open_dataset
from workbench.errors import FormatError
from workbench.formats import ProblemLog, decode_text
from workbench.formats.coco import parse_coco, parse_coco_results
from workbench.formats.voc import parse_voc, voc_boxes
from workbench.formats.yolo import parse_classes, parse_yolo
from workbench.labels.dataset import ClassList

pytestmark = pytest.mark.slow  # about 15 s in all on a busy 2-core machine

FUZZ = settings(max_examples=150, deadline=timedelta(milliseconds=1000),
                suppress_health_check=[HealthCheck.too_slow])

NUMBERS = st.one_of(
    st.sampled_from(["0", "1", "-1", "0.5", "nan", "NaN", "inf", "-inf", "1e999", "1e-999",
                     "2.0", "+3", "0x10", "1_0", "٣", "", ".", "-0", "99999999999999999999"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10, 10**12).map(str),
    st.text(max_size=6),
)
SEPARATORS = st.sampled_from([" ", "\t", "  ", "\u00a0", "\x0b", " \r"])
FIELD = st.tuples(SEPARATORS, NUMBERS).map("".join)
CLASS_IDS = st.one_of(st.integers(-1, 5).map(str), st.sampled_from(["1.0", "+2", "3.5", "x"]))
VALUES = st.one_of(st.floats(-0.5, 1.5).map(lambda v: f"{v:.6f}"), NUMBERS)
# mostly well-formed lines (so the deeper checks are reached), some with random fields
GOOD_LINE = st.tuples(CLASS_IDS, VALUES, VALUES, VALUES, VALUES).map(" ".join)
RANDOM_LINE = st.lists(FIELD, max_size=7).map("".join)
LINES = st.lists(st.one_of(GOOD_LINE, RANDOM_LINE), max_size=12).map("\n".join)
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


def _only_format_errors(call):
    try:
        call()
    except FormatError as err:
        text = str(err)
        assert text and "\n" not in text  # one line, naming the file
        assert "fuzz" in text


# --- YOLO -------------------------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=2000), st.integers(0, 5000), st.integers(0, 5000))
def test_yolo_random_bytes(data, width, height):
    _only_format_errors(lambda: parse_yolo(decode_text(data, "fuzz.txt"), "fuzz.txt", width,
                                           height, 3))


@FUZZ
@given(LINES, ENDINGS, st.integers(1, 4000), st.integers(1, 4000), st.booleans())
def test_yolo_random_lines(text, ending, width, height, strict):
    log = ProblemLog(strict=strict)

    def call():
        boxes = parse_yolo(text.replace("\n", ending), "fuzz.txt", width, height, 4, log)
        for box in boxes:  # what comes out is always usable
            assert all(math.isfinite(v) for v in box.xyxy())
            assert 0 <= box.class_id < 4 and box.x2 >= box.x1 and box.y2 >= box.y1
    _only_format_errors(call)
    assert all(isinstance(e, FormatError) for e in log.errors)


@FUZZ
@given(st.one_of(st.binary(max_size=500).map(lambda b: b.decode("utf-8", "replace")), LINES))
def test_classes_random_text(text):
    _only_format_errors(lambda: parse_classes(text, "fuzz/classes.txt"))


# --- VOC --------------------------------------------------------------------------------------

VOC_TEMPLATE = ("<annotation{verified}><filename>{text}</filename><size><width>{w}</width>"
                "<height>{h}</height><depth>{d}</depth></size>{objects}</annotation>")
OBJECT = ("<object><name>{name}</name><difficult>{diff}</difficult><bndbox><xmin>{a}</xmin>"
          "<ymin>{b}</ymin><xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>")
XML_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<&"),
                   max_size=8)
XML_VALUE = st.one_of(NUMBERS.map(lambda v: v.replace("<", "").replace("&", "")), XML_TEXT)


@st.composite
def voc_documents(draw) -> bytes:
    objects = "".join(
        OBJECT.format(name=draw(XML_TEXT), diff=draw(XML_VALUE), a=draw(XML_VALUE),
                      b=draw(XML_VALUE), c=draw(XML_VALUE), e=draw(XML_VALUE))
        for _ in range(draw(st.integers(0, 4))))
    text = VOC_TEMPLATE.format(verified=draw(st.sampled_from(["", ' verified="yes"'])),
                               text=draw(XML_TEXT), w=draw(XML_VALUE), h=draw(XML_VALUE),
                               d=draw(XML_VALUE), objects=objects)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # then damage it
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=20)) + data[cut + draw(st.integers(0, 5)):]
    return data


@FUZZ
@given(st.binary(max_size=2000))
def test_voc_random_bytes(data):
    _only_format_errors(lambda: parse_voc(data, "fuzz.xml"))


@FUZZ
@given(voc_documents(), st.integers(0, 3000), st.integers(0, 3000), st.booleans())
def test_voc_random_documents(data, width, height, adopt):
    log = ProblemLog(strict=False)

    def call():
        ann = parse_voc(data, "fuzz.xml", log)
        for box in voc_boxes(ann, ClassList(["a"]), width, height, "fuzz.xml", log,
                             adopt_unknown=adopt):
            assert all(math.isfinite(v) for v in box.xyxy())
    _only_format_errors(call)


# --- COCO -------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20)
SMALL = st.one_of(st.integers(-2, 3), st.floats(allow_nan=False, allow_infinity=False),
                  st.text(max_size=3), st.none(), st.booleans(),
                  st.lists(st.integers(-2, 50), max_size=5))


@st.composite
def coco_documents(draw) -> bytes:
    def item(keys):
        return {k: draw(SMALL) for k in keys if draw(st.integers(0, 9))}
    few = st.sampled_from([0, 0, 0, 1, 2])  # random images/categories stop the parse early
    doc = {"images": [item(["id", "file_name", "width", "height"]) for _ in range(draw(few))],
           "annotations": [item(["id", "image_id", "category_id", "bbox", "iscrowd"])
                           for _ in range(draw(st.integers(0, 4)))],
           "categories": [item(["id", "name"]) for _ in range(draw(few))]}
    for ann in doc["annotations"]:  # often valid-looking, so the deeper checks are reached
        if draw(st.booleans()):
            ann.update(image_id=1, category_id=1)
        if draw(st.booleans()):
            ann["bbox"] = draw(st.lists(st.floats(-10, 1e6, allow_nan=False), min_size=3,
                                        max_size=5))
    if draw(st.integers(0, 4)):  # usually one good image and category to point at
        doc["images"].append({"id": 1, "file_name": "a.jpg", "height": 70,
                              "width": draw(st.sampled_from([640, 640, 640, 0, -1]))})
        doc["categories"].append({"id": 1, "name": draw(st.sampled_from(["a", "a", "a", " "]))})
    return json.dumps(doc).encode()


@FUZZ
@given(st.one_of(st.binary(max_size=1000), JSON_VALUES.map(lambda v: json.dumps(v).encode())))
def test_coco_random_bytes_and_json(data):
    _only_format_errors(lambda: parse_coco(data, "fuzz.json"))
    _only_format_errors(lambda: parse_coco_results(data, "fuzz.json"))


@FUZZ
@given(coco_documents(), st.booleans())
def test_coco_random_documents(data, strict):
    log = ProblemLog(strict=strict)

    def call():
        _, records = parse_coco(data, "fuzz.json", log)
        for record in records.values():
            assert record.width > 0 and record.height > 0
            for box in record.boxes:
                assert all(math.isfinite(v) for v in box.xyxy())
    _only_format_errors(call)


@FUZZ
@given(st.lists(st.fixed_dictionaries({}, optional={
    "image_id": SMALL, "category_id": SMALL, "bbox": SMALL, "score": SMALL}), max_size=4))
def test_coco_results_random_rows(rows):
    _only_format_errors(lambda: parse_coco_results(json.dumps(rows).encode(), "fuzz.json"))


# --- files on disk: obj.data and a whole dataset folder ---------------------------------------

@FUZZ
@given(st.binary(max_size=500))
def test_obj_data_random_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.data"
        path.write_bytes(data)
        _only_format_errors(lambda: read_obj_data(path))


@functools.cache
def _fuzz_folder() -> Path:
    """One folder reused by every example (a tmp_path per example would be far slower)."""
    folder = Path(tempfile.mkdtemp(prefix="fuzz-dataset-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    Image.new("RGB", (40, 30)).save(folder / "a.jpg")
    return folder


@settings(max_examples=60, deadline=timedelta(milliseconds=2000),
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), LINES, voc_documents(), coco_documents(), st.binary(max_size=60))
def test_open_dataset_never_raises_for_bad_label_files(txt, classes, xml, coco, split):
    folder = _fuzz_folder()
    (folder / "a.txt").write_bytes(txt)
    (folder / "classes.txt").write_text(classes, encoding="utf-8", errors="surrogatepass")
    (folder / "a.xml").write_bytes(xml)
    (folder / "annotations.json").write_bytes(coco)
    (folder / "train.txt").write_bytes(split)
    for fmt in ("auto", "voc", "coco"):
        dataset = open_dataset(folder, fmt)
        assert len(dataset.images) == 1
        assert all(isinstance(p, FormatError) for p in dataset.problems)
