"""The image list dock: filters (status, class, name), the list, and jump-to-number."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui.image_list import STATUSES, ImageFilter, ImageListModel
from ui.session import LabelSession


class ImagePanel(QWidget):
    picked = Signal(int)   # the user picked this source row (list click or jump)

    def __init__(self, session: LabelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.model = ImageListModel(session)
        self.filter = ImageFilter(self.model)
        self.name_edit = QLineEdit(placeholderText="Filter by file name")
        self.name_edit.setClearButtonEnabled(True)
        self.status_combo = QComboBox()
        self.status_combo.addItem("All images", None)
        for status in STATUSES:
            self.status_combo.addItem(status.capitalize(), status)
        self.class_combo = QComboBox()
        self.list = QListView()
        self.list.setModel(self.filter)
        self.list.setUniformItemSizes(True)  # 10,000 rows: no per-row size queries
        self.list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        # "JPEGImages/BloodImage_00012.jpg": the part that tells images apart is at the end
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # Ctrl+click toggles a row, Shift+click extends a range (Detect's "accept as labels
        # for selected images"); a plain click or the keys still show one image
        self.list.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.jump_spin = QSpinBox(minimum=1, maximum=1)
        self.jump_spin.setPrefix("#")
        go = QPushButton("Go")
        self.count_label = QLabel()

        row = QHBoxLayout()
        row.addWidget(self.status_combo)
        row.addWidget(self.class_combo)
        jump = QHBoxLayout()
        jump.addWidget(QLabel("Jump to"))
        jump.addWidget(self.jump_spin, 1)
        jump.addWidget(go)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.name_edit)
        layout.addLayout(row)
        layout.addWidget(self.list, 1)
        layout.addLayout(jump)
        layout.addWidget(self.count_label)

        self.name_edit.textChanged.connect(lambda text: self._filter_changed(name=text))
        self.status_combo.currentIndexChanged.connect(
            lambda _: self._filter_changed(status=self.status_combo.currentData()))
        self.class_combo.currentIndexChanged.connect(
            lambda _: self._filter_changed(class_id=self.class_combo.currentData()))
        self.list.selectionModel().currentChanged.connect(self._list_current_changed)
        go.clicked.connect(self.jump)
        self.jump_spin.editingFinished.connect(self.jump)
        session.dataset_changed.connect(self._dataset_changed)
        session.classes_changed.connect(self.refresh_classes)
        session.current_changed.connect(self.show_current)
        self._syncing = False

    def _dataset_changed(self) -> None:
        self.jump_spin.setMaximum(max(1, len(self.session)))
        self._clear_filters()   # the last folder's filters mean nothing in this one
        self.refresh_classes()
        self.refilter()

    def _clear_filters(self) -> None:
        for widget in (self.name_edit, self.status_combo, self.class_combo):
            widget.blockSignals(True)
        self.name_edit.clear()
        self.status_combo.setCurrentIndex(0)
        self.class_combo.setCurrentIndex(0)
        for widget in (self.name_edit, self.status_combo, self.class_combo):
            widget.blockSignals(False)
        # refilter() applies them, with the list's own moves kept from picking an image
        self.filter.status, self.filter.class_id, self.filter.name = None, None, ""

    def refresh_classes(self) -> None:
        current = self.class_combo.currentData()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("All classes", None)
        if self.session.dataset is not None:
            for i, name in enumerate(self.session.dataset.classes):
                self.class_combo.addItem(f"{i + 1}: {name}", i)
        found = self.class_combo.findData(current)
        self.class_combo.setCurrentIndex(max(found, 0))
        self.class_combo.blockSignals(False)
        self.filter.class_id = self.class_combo.currentData()

    def _filter_changed(self, **changes: object) -> None:
        self._syncing = True  # the view moving its current row is not the user picking
        try:
            self.filter.set_filters(**changes)  # type: ignore[arg-type]
        finally:
            self._syncing = False
        self._update_count()
        self.show_current(self.session.index)

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.filter.rowCount()} shown of {len(self.session)} images")

    def show_current(self, row: int) -> None:
        """Select the session's current image in the list without re-triggering a pick."""
        proxy = self.filter.mapFromSource(self.model.index(row, 0))
        self._syncing = True
        try:
            if proxy.isValid() and proxy == self.list.currentIndex():
                # the list itself moved here (click, Ctrl/Shift+click, arrows): the
                # selection it made is the user's, as in a file manager
                self.list.scrollTo(proxy)
            elif proxy.isValid():
                # through the view, so its Shift+click anchor moves here too (D/A, jump)
                self.list.setCurrentIndex(proxy)
                self.list.selectionModel().select(
                    proxy, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self.list.scrollTo(proxy)
            else:
                # no current row either: Qt would make the first row current, and a click
                # on it (the first or only result of a filter) would change nothing
                self.list.selectionModel().setCurrentIndex(
                    QModelIndex(), QItemSelectionModel.SelectionFlag.Clear)
        finally:
            self._syncing = False
        if row >= 0:
            self.jump_spin.setValue(row + 1)

    def _list_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._syncing or not current.isValid():
            return
        self.picked.emit(self.filter.mapToSource(current).row())

    def jump(self) -> None:
        row = self.jump_spin.value() - 1
        if 0 <= row < len(self.session) and row != self.session.index:
            self.picked.emit(row)

    def refilter(self) -> None:
        """Apply the filters again (after edits changed statuses or classes)."""
        self._syncing = True
        try:
            self.filter.refilter()
        finally:
            self._syncing = False
        self._update_count()
        self.show_current(self.session.index)
