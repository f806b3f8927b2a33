"""A prediction set: the run's results kept in the data set folder (``ROOT/.predictions/NAME``,
see ``workbench.predictions.sets``): ``workbench detect --out``'s default files (YOLO +
confidence, ``classes.txt``) and, at ``close``, ``run.json`` with the images covered."""

from __future__ import annotations

from pathlib import Path

from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.names import ImageNames
from workbench.detect.sinks.yolo import YoloSink
from workbench.predictions.sets import RunInfo, relative_to_root, write_info


class PredictionSetSink:
    """``info`` (the model, engine and thresholds, filled in by the caller) gains each image
    written (its path relative to ``root``, its size, its file stem when its name clashed) and,
    at ``close``, the run's skipped images, time and whether it was cancelled."""

    def __init__(self, set_dir: Path, root: Path, info: RunInfo, class_names: list[str],
                 naming: ImageNames) -> None:
        self.set_dir, self.root, self.info, self.naming = Path(set_dir), Path(root), info, naming
        self.files = YoloSink(self.set_dir, class_names, naming)

    def write(self, result: ImageResult) -> None:
        rel = relative_to_root(result.path, self.root)
        stem = self.naming.stem(result)
        self.files.write(result)
        if stem != rel.with_suffix(""):
            self.info.renamed[rel.as_posix()] = stem.as_posix()
        self.info.images.append((rel.as_posix(), result.width, result.height))

    def close(self, summary: RunSummary) -> None:
        self.files.close(summary)
        self.info.skipped += summary.errors
        self.info.cancelled = self.info.cancelled or summary.cancelled
        self.info.seconds = summary.seconds
        write_info(self.set_dir, self.info)

    def abort(self, error: BaseException) -> None:
        pass
