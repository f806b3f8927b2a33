"""Start the GUI: ``workbench`` / ``workbench gui [DIR]``."""

from __future__ import annotations

import sys
from pathlib import Path


def main(folder: str | Path | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Detection Workbench")
    app.setOrganizationName("detection-workbench")
    window = MainWindow()
    window.show()
    if folder is not None:
        window.open_folder(folder)
    return app.exec()
