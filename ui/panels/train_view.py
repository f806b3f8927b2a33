"""What the Train dock shows of a run: the per-epoch table and plot, and its texts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from ui.plot_view import PlotView
from workbench.evaluation.plots import draw_training
from workbench.progress import duration
from workbench.train import events as ev

# the two mAP headers on two lines: on one they alone take a 400 px dock's spare width
TABLE_COLUMNS = ("Epoch", "Loss", "Box", "Obj", "Cls", "lr", "mAP\n@0.5", "mAP\n@.5:.95")
COLUMN_TIPS = ("Epoch", "Total loss (mean over the epoch)", "Box regression loss",
               "Objectness loss", "Class loss", "Learning rate at the epoch's end",
               "mAP@0.5 on the validation images", "mAP@[.5:.95] on the validation images")
DONE_WORDS = {"finished": "Finished", "early_stopped": "Stopped early (no better mAP)",
              "interrupted": "Interrupted"}


def number(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or value is ev.ABSENT else format(value, spec)


def short_number(value: float | None) -> str:
    """A loss in at most 5-6 characters (4 significant digits): the table's eight columns
    fit the dock without scrolling sideways; the cell's tooltip has every digit."""
    if value is None or value is ev.ABSENT:
        return "-"
    size = abs(value)
    return format(value, ".0f" if size >= 1000 else ".1f" if size >= 100 else
                  ".2f" if size >= 10 else ".3f")


def short_rate(value: float | None) -> str:
    """A learning rate as ``2.5e-4``: Python's ``2.5e-04`` spends two characters on nothing."""
    if value is None or value is ev.ABSENT:
        return "-"
    mantissa, exponent = format(value, ".1e").split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def last_line(text: str) -> str:
    """The last non-empty line: the one-line message of a failed child."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def start_text(e: ev.Started) -> str:
    resumed = " (resumed)" if e.resumed else ""
    text = (f"Training{resumed}: {e.get('images_train')} images, {e.get('images_valid')} for "
            f"validation, {len(e.classes or [])} classes, "
            f"{e.get('width')}×{e.get('height')}")
    if e.skipped_images:  # named before training, one per line in the tooltip
        text += f"; {len(e.skipped_images)} image(s) left out: they do not decode"
    return text


def step_text(e: ev.StepProgress) -> str:
    return (f"epoch {e.get('epoch')} step {int(e.get('step', 0))} · loss {number(e.loss)} "
            f"(box {number(e.box)} obj {number(e.obj)} cls {number(e.cls)}) · "
            f"lr {number(e.lr, '.2e')} · {number(e.images_per_s, '.1f')} img/s · "
            f"ETA {duration(e.get('eta_s'))}")


def epoch_status(e: ev.EpochEnded) -> str:
    return (f"Training: epoch {e.get('epoch')} mAP@0.5 {number(e.val_map50, '.4f')} (best "
            f"{number(e.best_map50, '.4f')}), ETA {duration(e.get('eta_s'))}")


def done_text(e: ev.Finished, bundle: str) -> str:
    status = e.get("status")
    text = (f"{DONE_WORDS.get(status, status)} at epoch {e.get('epoch')}: best "
            f"mAP@0.5 {number(e.best_map50, '.4f')}, mAP@[.5:.95] "
            f"{number(e.best_map50_95, '.4f')} (epoch {e.get('best_epoch')})")
    if status == "interrupted":
        text += " · Start again to resume"
    return text + (f"\nModel bundle: {bundle}" if bundle else "\nNo model exported yet.")


class EpochTable(QTableWidget):
    """One row per epoch: losses, learning rate, validation mAP."""

    KEYS = ("epoch", "loss", "box", "obj", "cls", "lr", "val_map50", "val_map50_95")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(TABLE_COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        for column, tip in enumerate(COLUMN_TIPS):
            self.horizontalHeaderItem(column).setToolTip(tip)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # the last takes what is left: a stretched last section sized to contents kept an
        # old width and pushed the table a few pixels past the dock
        header.setSectionResizeMode(len(TABLE_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)

    def add_epoch(self, e: ev.EpochEnded) -> None:
        row = self.rowCount()
        self.insertRow(row)
        cells = (str(e.get("epoch")), short_number(e.loss), short_number(e.box),
                 short_number(e.obj), short_number(e.cls), short_rate(e.lr),
                 number(e.val_map50, ".4f"), number(e.val_map50_95, ".4f"))
        for column, (key, text) in enumerate(zip(self.KEYS, cells, strict=True)):
            item = QTableWidgetItem(text)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(f"{key}: {e.get(key)}")   # every digit the trainer sent
            self.setItem(row, column, item)
        self.scrollToBottom()


class MetricsPlot(PlotView):
    """Loss parts per epoch (log scale) and validation mAP@0.5, drawn by matplotlib
    (``workbench.evaluation.plots.draw_training``, the same drawing as the run's metrics.png)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self._draw_rows, parent, min_height=90)
        self.rows: list = []

    def _draw_rows(self, figure) -> None:
        draw_training(figure, self.rows)

    def set_rows(self, rows: list) -> None:
        self.rows = rows
        self.redraw()
