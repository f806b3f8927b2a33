"""The image list: a thin Qt model over the session's dataset, and its filter.

Nothing is decoded here: a row needs only the record (name, labels, flags), so 10,000
images open at once.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPixmap

from ui.session import LabelSession
from workbench.labels.dataset import ImageRecord

NOT_LABELED = "not labeled"
LABELED = "labeled"
VERIFIED = "verified"
PROBLEMS = "has problems"
STATUSES = (NOT_LABELED, LABELED, VERIFIED, PROBLEMS)
STATUS_COLORS = {NOT_LABELED: "#9e9e9e", LABELED: "#1e88e5", VERIFIED: "#43a047",
                 PROBLEMS: "#e53935"}

StatusRole = Qt.ItemDataRole.UserRole + 1
RowRole = Qt.ItemDataRole.UserRole + 2


def image_status(record: ImageRecord) -> str:
    if record.problems:
        return PROBLEMS
    if record.verified:
        return VERIFIED
    return LABELED if record.labeled or record.boxes else NOT_LABELED


def _dot(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(color))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


class ImageListModel(QAbstractListModel):
    """One row per image of the session's dataset: number, name, status dot, unsaved mark."""

    def __init__(self, session: LabelSession) -> None:
        super().__init__(session)
        self.session = session
        self._icons = {status: _dot(color) for status, color in STATUS_COLORS.items()}
        self._bold = QFont()
        self._bold.setBold(True)
        session.dataset_changed.connect(self._reset)
        session.record_changed.connect(self.refresh_row)
        session.current_changed.connect(self._current_changed)
        self._last_current = -1

    def _reset(self) -> None:
        self.beginResetModel()
        self._last_current = -1
        self.endResetModel()

    def refresh_row(self, row: int) -> None:
        if 0 <= row < self.rowCount():
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def _current_changed(self, row: int) -> None:
        self.refresh_row(self._last_current)
        self._last_current = row
        self.refresh_row(row)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self.session.dataset is None:
            return 0
        return len(self.session.dataset.images)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or self.session.dataset is None:
            return None
        row = index.row()
        record = self.session.dataset.images[row]
        if role == Qt.ItemDataRole.DisplayRole:
            mark = " *" if self.session.is_dirty(row) else ""
            return f"{row + 1}. {self.session.dataset.relative_path(record)}{mark}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icons[image_status(record)]
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [str(record.path), image_status(record), f"{len(record.boxes)} boxes"]
            return "\n".join(lines + record.problems)
        if role == Qt.ItemDataRole.FontRole and row == self.session.index:
            return self._bold
        if role == Qt.ItemDataRole.ForegroundRole and record.problems:
            return QBrush(QColor(STATUS_COLORS[PROBLEMS]))
        if role == StatusRole:
            return image_status(record)
        if role == RowRole:
            return row
        return None


class ImageFilter(QSortFilterProxyModel):
    """Filters rows by status, by a class present in the image and by a name fragment.

    Re-filtered only when a filter changes or the caller asks (not on every edit), so the
    image being labeled does not vanish from under the annotator.
    """

    def __init__(self, model: ImageListModel) -> None:
        super().__init__(model)
        self.setSourceModel(model)
        self.setDynamicSortFilter(False)
        self._session = model.session
        self.status: str | None = None
        self.class_id: int | None = None
        self.name = ""

    def set_filters(self, *, status: str | None = ..., class_id: int | None = ...,  # type: ignore[assignment]
                    name: str | None = None) -> None:
        if status is not ...:
            self.status = status
        if class_id is not ...:
            self.class_id = class_id
        if name is not None:
            self.name = name.strip().lower()
        self.refilter()

    def refilter(self) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter is deprecated
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int,
                         source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        dataset = self._session.dataset
        if dataset is None:
            return False
        record = dataset.images[source_row]
        if self.status is not None and image_status(record) != self.status:
            return False
        if self.class_id is not None and all(b.class_id != self.class_id for b in record.boxes):
            return False
        return not self.name or self.name in str(dataset.relative_path(record)).lower()

    def source_rows(self) -> list[int]:
        return [self.mapToSource(self.index(r, 0)).row() for r in range(self.rowCount())]

    def neighbour(self, current: int, step: int) -> int | None:
        """The source row ``step`` rows away from ``current`` in the filtered order.

        When ``current`` is filtered out, the nearest shown row in that direction.
        """
        proxy = self.mapFromSource(self.sourceModel().index(current, 0))
        if proxy.isValid():
            row = proxy.row() + step
            if 0 <= row < self.rowCount():
                return self.mapToSource(self.index(row, 0)).row()
            return None
        rows = self.source_rows()
        after = [r for r in rows if r > current] if step > 0 else [r for r in rows if r < current]
        if not after:
            return None
        return after[0] if step > 0 else after[-1]
