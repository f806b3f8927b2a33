"""The status bar's messages, kept for the session.

A status bar cuts a long message at the window's edge and a timed one vanishes, so every
message the window says (not the "n / total" progress ticks) is also kept here with its
time: the status bar's tooltip holds the full text, and View > Messages lists them all.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

KEEP = 2000   # a long session's oldest messages go first; the log never grows without end


class MessageLog(QObject):
    """Shows messages on a status bar and keeps them as ``(HH:MM:SS, text)`` entries."""

    added = Signal(str)   # one line, "HH:MM:SS  text", as the Messages window lists it

    def __init__(self, bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bar = bar
        self.entries: list[tuple[str, str]] = []
        bar.messageChanged.connect(self._message_changed)

    def say(self, text: str, timeout_ms: int = 0) -> None:
        """Show ``text`` on the status bar and keep it in the log."""
        self.add(text)
        self.bar.showMessage(text, timeout_ms)

    def add(self, text: str) -> None:
        text = " ".join(text.split("\n"))   # one entry, one line
        if not text.strip():
            return
        self.entries.append((time.strftime("%H:%M:%S"), text))
        del self.entries[:-KEEP]
        self.added.emit(line(*self.entries[-1]))

    def lines(self) -> list[str]:
        return [line(when, text) for when, text in self.entries]

    def _message_changed(self, text: str) -> None:
        # the full text on hover, also for a message the bar cut; once it is gone, the last
        # one kept, so a message that vanished can still be read
        if not text and self.entries:
            text = line(*self.entries[-1])
        self.bar.setToolTip(f"{text}\n(View > Messages lists this session's messages)"
                            if text else "")


def line(when: str, text: str) -> str:
    return f"{when}  {text}"


class MessagesWindow(QDialog):
    """View > Messages: the session's messages with their times, newest last, selectable."""

    def __init__(self, log: MessageLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Messages")
        self.resize(720, 360)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text.setPlainText("\n".join(log.lines()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        log.added.connect(self._append)
        self._scroll_to_end()

    def _append(self, entry: str) -> None:
        self.text.appendPlainText(entry)
        self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        self.text.moveCursor(QTextCursor.MoveOperation.End)
