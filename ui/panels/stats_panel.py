"""The statistics dock: boxes per class, labeled/verified progress, a box size histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.colors import class_color
from ui.session import LabelSession
from workbench.labels.dataset import Dataset

# box size = sqrt(width * height) in pixels; COCO's small/medium/large split at 32 and 96
SIZE_EDGES = (0, 8, 16, 32, 64, 96, 128, 256, 512, math.inf)


@dataclass
class DatasetStats:
    images: int = 0
    labeled: int = 0
    verified: int = 0
    problems: int = 0
    boxes: int = 0
    per_class: dict[int, int] = field(default_factory=dict)
    size_counts: list[int] = field(default_factory=lambda: [0] * (len(SIZE_EDGES) - 1))


def dataset_stats(dataset: Dataset) -> DatasetStats:
    stats = DatasetStats(images=len(dataset.images))
    for record in dataset.images:
        stats.labeled += bool(record.labeled or record.boxes)
        stats.verified += record.verified
        stats.problems += bool(record.problems)
        for box in record.boxes:
            stats.boxes += 1
            stats.per_class[box.class_id] = stats.per_class.get(box.class_id, 0) + 1
            size = math.sqrt(max(box.width, 0.0) * max(box.height, 0.0))
            for k in range(len(SIZE_EDGES) - 1):
                if size < SIZE_EDGES[k + 1]:
                    stats.size_counts[k] += 1
                    break
    return stats


class Histogram(QWidget):
    """Bars with their bin labels; nothing more."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.counts: list[int] = []
        self.labels: list[str] = []
        self.setMinimumHeight(110)

    def set_bars(self, counts: list[int], labels: list[str]) -> None:
        self.counts, self.labels = counts, labels
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if not self.counts:
            return
        w, h = self.width(), self.height()
        bar_w = w / len(self.counts)
        # shrink the labels' font until the widest fits under its bar (a narrow dock)
        font = painter.font()
        while (font.pointSizeF() > 6 and max(
                painter.fontMetrics().horizontalAdvance(t) for t in self.labels) > bar_w - 2):
            font.setPointSizeF(font.pointSizeF() - 0.5)
            painter.setFont(font)
        text_h = painter.fontMetrics().height()
        top = max(self.counts) or 1
        for i, (count, label) in enumerate(zip(self.counts, self.labels, strict=True)):
            bar_h = (h - 2 * text_h - 4) * count / top
            painter.fillRect(QRectF(i * bar_w + 2, h - text_h - bar_h, bar_w - 4, bar_h),
                             QColor("#1e88e5"))
            painter.setPen(self.palette().text().color())
            painter.drawText(QRectF(i * bar_w, h - text_h, bar_w, text_h),
                             Qt.AlignmentFlag.AlignCenter, label)
            painter.drawText(QRectF(i * bar_w, h - text_h - bar_h - text_h, bar_w, text_h),
                             Qt.AlignmentFlag.AlignCenter, str(count) if count else "")


class StatsPanel(QWidget):
    """Recomputed a moment after changes (not on every keystroke) and only when visible."""

    def __init__(self, session: LabelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.summary = QLabel()
        self.labeled_bar = QProgressBar()
        self.verified_bar = QProgressBar()
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Class", "Boxes"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.histogram = Histogram()
        form = QFormLayout()
        form.addRow("Labeled", self.labeled_bar)
        form.addRow("Verified", self.verified_bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(QLabel("Box size (√(w·h), pixels)"))
        layout.addWidget(self.histogram)
        self.stats = DatasetStats()
        self._timer = QTimer(self, singleShot=True, interval=300)
        self._timer.timeout.connect(self.refresh)
        for signal in (session.dataset_changed, session.classes_changed, session.record_changed):
            signal.connect(self.schedule)

    def schedule(self, *_: object) -> None:
        self._timer.start()

    def showEvent(self, event: object) -> None:
        super().showEvent(event)
        self.schedule()

    def refresh(self) -> None:
        dataset = self.session.dataset
        if dataset is None or not self.isVisible():
            return
        s = self.stats = dataset_stats(dataset)
        split = " / ".join(f"{part} {len(dataset.split[part])}"
                           for part in ("train", "valid", "test") if part in dataset.split)
        self.summary.setText(f"{s.images} images · {s.boxes} boxes · {s.problems} with problems"
                             + (f"\nsplit: {split}" if split else ""))
        for bar, value in ((self.labeled_bar, s.labeled), (self.verified_bar, s.verified)):
            bar.setMaximum(max(s.images, 1))
            bar.setValue(value)
            bar.setFormat(f"{value} / {s.images}")
        ids = sorted(set(s.per_class) | set(range(len(dataset.classes))))
        self.table.setRowCount(len(ids))
        for row, class_id in enumerate(ids):
            name = dataset.classes[class_id] if class_id < len(dataset.classes) else f"#{class_id}"
            item = QTableWidgetItem(name)
            item.setForeground(class_color(class_id))
            self.table.setItem(row, 0, item)
            count = QTableWidgetItem(str(s.per_class.get(class_id, 0)))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, count)
        labels = [f"<{e}" if e != math.inf else "more" for e in SIZE_EDGES[1:]]
        self.histogram.set_bars(s.size_counts, labels)
