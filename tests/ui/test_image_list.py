"""The image list: lazy over 10,000 images, statuses, filters, jump, navigation in the filter."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt

from ui.image_list import (
    NOT_LABELED,
    PROBLEMS,
    VERIFIED,
    ImageFilter,
    ImageListModel,
    StatusRole,
    image_status,
)
from ui.session import LabelSession
from workbench.labels.dataset import Box, ClassList, Dataset, ImageRecord


def test_ten_thousand_images_list_and_filter_without_decoding(tmp_path, qtbot):
    # the image files do not even exist: a row needs only its record
    records = [ImageRecord(tmp_path / f"im_{i:05d}.jpg", 4000, 3000,
                           [Box(1, 1, 9, 9, i % 3)] if i % 2 else [], labeled=bool(i % 2),
                           verified=i % 10 == 1) for i in range(10_000)]
    session = LabelSession()
    model = ImageListModel(session)
    proxy = ImageFilter(model)
    start = time.perf_counter()
    session.set_dataset(Dataset(tmp_path, ClassList(["a", "b", "c"]), records))
    assert model.rowCount() == 10_000 and proxy.rowCount() == 10_000
    assert model.data(model.index(9_999), Qt.ItemDataRole.DisplayRole) == "10000. im_09999.jpg"
    proxy.set_filters(status=NOT_LABELED)
    assert proxy.rowCount() == 5_000
    proxy.set_filters(status=VERIFIED, class_id=1)
    assert proxy.source_rows() == [i for i in range(10_000)
                                   if i % 10 == 1 and i % 3 == 1]
    proxy.set_filters(status=None, class_id=None, name="im_0999")
    assert proxy.rowCount() == 10
    assert time.perf_counter() - start < 3.0


def test_status_per_image():
    assert image_status(ImageRecord(Path("a.jpg"))) == NOT_LABELED
    assert image_status(ImageRecord(Path("a.jpg"), labeled=True)) == "labeled"
    assert image_status(ImageRecord(Path("a.jpg"), labeled=True, verified=True)) == VERIFIED
    assert image_status(ImageRecord(Path("a.jpg"), problems=["x"], verified=True)) == PROBLEMS


def test_filter_by_status_and_navigate_inside_it(open_window, demo, qtbot):
    for stem in ("img_00001", "img_00004"):
        (demo / f"{stem}.txt").unlink()
    w = open_window(demo)
    panel = w.images
    panel.status_combo.setCurrentIndex(panel.status_combo.findData(NOT_LABELED))
    assert panel.filter.source_rows() == [1, 4]
    assert "2 shown of 6" in panel.count_label.text()
    assert w.next_image() and w.session.index == 1       # 0 is filtered out: nearest after
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)
    assert w.session.index == 4
    assert not w.next_image()                            # end of the filtered list
    assert panel.model.data(panel.model.index(4), StatusRole) == NOT_LABELED


def test_filter_by_class_and_name_and_jump(open_window, demo, qtbot):
    w = open_window(demo)
    panel = w.images
    panel.class_combo.setCurrentIndex(panel.class_combo.findData(3))
    expected = [i for i, r in enumerate(w.session.dataset.images)
                if any(b.class_id == 3 for b in r.boxes)]
    assert panel.filter.source_rows() == expected
    panel.class_combo.setCurrentIndex(0)
    panel.name_edit.setText("00005")
    assert panel.filter.source_rows() == [5]
    panel.name_edit.clear()
    panel.jump_spin.setValue(5)
    panel.jump()
    assert w.session.index == 4
