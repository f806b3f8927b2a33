"""The main window's saving: Ctrl+S, autosave, and what to do with unsaved edits before the
current image or the folder is left (a mixin of :class:`ui.main_window.MainWindow`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox

if TYPE_CHECKING:
    from ui.panels.class_panel import ClassPanel
    from ui.session import LabelSession


class SavingMixin:
    """Needs ``session``, ``classes``, ``say`` and ``show_error`` of the window."""

    session: LabelSession
    classes: ClassPanel
    _last_save_error: tuple[int, str] | None

    if TYPE_CHECKING:
        def say(self, text: str, timeout_ms: int = 0) -> None: ...
        def show_error(self, message: str) -> None: ...

    def save_current(self, *, quiet_repeat: bool = False) -> bool:
        """Ctrl+S: write this image's labels now, changed or not (an empty file = no objects).

        With ``quiet_repeat`` (autosave) the same failure as last time goes to the status bar
        only, so a read-only folder does not raise a dialog every 30 seconds.
        """
        try:
            self.session.save()
        except Exception as exc:  # noqa: BLE001 - the message names the file; edits stay
            message = f"Labels not saved: {exc}"
            failure = (self.session.index, type(exc).__name__)
            if quiet_repeat and failure == self._last_save_error:
                self.say(message, 20_000)
            else:
                self.show_error(message)
            self._last_save_error = failure
            return False
        self._last_save_error = None
        self.say(f"Saved {self.session.record.name}", 3000)
        return True

    def autosave_now(self) -> None:
        if self.classes.busy():
            return  # a class edit is renumbering the files; it saved everything first
        if self.session.autosave and self.session.is_dirty():
            self.save_current(quiet_repeat=True)

    def ask_unsaved(self, what: str) -> str:
        """'save', 'discard' or 'cancel' (tests replace this method)."""
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        answer = QMessageBox.question(self, "Unsaved changes", f"{what} has unsaved changes.",
                                      buttons, QMessageBox.StandardButton.Save)
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(answer, "cancel")

    def resolve_current(self) -> bool:
        """True when the current image may be left: saved, discarded, or nothing to do."""
        if not self.session.is_dirty():
            return True
        if self.session.autosave and self.save_current():
            return True
        choice = self.ask_unsaved(self.session.record.name)
        if choice == "save":
            return self.save_current()
        if choice == "discard":
            self.session.discard()
            return True
        return False

    def resolve_all(self) -> bool:
        """Like resolve_current, for every image with unsaved edits (closing, another folder)."""
        dirty = self.session.dirty_indices()
        if not dirty:
            return True
        if self.session.autosave:
            try:
                self.session.save_all()
                return True
            except Exception as exc:  # noqa: BLE001
                self.show_error(f"Labels not saved: {exc}")
        choice = self.ask_unsaved(f"{len(self.session.dirty_indices())} image(s)")
        if choice == "save":
            try:
                self.session.save_all()
                return True
            except Exception as exc:  # noqa: BLE001
                self.show_error(f"Labels not saved: {exc}")
                return False
        if choice == "discard":
            for row in self.session.dirty_indices():
                self.session.discard(row)
            return True
        return False
