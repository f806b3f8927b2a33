"""The desktop GUI (PySide6): main window, canvas, panels, workers. Built on ``workbench``."""
