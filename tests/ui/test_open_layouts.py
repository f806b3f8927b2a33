"""The GUI's Open folder reads a data set as it comes (here a VOC devkit) and saves edits
back in its layout."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.data.folder import open_dataset

BCCD_MINI = Path(__file__).parent.parent / "data" / "bccd_mini"


def test_open_folder_reads_a_voc_devkit_and_saves_into_annotations(open_window, tmp_path):
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    w = open_window(root)
    dataset = w.session.dataset
    assert dataset.layout.kind == "voc-devkit"
    assert len(dataset.images) == 6 and all(r.labeled for r in dataset.images)
    assert "voc-devkit layout" in w.statusBar().currentMessage()
    assert w.session.formats == ("voc",)
    w.stats.show()
    w.stats.refresh()
    assert "split: train 2 / valid 2 / test 2" in w.stats.summary.text()
    w.session.add_box((10, 10, 50, 50))
    w.close()
    assert not list((root / "JPEGImages").glob("*.xml"))
    boxes = [b.xyxy() for b in open_dataset(root).images[0].boxes]
    assert (10, 10, 50, 50) in boxes


def test_open_images_folder_says_where_the_labels_are(open_window, tmp_path):
    root = tmp_path / "cells"
    (root / "images").mkdir(parents=True)
    shutil.copytree(BCCD_MINI / "Annotations", root / "annotations")
    for jpg in (BCCD_MINI / "JPEGImages").iterdir():
        shutil.copy(jpg, root / "images")
    w = open_window(root / "images")
    assert "not beside the images" in w.statusBar().currentMessage()
