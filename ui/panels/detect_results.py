"""The Detect dock's results: the open data set's prediction sets, drawn over the canvas
(labels, predictions or both, filtered by class and score), accepted as labels for the
selected images (one undoable edit per image) and exported in every format ``detect``
writes. A mixin of :class:`ui.panels.detect_panel.DetectPanel`, whose widgets
(``ui.panels.detect_form``) and signals it uses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtGui import QColor

from ui import workers
from ui.canvas.items import BoxItem
from ui.colors import class_color
from ui.folder_dialog import NewFolderDialog
from ui.geometry import clip
from ui.panels.detect_jobs import export_job
from ui.session import MIN_BOX, Proposal
from workbench.predictions import sets as sets


class SetResults:
    """Sets, overlay, accept and export of the Detect dock (see the module)."""

    def refresh_sets(self, select: str | None = None) -> None:
        """List the sets again and read the chosen one anew (a run may have replaced it)."""
        self._fill_sets(select or self.sets.currentData())
        self._set_changed()

    def sets_changed_on_disk(self) -> None:
        """A set appeared or went (``detect --out``, another window, a file manager): list
        them again; the chosen set and its filters stay unless it is gone."""
        current = self.sets.currentData()
        self._fill_sets(current)
        if self.sets.currentData() != current:
            self._set_changed()

    def _fill_sets(self, current: str | None) -> None:
        dataset = self.session.dataset
        names = sets.list_sets(dataset.root) if dataset is not None else []
        self.sets.blockSignals(True)
        self.sets.clear()
        self.sets.addItem("(none)", None)
        for name in names:
            self.sets.addItem(name, name)
        index = self.sets.findData(current) if current else 0
        self.sets.setCurrentIndex(max(index, 0))
        self.sets.blockSignals(False)

    def set_dir(self) -> Path | None:
        dataset, name = self.session.dataset, self.sets.currentData()
        if dataset is None or not name:
            return None
        return sets.set_folder(dataset.root, name)

    def _set_changed(self) -> None:
        folder = self.set_dir()
        self._set_names, self._set_renamed = [], {}
        if folder is not None:
            try:
                self._set_names = sets.read_names(folder)
                if (folder / sets.INFO_FILE).exists():   # detect --out writes none: no renames
                    self._set_renamed = sets.read_info(folder).renamed
            except Exception as exc:  # noqa: BLE001 - one line; the set stays listed
                self.status.emit(f"Prediction set {folder}: {exc}")
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All classes", None)
        for i, name in enumerate(self._set_names):
            self.class_filter.addItem(name, i)
        self.class_filter.blockSignals(False)
        has_set = folder is not None
        for widget in (self.show_mode, self.class_filter, self.min_score, self.export_button,
                       self.export_format, self.export_images, self.accept_button):
            widget.setEnabled(has_set)
        self.refresh_overlay()

    def predictions(self, row: int | None = None) -> list[tuple]:
        """(Box with the set's class id, score, class name) of image ``row`` that pass the
        class and score filters; [] without a set or a prediction file."""
        folder, dataset = self.set_dir(), self.session.dataset
        row = self.session.index if row is None else row
        if folder is None or dataset is None or not 0 <= row < len(dataset.images):
            return []
        record = dataset.images[row]
        rel = sets.relative_to_root(record.path, dataset.root)
        try:
            found = sets.read_predictions(folder, rel, record.width, record.height,
                                          len(self._set_names) or None, self._set_renamed)
        except Exception as exc:  # noqa: BLE001 - a damaged file: say so, show nothing
            self.status.emit(str(exc))
            return []
        if found is None:
            return []
        wanted, low = self.class_filter.currentData(), self.min_score.value()
        out = []
        for box, score in zip(found.boxes, found.scores, strict=True):
            if (wanted is None or box.class_id == wanted) and score >= low:
                name = (self._set_names[box.class_id] if box.class_id < len(self._set_names)
                        else f"#{box.class_id}")
                out.append((box, score, name))
        return out

    def refresh_overlay(self) -> None:
        """Draw the chosen set's predictions of the current image over the canvas."""
        scene = self.canvas.scene()
        for item in self._items:
            scene.removeItem(item)
        self._items = []
        mode = self.show_mode.currentData() if self.set_dir() is not None else "labels"
        self.canvas.set_labels_visible(mode != "predictions")
        if mode != "labels":
            names = self.session.dataset.classes.names if self.session.dataset else []
            for box, score, name in self.predictions():
                if self.canvas.overlay.shows(box.xyxy(), name):
                    continue   # Inspect draws this box already (solid, with its score)
                color = class_color(names.index(name)) if name in names else QColor("white")
                item = BoxItem(proposal=True)
                item.show_box(box.xyxy(), color, f"{name} {score:.2f}")
                item.label.setPos(box.x1, box.y2)   # under the box: the label's tag is on top
                item.setZValue(3)
                scene.addItem(item)
                self._items.append(item)
        self.overlay_changed.emit()

    def overlay_count(self) -> int:
        return len(self._items)

    # --- results: accept, export --------------------------------------------------------
    def accept_selected(self) -> int:
        """The filtered predictions of each selected image become its labels: one undoable
        edit per image (saved at once with autosave). Returns the number of boxes added."""
        dataset = self.session.dataset
        if dataset is None or self.set_dir() is None:
            return 0
        rows = self.selected_rows() or ([self.session.index] if self.session.index >= 0 else [])
        found = {row: self._proposals(row) for row in rows}
        new = sorted({p.name for props in found.values() for p in props if p.box.class_id < 0})
        add_classes = True
        if new:
            choice = self.ask_add_classes(new)
            if choice == "cancel":
                return 0
            add_classes = choice == "add"
        added = images = skipped = 0
        for row, proposals in found.items():
            if not proposals:
                continue
            record = dataset.images[row]
            self.session.set_proposals(row, proposals)
            try:
                added += self.session.accept_proposals(add_classes=add_classes, index=row)
                skipped += self.session.skipped_duplicates
                if self.session.autosave:
                    self.session.save(row)
            except OSError as exc:
                self.status.emit(f"Predictions not accepted on {record.name}: {exc}")
                break
            images += 1
        self.status.emit(f"Accepted {added} predicted boxes on {images} image(s)" + (
            f"; {skipped} skipped: already labeled" if skipped else ""))
        self.refresh_overlay()
        return added

    def _proposals(self, row: int) -> list[Proposal]:
        """Image ``row``'s filtered predictions as proposals, classes matched by name."""
        dataset = self.session.dataset
        record = dataset.images[row]
        proposals = []
        for box, score, name in self.predictions(row):
            x1, y1, x2, y2 = clip(box.xyxy(), record.width, record.height)
            if x2 - x1 < MIN_BOX or y2 - y1 < MIN_BOX:
                continue
            class_id = dataset.classes.names.index(name) if name in dataset.classes.names \
                else -1
            proposals.append(Proposal(replace(box, x1=x1, y1=y1, x2=x2, y2=y2,
                                              class_id=class_id), score, name))
        return proposals

    def ask_add_classes(self, names: list[str]) -> str:
        """'add', 'skip' or 'cancel' for class names the data set lacks (the window sets
        this to its own question)."""
        return "skip"

    def choose_export_folder(self) -> NewFolderDialog:
        """Ask for the export folder (an existing one or a new one); exports when chosen."""
        dialog = NewFolderDialog(self, "Export the prediction set to", accept_text="Export")
        dialog.fileSelected.connect(lambda folder: self.export(Path(folder)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()   # not exec(): the window goes on while it is open
        return dialog

    def export(self, out: Path, fmt: str | None = None,
               save_images: bool | None = None) -> workers.Worker | None:
        """Write the chosen set to ``out`` in a ``detect --format`` format (a worker)."""
        folder, dataset = self.set_dir(), self.session.dataset
        if folder is None or dataset is None:
            return None
        fmt = fmt or self.export_format.currentData()
        save_images = self.export_images.isChecked() if save_images is None else save_images
        self.status.emit(f"Exporting {folder.name} as {fmt} to {out}…")
        return workers.start(
            export_job, folder, Path(dataset.root), Path(out), fmt, save_images,
            on_result=lambda n: self.status.emit(f"Exported {n} images ({fmt}) to {out}"),
            on_error=lambda e: self.status.emit(f"Export failed: {e}"))
