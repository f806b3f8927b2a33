"""The default layout at 1280x800 and 1024x700: no dock makes the window taller than the
screen, and the Train dock's fields and table headers are not cut (issue 13, bug 2)."""

from __future__ import annotations

import pytest

from ui.main_window import MainWindow


def fully_visible(widget) -> bool:
    """Every pixel of the widget is on screen inside its window (not clipped by a parent)."""
    return widget.isVisible() and widget.visibleRegion().boundingRect() == widget.rect()


@pytest.mark.parametrize("size", [(1280, 800), (1024, 700)])
def test_docks_never_make_the_window_taller_than_the_screen(qtbot, size):
    width, height = size
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.resize(width, height)
    qtbot.waitExposed(w)
    for key in ("train", "inspect", "evaluate"):
        w.docks[key].show()
        w.docks[key].raise_()
        qtbot.wait(20)
        assert w.minimumSizeHint().height() <= height, key
        assert w.height() <= height and w.width() <= width, key
    w.docks["train"].raise_()
    qtbot.wait(20)
    trainer = w.trainer
    assert fully_visible(trainer.run_dir)
    header = trainer.table.horizontalHeader()
    last = header.count() - 1
    assert [trainer.table.horizontalHeaderItem(i).text().replace("\n", "")
            for i in (last - 1, last)] == [
        "mAP@0.5", "mAP@.5:.95"]
    assert header.sectionSize(last) >= header.sectionSizeHint(last)
    assert header.sectionViewportPosition(last) + header.sectionSize(last) \
        <= trainer.table.viewport().width()
    for key in ("train", "inspect", "evaluate"):
        w.docks[key].hide()
    qtbot.wait(20)
    assert w.height() <= height
    w.close()
