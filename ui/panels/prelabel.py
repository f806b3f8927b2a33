"""Pre-labeling: run a detector on the current image or on every unlabeled one.

Results become dashed proposals in the session; Enter accepts them as one undoable edit.
The model loads and runs on a worker; one job at a time so the network is never shared.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ui import workers
from ui.geometry import clip
from ui.session import MIN_BOX, LabelSession, Proposal, without_duplicates
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS
from workbench.labels.dataset import Box


def detect_proposals(job: workers.Job, holder: dict, model: str | Path, items: list[tuple[int, str]],
                     class_names: list[str], conf: float, nms: float
                     ) -> dict[int, list[Proposal]]:
    """Worker function: proposals for each (row, image path); stops early when cancelled."""
    from workbench.data.images import load_bgr
    from workbench.detect.detector import Detector

    if holder.get("model") != model:
        holder["detector"] = Detector(model)
        holder["model"] = model
    detector = holder["detector"]
    found: dict[int, list[Proposal]] = {}
    for done, (row, path) in enumerate(items, 1):
        if job.cancelled:
            break
        image = load_bgr(path)
        h, w = image.shape[:2]
        detections = detector.detect(image, conf=conf, nms=nms)
        proposals = []
        for xyxy, score, cid in zip(detections.boxes, detections.scores, detections.class_ids,
                                    strict=True):
            name = detector.class_names[int(cid)]
            x1, y1, x2, y2 = clip(tuple(float(v) for v in xyxy), w, h)
            if x2 - x1 < MIN_BOX or y2 - y1 < MIN_BOX:
                continue
            class_id = class_names.index(name) if name in class_names else -1
            proposals.append(Proposal(Box(x1, y1, x2, y2, class_id), float(score), name))
        found[row] = proposals
        job.progress(done, len(items), Path(path).name)
    return found


class Prelabeler(QObject):
    status = Signal(str)
    progress = Signal(int, int)
    busy_changed = Signal(bool)

    def __init__(self, session: LabelSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.model: str | Path = "demo"
        self.conf = DEFAULT_CONF
        self.nms = DEFAULT_NMS
        self._holder: dict = {}   # the Detector, built and used on worker threads only
        self._job: workers.Worker | None = None

    def set_model(self, model: str | Path) -> None:
        self.model = model
        self.status.emit(f"Model for proposals: {model}")

    def busy(self) -> bool:
        return self._job is not None

    def propose_current(self) -> None:
        record = self.session.record
        if record is not None:
            self._run([(self.session.index, str(record.path))])

    def propose_unlabeled(self) -> int:
        dataset = self.session.dataset
        if dataset is None:
            return 0
        items = [(row, str(r.path)) for row, r in enumerate(dataset.images)
                 if not r.labeled and not r.boxes and not r.problems]
        self._run(items)
        return len(items)

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _run(self, items: list[tuple[int, str]]) -> None:
        if self._job is not None or not items or self.session.dataset is None:
            return
        self.busy_changed.emit(True)
        self.status.emit(f"Proposing boxes on {len(items)} image(s)…")
        names = self.session.dataset.classes.names
        self._job = workers.start(
            detect_proposals, self._holder, self.model, items, names, self.conf, self.nms,
            on_result=self._done, on_error=self._failed,
            on_progress=lambda done, total, _: self.progress.emit(done, total),
            on_finished=self._finished)

    def _done(self, found: dict[int, list[Proposal]]) -> None:
        dataset = self.session.dataset
        if dataset is None:
            return
        names = dataset.classes.names
        skipped = 0
        for row, proposals in found.items():
            if not 0 <= row < len(dataset.images):
                continue
            # what is labeled already is not proposed again
            kept, dropped = without_duplicates(proposals, dataset.images[row].boxes, names)
            skipped += dropped
            self.session.set_proposals(row, kept)
        total = sum(len(p) for p in found.values()) - skipped
        same = f" ({skipped} left out: already labeled)" if skipped else ""
        self.status.emit(f"{total} boxes proposed on {len(found)} image(s){same}: Enter "
                         "accepts, Esc rejects")

    def _failed(self, error: BaseException) -> None:
        self._holder.clear()
        self.status.emit(f"Proposals failed: {error}")

    def _finished(self) -> None:
        self._job = None
        self.busy_changed.emit(False)
