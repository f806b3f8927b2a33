"""Printed lines: one per detection, ``image<TAB>class<TAB>score<TAB>x1<TAB>y1<TAB>x2<TAB>y2``
(a video frame as ``video#frame``); ``workbench detect`` without --out or --format."""

from __future__ import annotations

import sys
from typing import TextIO

from workbench.detect.pipeline import ImageResult, RunSummary


class LinesSink:
    def __init__(self, class_names: list[str], stream: TextIO | None = None) -> None:
        self.names, self._stream = class_names, stream

    def write(self, result: ImageResult) -> None:
        stream = self._stream or sys.stdout  # sys.stdout as it is now (tests capture it)
        d = result.found
        where = (f"{result.path}#{result.frame}" if result.frame is not None
                 else str(result.path))
        for (x1, y1, x2, y2), score, c in zip(d.boxes.tolist(), d.scores.tolist(),
                                               d.class_ids.tolist(), strict=True):
            name = self.names[c] if c < len(self.names) else str(c)
            print(f"{where}\t{name}\t{score:.4f}\t{x1:.1f}\t{y1:.1f}\t{x2:.1f}\t{y2:.1f}",
                  file=stream)

    def close(self, summary: RunSummary) -> None:
        pass

    def abort(self, error: BaseException) -> None:
        pass
