"""The interface every inference engine implements: ``Backend``, and ``Pending`` for a forward
in flight.

A backend takes a float32 NCHW RGB blob in [0, 1] (batch N) and returns, for each [yolo] head
in cfg order, a float32 array (N, rows, 5 + classes) in OpenCV's row convention: cx, cy, w, h
normalized to the network input, objectness, then class score = objectness x class
probability, never zeroed below a threshold.

The engines import this module; it imports none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Pending(ABC):
    """A forward started by :meth:`Backend.start`; ``result()`` waits and returns the heads."""

    @abstractmethod
    def result(self) -> list[np.ndarray]:
        """Wait for the forward; one (N, rows, 5+C) array per head, as ``forward`` returns."""


class Done(Pending):
    """A forward that already ran (engines without asynchronous requests)."""

    def __init__(self, outputs: list[np.ndarray]) -> None:
        self.outputs = outputs

    def result(self) -> list[np.ndarray]:
        return self.outputs


class Backend(ABC):
    """An inference engine for one model at one input size.

    ``name`` says which engine runs (e.g. "opencv-cpu", "onnxruntime-cuda") and ``reason`` why
    it was chosen, in words for the CLI summary and the GUI.
    """

    name: str = ""
    reason: str = ""
    precision: str = "fp32"
    width: int = 0
    height: int = 0
    #: forwards that may be in flight at once (``start`` without ``result``); 1: synchronous
    in_flight: int = 1
    #: what ``Detector.prepare`` hands ``start``: "blob" (the float blob above) or "bgr8"
    #: (uint8 (N, height, width, 3) BGR resized to the input; the engine makes the blob)
    input_layout: str = "blob"

    @abstractmethod
    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the network on ``blob`` (N, 3, height, width); one (N, rows, 5+C) array per head."""

    def start(self, blob: np.ndarray) -> Pending:
        """Start a forward; engines with asynchronous requests return before it finishes, so
        the caller can prepare the next images meanwhile (at most ``in_flight`` at once)."""
        return Done(self.forward(blob))

    @property
    def engine(self) -> str:
        """Engine and precision, e.g. "openvino-cpu bf16", for the summary line."""
        return f"{self.name} {self.precision}"

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.engine} {self.width}x{self.height}: "
                f"{self.reason}>")
