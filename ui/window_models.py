"""The main window's models: proposals from the current model, loading a model bundle, and
offering a freshly trained model (a mixin of :class:`ui.main_window.MainWindow`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox

from ui import workers
from ui.menus import rebuild_recent_models
from ui.panels.detect_panel import DEMO
from workbench.darknet.bundle import find_bundle
from workbench.darknet.validate import check_bundle
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel

    from ui.panels.detect_panel import DetectPanel
    from ui.panels.inspect_panel import InspectPanel
    from ui.panels.prelabel import Prelabeler
    from ui.panels.train_panel import TrainPanel
    from ui.session import LabelSession


class ModelMixin:
    """Needs the window's session, panels, ``model_label``, ``say`` and ``show_error``."""

    session: LabelSession
    prelabeler: Prelabeler
    inspector: InspectPanel
    detector_panel: DetectPanel
    trainer: TrainPanel
    _model_maps: dict[str, float]

    model_label: QLabel

    if TYPE_CHECKING:
        def say(self, text: str, timeout_ms: int = 0) -> None: ...
        def show_error(self, message: str) -> None: ...

    def accept_proposals(self) -> None:
        new = self.session.new_class_names()
        add = True
        if new:
            choice = self.ask_add_classes(new)
            if choice == "cancel":
                return
            add = choice == "add"
        try:
            n = self.session.accept_proposals(add_classes=add)
        except OSError as exc:  # the class list could not be saved; proposals stay
            self.show_error(f"Proposals not accepted: {exc}")
            return
        skipped = self.session.skipped_duplicates
        self.say(f"Accepted {n} proposed boxes" + (
            f"; {skipped} skipped: already labeled" if skipped else ""), 5000)

    def ask_add_classes(self, names: list[str]) -> str:
        """'add', 'skip' (accept only boxes of known classes) or 'cancel' (tests replace it)."""
        box = QMessageBox(QMessageBox.Icon.Question, "New classes",
                          f"The model proposes classes this data set does not have: "
                          f"{', '.join(names)}.\nAdd them to the class list?", parent=self)
        add = box.addButton("Add classes", QMessageBox.ButtonRole.AcceptRole)
        skip = box.addButton("Skip their boxes", QMessageBox.ButtonRole.RejectRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return {add: "add", skip: "skip"}.get(box.clickedButton(), "cancel")

    def propose_unlabeled(self) -> None:
        n = self.prelabeler.propose_unlabeled()
        self.say(f"Proposing boxes on {n} unlabeled images…")

    def load_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Model folder (one .cfg, one .weights, one .names)")
        if folder:
            self.use_model(folder)

    def use_model(self, folder: str) -> bool:
        """Detect, proposals and the Inspect dock use this model bundle from now on.

        The bundle is checked first (files, cfg, names, weights size): a bad one is refused
        with one line and the current model stays."""
        try:
            check_bundle(find_bundle(folder))
        except WorkbenchError as exc:
            self.show_error(f"Model not loaded: {exc}")
            return False
        folder = DEMO if str(folder) == DEMO else str(Path(folder).resolve())
        self.prelabeler.set_model(folder)
        self.inspector.model_changed()
        self.detector_panel.set_model(folder)
        self.model_label.setText(self.detector_panel.info_text())
        rebuild_recent_models(self)
        return True

    def current_model(self) -> str:
        return str(self.prelabeler.model)

    def trained_model_ready(self, bundle: str) -> None:
        """A training run ended with a model: always listed in the Detect dock's picker; it
        replaces the current model only when the run finished with a better validation
        mAP@0.5 than the current model's on the same images, and the user says yes."""
        done = self.trainer.done_event or {}
        self.detector_panel.add_trained(bundle)
        new_map = done.get("best_map50")
        if done.get("status") not in ("finished", "early_stopped") or new_map is None:
            self.say(
                f"Training {done.get('status', 'ended')}: its model is listed under Model in "
                "the Detect dock; the current model is unchanged", 20_000)
            return
        self._model_maps[str(Path(bundle).resolve())] = float(new_map)
        current = self.current_model()
        known = self._model_maps.get(current if current == DEMO else str(Path(current).resolve()))
        if known is not None:
            self._compare_trained(bundle, float(new_map), known)
            return
        # deferred: scoring loads a detector engine (OpenCV's dnn or TensorFlow); the
        # window opens without it
        from workbench.detect.model_score import validation_map50

        self.say("Training finished: scoring the current model on the same validation "
                 "images…")
        workers.start(lambda job: validation_map50(current, self.session.dataset,
                                                   cancelled=lambda: job.cancelled),
                      on_result=lambda m: self._compare_trained(bundle, float(new_map), m),
                      on_error=lambda e: self.say(
                          f"Current model not scored ({e}); kept it. The trained model is "
                          "listed in the Detect dock", 20_000))

    def _compare_trained(self, bundle: str, new_map: float, current_map: float | None) -> None:
        if current_map is not None and new_map <= current_map:
            self.say(
                f"Trained model: validation mAP@0.5 {new_map:.4f}, not better than the current "
                f"model's {current_map:.4f}: current model kept (the trained one is listed in "
                "the Detect dock)", 20_000)
            return
        was = "unknown" if current_map is None else f"{current_map:.4f}"
        if self.ask_use_trained(f"The trained model reached validation mAP@0.5 {new_map:.4f} "
                                f"(current model: {was} on the same images). Use it for "
                                "Detect, Propose and Inspect?"):
            self.use_model(bundle)

    def ask_use_trained(self, text: str) -> bool:
        """Yes/no before a trained model replaces the current one (tests replace this)."""
        answer = QMessageBox.question(self, "Use the trained model?", text)
        return answer == QMessageBox.StandardButton.Yes
