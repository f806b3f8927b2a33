"""Pascal VOC XML: every labelImg field, the 1-based pixel convention, safe parsing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from data_factory import random_xyxy
from PIL import Image

from workbench.data.folder import open_dataset, save_labels
from workbench.errors import FormatError
from workbench.formats import ProblemLog
from workbench.formats.voc import format_voc, parse_voc, read_voc, voc_boxes, write_voc
from workbench.labels.dataset import Box, ClassList

# written by labelImg 1.8 (tab indented, verified attribute, every field)
LABELIMG_XML = (Path(__file__).parent / "data" / "labelimg_dog.xml").read_bytes()


def test_labelimg_file_reads_every_field():
    ann = parse_voc(LABELIMG_XML, "dog.xml")
    assert (ann.folder, ann.filename, ann.width, ann.height, ann.depth) == (
        "images", "dog.jpg", 640, 480, 3)
    assert ann.path.endswith("dog.jpg") and ann.verified
    dog, person = ann.objects
    assert (dog.name, dog.difficult, dog.truncated) == ("dog", True, False)
    assert (person.name, person.pose, person.truncated) == ("person", "Left", True)
    # 1-based inclusive pixels -> float pixel edges
    assert (dog.x1, dog.y1, dog.x2, dog.y2) == (47, 239, 195, 371)
    assert (person.x1, person.y1, person.x2, person.y2) == (0, 11, 640, 480)


def test_read_write_read_is_identical_and_keeps_labelimg_fields(tmp_path):
    ann = parse_voc(LABELIMG_XML, "dog.xml")
    classes = ClassList(["dog", "person"])
    boxes = voc_boxes(ann, classes, 640, 480, "dog.xml", ProblemLog())
    image = tmp_path / "dog.jpg"
    out = tmp_path / "dog.xml"
    write_voc(out, boxes, classes.names, image, 640, 480, verified=True)
    text = out.read_text()
    for tag in ("<folder>", "<filename>dog.jpg</filename>", "<path>", "<database>Unknown",
                "<segmented>0</segmented>", "<pose>Unspecified</pose>", "<truncated>",
                "<difficult>1</difficult>", '<annotation verified="yes">', "<depth>3</depth>"):
        assert tag in text
    again = read_voc(out)
    assert [(o.name, o.x1, o.y1, o.x2, o.y2, o.difficult) for o in again.objects] == [
        (o.name, o.x1, o.y1, o.x2, o.y2, o.difficult) for o in ann.objects]
    assert format_voc(voc_boxes(again, classes, 640, 480, out, ProblemLog()), classes.names,
                      image, 640, 480, verified=True) == out.read_bytes()


def test_boxes_round_trip_within_one_pixel():
    rng = random.Random(7)
    width, height = 333, 251
    boxes = [Box(*random_xyxy(rng, width, height), 0, rng.random() < 0.2) for _ in range(500)]
    data = format_voc(boxes, ["thing"], "/data/a.png", width, height)
    back = voc_boxes(parse_voc(data, "a.xml"), ClassList(["thing"]), width, height, "a.xml",
                     ProblemLog())
    assert len(back) == len(boxes)
    for a, b in zip(boxes, back, strict=True):
        assert max(abs(p - q) for p, q in zip(a.xyxy(), b.xyxy(), strict=True)) <= 1.0
        assert a.difficult == b.difficult


def test_whole_image_box_is_1_1_w_h():
    data = format_voc([Box(0, 0, 64, 48, 0)], ["x"], "a.jpg", 64, 48)
    assert b"<xmin>1</xmin>" in data and b"<ymin>1</ymin>" in data
    assert b"<xmax>64</xmax>" in data and b"<ymax>48</ymax>" in data


def test_float_coordinates_and_empty_optional_elements_are_accepted():
    xml = b"""<annotation><filename/><size><width>100</width><height>80</height>
      <depth/></size><object><name>cat</name><pose/><truncated/><difficult/>
      <bndbox><xmin>10.5</xmin><ymin>20.25</ymin><xmax>50.0</xmax><ymax>60.75</ymax>
      </bndbox></object></annotation>"""
    ann = parse_voc(xml, "a.xml")
    (obj,) = ann.objects
    assert (obj.x1, obj.y1, obj.x2, obj.y2) == (9.5, 19.25, 50.0, 60.75)
    assert obj.difficult is False and obj.pose == "Unspecified" and ann.depth == 3


def test_zero_based_writer_is_pinned_to_the_image_silently():
    xml = (b"<annotation><object><name>a</name><bndbox><xmin>0</xmin><ymin>0</ymin>"
           b"<xmax>10</xmax><ymax>10</ymax></bndbox></object></annotation>")
    log = ProblemLog()
    (box,) = voc_boxes(parse_voc(xml, "a.xml"), ClassList(["a"]), 20, 20, "a.xml", log)
    assert box.xyxy() == (0, 0, 10, 10) and log.warnings == []


def test_box_far_outside_is_clipped_with_a_warning():
    xml = (b"<annotation><object><name>a</name><bndbox><xmin>5</xmin><ymin>5</ymin>"
           b"<xmax>90</xmax><ymax>10</ymax></bndbox></object></annotation>")
    log = ProblemLog()
    (box,) = voc_boxes(parse_voc(xml, "a.xml"), ClassList(["a"]), 20, 20, "a.xml", log)
    assert box.xyxy() == (4, 4, 20, 10)
    assert "clipped" in log.warnings[0] and "<object[1]/bndbox>" in log.warnings[0]


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><object><name>&secret;</name><bndbox><xmin>1</xmin><ymin>1</ymin>
<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><folder>&lol3;</folder></annotation>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE annotation SYSTEM "http://example.invalid/voc.dtd">
<annotation><folder>x</folder></annotation>"""


@pytest.mark.parametrize("data", [XXE, LAUGHS, EXTERNAL_DTD], ids=["xxe", "laughs", "dtd"])
def test_voc_reader_rejects_dtd_and_entities(data):
    with pytest.raises(FormatError, match="DOCTYPE") as info:
        parse_voc(data, "evil.xml")
    assert "root:" not in str(info.value)  # the secret never shows up anywhere


@pytest.mark.parametrize("xml, element", [
    (b"<annotation><object><name>a</name></object></annotation>", "object[1]/bndbox"),
    (b"<annotation><object><bndbox/></object></annotation>", "object[1]/name"),
    (b"<annotation><object><name>a</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>2</xmax>"
     b"<ymax>2</ymax></bndbox></object></annotation>", "object[1]/bndbox/xmin"),
    (b"<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
     b"</bndbox></object></annotation>", "object[1]/bndbox/ymax"),
    (b"<annotation><object><name>a</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>2</xmax>"
     b"<ymax>nan</ymax></bndbox></object></annotation>", "object[1]/bndbox/ymax"),
    (b"<annotation><object><name>a</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>2</xmax>"
     b"<ymax>4</ymax></bndbox></object></annotation>", "object[1]/bndbox"),
    (b"<annotation><size><width>-3</width></size></annotation>", "size/width"),
    (b"<annotation><object><name>a</name><difficult>maybe</difficult><bndbox><xmin>1</xmin>"
     b"<ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
     "object[1]/difficult"),
    (b"<voc/>", "voc"),
])
def test_errors_name_the_file_and_the_element(xml, element):
    with pytest.raises(FormatError) as info:
        parse_voc(xml, "ann/a.xml")
    assert info.value.element == element
    assert str(info.value).startswith(f"ann/a.xml: <{element}>: ")


def test_malformed_xml_names_the_line():
    with pytest.raises(FormatError) as info:
        parse_voc(b"<annotation>\n<object>\n<name>a</nam>\n</annotation>", "a.xml")
    assert info.value.line == 3 and "malformed XML" in str(info.value)


def test_one_bad_object_does_not_lose_the_others_when_lenient():
    xml = (b"<annotation><object><name>a</name></object><object><name>b</name><bndbox>"
           b"<xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>"
           b"</annotation>")
    log = ProblemLog(strict=False)
    ann = parse_voc(xml, "a.xml", log)
    assert [o.name for o in ann.objects] == ["b"]
    assert log.errors[0].element == "object[1]/bndbox"


def test_unknown_class_names_are_noted_reported_and_adopted_only_on_request():
    classes = ClassList(["dog"])
    log = ProblemLog(strict=False)
    ann = parse_voc(LABELIMG_XML, "dog.xml")
    boxes = voc_boxes(ann, classes, 640, 480, "dog.xml", log)
    assert [b.class_id for b in boxes] == [0]
    assert classes.names == ["dog"] and classes.unknown == ["person"]
    assert "'person' is not in the class list" in str(log.errors[0])
    boxes = voc_boxes(ann, classes, 640, 480, "dog.xml", ProblemLog(), adopt_unknown=True)
    assert classes.names == ["dog", "person"] and [b.class_id for b in boxes] == [0, 1]


def _image(path, size=(64, 48)):
    Image.new("RGB", size, (90, 120, 30)).save(path)
    return path


def test_filename_and_path_pointing_outside_are_never_used_to_write(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _image(data / "a.jpg")
    (data / "classes.txt").write_text("a\n")
    victim = tmp_path / "victim.jpg"
    (data / "a.xml").write_bytes(
        b"<annotation><folder>..</folder><filename>../victim.jpg</filename>"
        b"<path>" + str(victim).encode() + b"</path><object><name>a</name><bndbox>"
        b"<xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
        b"</annotation>")
    dataset = open_dataset(data)
    (record,) = dataset.images
    assert dataset.label_format == "voc" and len(record.boxes) == 1
    written = save_labels(dataset, record, ("voc", "yolo"))
    assert sorted(p.name for p in written) == ["a.txt", "a.xml"]
    assert all(p.parent == data for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert b"<filename>a.jpg</filename>" in (data / "a.xml").read_bytes()


def test_size_disagreeing_with_the_image_is_reported():
    log = ProblemLog()
    ann = parse_voc(LABELIMG_XML, "dog.xml")
    voc_boxes(ann, ClassList(["dog", "person"]), 480, 640, "dog.xml", log)
    assert any("<size>" in w and "640x480" in w for w in log.warnings)
