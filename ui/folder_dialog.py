"""A folder chooser that also makes new folders (exports go into a folder that is often new).

``QFileDialog.getExistingDirectory`` refuses a name that does not exist yet, and the native
dialog of some desktops (or none, under a bare X server) offers no way to make one. This one
is Qt's own dialog, which has a "Create New Folder" button; a typed name that does not exist
yet is made (with its missing parents) when the user presses the accept button.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


class NewFolderDialog(QFileDialog):
    """Choose a folder, existing or new; opened with :meth:`open` (the event loop goes on)."""

    def __init__(self, parent: QWidget | None, caption: str, start: str | Path = "",
                 accept_text: str = "Choose") -> None:
        super().__init__(parent, caption, str(start))
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setOption(QFileDialog.Option.ShowDirsOnly)
        self.setOption(QFileDialog.Option.DontUseNativeDialog)   # the one with the button
        self.setLabelText(QFileDialog.DialogLabel.Accept, accept_text)

    def typed_folder(self) -> Path | None:
        """The folder named in the name field (relative to the folder shown), if any."""
        name = self.findChild(QWidget, "fileNameEdit")
        text = name.text().strip() if name is not None else ""
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else Path(self.directory().absolutePath()) / path

    def accept(self) -> None:
        folder = self.typed_folder()
        if folder is not None and not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as exc:
                QMessageBox.warning(self, self.windowTitle(),
                                    f"Cannot make the folder {folder}: {exc.strerror or exc}")
                return
        super().accept()

    def chosen(self) -> Path | None:
        files = self.selectedFiles()
        return Path(files[0]) if files else None
