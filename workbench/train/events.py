"""What a training run reports, as typed events: one definition for the trainer, the CLI's
reporters (``workbench/train/protocol.py``) and the window's Train dock, which reads them back
from the child's JSON lines with :func:`from_json`.

Each event is one line of ``workbench train --json`` (docs/training.md, "JSON-lines
protocol"): ``to_json`` writes exactly that line (keys in this order, NaN and infinity as
null) and ``from_json`` reads it back to an equal event. A field left :data:`ABSENT` is not
written at all (a ``checkpoint`` of kind ``epoch`` has no ``bundle``; a run interrupted before
it started has no ``metrics_csv``), which is not the same as a field written as null.

The set is closed: ``start``, ``batch``, ``epoch``, ``checkpoint``, ``done``, ``error``. The
progress of validation and export goes to people only (``Reporter.progress``).

For code written against the JSON objects, an event also reads like one: ``event["loss"]``,
``event.get("bundle")``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar


class _Absent:
    """The value of a field the line does not carry (falsy, compares equal only to itself)."""

    _instance: ClassVar[_Absent | None] = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def clean(value: Any) -> Any:
    """JSON has no NaN/inf: null for them, so every line parses with any JSON reader; numpy
    and TensorFlow scalars as Python numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item"):  # numpy / tensorflow scalars
        return clean(value.item())
    return value


@dataclass
class Event:
    """One protocol line; the class's ``event`` is the line's ``event`` key."""

    event: ClassVar[str] = ""

    def fields(self) -> dict[str, Any]:
        """The fields the line carries, in order, as given (not cleaned)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not ABSENT}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line."""
        return {"event": self.event, **clean(self.fields())}

    def to_json(self) -> str:
        """The protocol line (no newline)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    # read like the JSON object (code written against the protocol's dicts)
    def __getitem__(self, key: str) -> Any:
        if key == "event":
            return self.event
        value = getattr(self, key, ABSENT) if key in _names(type(self)) else ABSENT
        if value is ABSENT:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


@dataclass
class Started(Event):
    """``start``: once, before the first step."""

    event: ClassVar[str] = "start"
    run_dir: str = ABSENT
    dataset: str = ABSENT
    template: str = ABSENT
    classes: list[str] = ABSENT
    width: int = ABSENT
    height: int = ABSENT
    epochs: int = ABSENT
    start_epoch: int = ABSENT
    step: int = ABSENT  # steps already done
    steps_per_epoch: int = ABSENT
    batch: int = ABSENT
    images_train: int = ABSENT
    images_valid: int = ABSENT
    strategy: str = ABSENT
    replicas: int = ABSENT
    resumed: bool = ABSENT
    optimizer: str = ABSENT
    lr: float = ABSENT
    policy: str = ABSENT
    freeze_epochs: int = ABSENT
    frozen_layers: int = ABSENT
    skipped_images: list[str] = ABSENT
    precision: str = ABSENT
    ema: float = ABSENT
    weights_report: str | None = ABSENT
    anchors_report: str | None = ABSENT
    resume_note: str | None = ABSENT


@dataclass
class StepProgress(Event):
    """``batch``: after a training step (every ``batch_events``-th)."""

    event: ClassVar[str] = "batch"
    epoch: int = ABSENT
    batch: int = ABSENT  # the step within the epoch
    step: int = ABSENT
    box: float = ABSENT
    obj: float = ABSENT
    cls: float = ABSENT
    loss: float = ABSENT
    lr: float = ABSENT
    images_per_s: float = ABSENT
    eta_s: float = ABSENT


@dataclass
class EpochEnded(Event):
    """``epoch``: after an epoch's validation: the epoch's mean losses and its mAP."""

    event: ClassVar[str] = "epoch"
    epoch: int = ABSENT
    step: int = ABSENT
    loss: float = ABSENT
    box: float = ABSENT
    obj: float = ABSENT
    cls: float = ABSENT
    lr: float = ABSENT
    val_map50: float | None = ABSENT
    val_map50_95: float | None = ABSENT
    images_per_s: float = ABSENT
    seconds: float = ABSENT
    best_map50: float | None = ABSENT
    best_map50_95: float | None = ABSENT
    best_epoch: int = ABSENT
    frozen: bool = ABSENT
    eta_s: float = ABSENT


@dataclass
class Checkpointed(Event):
    """``checkpoint``: a checkpoint was written; kind ``best`` also exported the bundle."""

    event: ClassVar[str] = "checkpoint"
    kind: str = ABSENT  # epoch, best or interrupt
    path: str = ABSENT
    epoch: int = ABSENT
    step: int = ABSENT
    bundle: str = ABSENT
    val_map50: float | None = ABSENT
    val_map50_95: float | None = ABSENT


@dataclass
class Finished(Event):
    """``done``: the last line of a run that ended normally (also when interrupted)."""

    event: ClassVar[str] = "done"
    status: str = ABSENT  # finished | early_stopped | interrupted
    run_dir: str = ABSENT
    weights_sha256: str = ABSENT  # --strategy multiworker only
    bundle: str | None = ABSENT
    best_map50: float | None = ABSENT
    best_map50_95: float | None = ABSENT
    best_epoch: int = ABSENT
    epoch: int = ABSENT
    step: int = ABSENT
    metrics_csv: str = ABSENT
    plot: str = ABSENT
    # with validation images: the best model's operating point (trainer calibration)
    best_f1_conf: float = ABSENT
    best_f1: float = ABSENT
    recall_at_best_f1: float = ABSENT
    recall_at_default_conf: float = ABSENT
    default_conf: float = ABSENT
    conf_stored: bool = ABSENT
    # the best model with merged boxes (detect --merge-boxes), and whether they are its default
    merged_map50: float = ABSENT
    merged_map50_95: float = ABSENT
    merge_boxes: bool = ABSENT


@dataclass
class Failed(Event):
    """``error``: the last line of a run that failed."""

    event: ClassVar[str] = "error"
    message: str = ABSENT


EVENT_TYPES: dict[str, type[Event]] = {
    cls.event: cls for cls in (Started, StepProgress, EpochEnded, Checkpointed, Finished, Failed)}
#: the protocol's event kinds, in the order a run reports them
EVENTS = tuple(EVENT_TYPES)


def _names(cls: type[Event]) -> set[str]:
    return {f.name for f in fields(cls)}


def from_dict(obj: dict, strict: bool = True) -> Event:
    """The event of one protocol object; ValueError when it is none. ``strict`` False ignores
    keys no event field holds (a newer trainer's additions)."""
    kind = obj.get("event") if isinstance(obj, dict) else None
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"not a training event: {str(obj)[:80]!r}")
    names = _names(cls)
    unknown = [k for k in obj if k != "event" and k not in names]
    if unknown and strict:
        raise ValueError(f"{obj['event']} event: unknown field(s) {', '.join(unknown)}")
    return cls(**{k: v for k, v in obj.items() if k in names})


def from_json(line: str) -> Event:
    """The event on one protocol line; ValueError when the line is not one."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a training event: {line[:80]!r} ({exc.msg})") from None
    return from_dict(obj, strict=False)


def make(event: str, **fields: Any) -> Event:
    """The event ``event`` (``"start"``, ``"batch"``, ...) with these line fields."""
    return from_dict({"event": event, **fields})


__all__ = ["ABSENT", "EVENTS", "EVENT_TYPES", "Checkpointed", "EpochEnded", "Event", "Failed",
           "Finished", "Started", "StepProgress", "from_dict", "from_json", "make"]
