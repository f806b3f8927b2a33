"""What ``--resume`` continues: the run as it was started, and only what the user changed on
purpose.

A resumed run keeps the settings, length and learning-rate schedule in its config.json: a
plain ``train DATA --out RUN --resume`` finishes the run it was, not one of the CLI's default
length. Of the flags given again, ``--epochs N`` moves the run's end (``plan_resume`` says how
in one line); ``--strategy``, ``--labels``, ``--json`` and ``--verbose`` are this session's; any
other setting given with a value other than the run's is refused in one line, before a byte is
written: a run trained half with one learning rate and half with another is neither run, and
silently keeping the saved value would ignore what the user typed.

The settings themselves, which of them a run keeps (``KEPT``) and what a run file without a
setting trained with (``LEGACY``) are defined once, in ``workbench/train/settings.py``.

Which flags were given: ``TrainSettings.explicit`` (the CLI fills it from argparse, whose
defaults are None); library callers that leave it None count the fields that differ from
TrainSettings' defaults.

Imports no TensorFlow: the CLI checks this before it loads.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.storage.output_guard import file_id
from workbench.train.run_folder import SavedRun
from workbench.train.schedule import LearningRateSchedule
from workbench.train.settings import KEPT, LEGACY, saved_setting

__all__ = ["KEPT", "LEGACY", "ResumePlan", "check_kept_settings", "explicit_settings",
           "plan_resume", "saved_setting", "steps_per_epoch"]

#: given values that ask for nothing in particular: they never conflict
_ANY = {"precision": "auto", "freeze_epochs": -1}


def explicit_settings(settings) -> frozenset[str]:
    """The TrainSettings fields the user gave (module docstring)."""
    if settings.explicit is not None:
        return frozenset(settings.explicit)
    defaults = type(settings)(dataset=settings.dataset)
    return frozenset(f.name for f in fields(settings) if f.name in (*KEPT, "epochs")
                     and getattr(settings, f.name) != getattr(defaults, f.name))


def _flag(key: str) -> str:
    return "--no-augment" if key == "augment" else "--" + key.replace("_", "-")


def _shown(key: str, value) -> str:
    if key == "augment":
        return "given" if value is False else "not given"
    if key in ("anchor_iou", "scale_xy") and value is None:
        return "the template's"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _same(key: str, given, saved) -> bool:
    if given is None or saved is None:
        return given == saved
    if key in ("template", "weights"):  # a path typed from another folder is the same file
        given_id = file_id(given)  # as output_guard compares files: links count
        return str(given) == str(saved) or (given_id is not None and given_id == file_id(saved))
    if isinstance(given, (int, float)) and isinstance(saved, (int, float)):
        return math.isclose(float(given), float(saved), rel_tol=1e-9, abs_tol=1e-12)
    return given == saved


def check_kept_settings(run_dir: Path, run: dict, settings, explicit: frozenset[str]) -> None:
    """One line naming every flag given with a value other than the run's."""
    differ = []
    for key in KEPT:
        if key not in explicit or (key not in run and key not in LEGACY):
            continue
        given = getattr(settings, key)
        if key in _ANY and given == _ANY[key]:
            continue
        saved = saved_setting(run, key)
        if not _same(key, given, saved):
            differ.append(f"{_flag(key)} {_shown(key, given)} (the run's: {_shown(key, saved)})")
    if differ:
        raise WorkbenchError(
            f"{run_dir}: a resumed run keeps the settings it was started with; "
            f"{', '.join(differ)}: leave {'it' if len(differ) == 1 else 'them'} out to resume, "
            "or start a new run with another --out")


@dataclass
class ResumePlan:
    """The run file's config as this session continues it."""

    saved: SavedRun  # the run folder as read back
    config: dict  # settings.epochs and schedule updated when --epochs moved the end
    schedule: LearningRateSchedule
    epochs: int
    note: str | None  # the one line saying what --epochs changed
    changed: bool  # config.json must be written again (after the checkpoint restored)


def steps_per_epoch(config: dict) -> int:
    """The steps of an epoch the run's schedule was planned with: recorded since runs can be
    resumed longer; before, the schedule's length over the epochs (never changed then)."""
    if "steps_per_epoch" in config:
        return config["steps_per_epoch"]
    return max(config["schedule"].get("total_steps", 0) // config["settings"]["epochs"], 1)


def checkpoint_step(saved: SavedRun) -> int:
    """The step the run stopped at: checkpoints are numbered by step (``ckpt-STEP``)."""
    match = re.fullmatch(r"ckpt-(\d+)", saved.checkpoint.name)
    if match:
        return int(match.group(1))
    return int(saved.metrics[-1]["step"] or 0) if saved.metrics else 0


def plan_resume(run_dir: Path, saved: SavedRun, settings) -> ResumePlan:
    """How the run in ``run_dir`` continues; WorkbenchError for a flag that conflicts."""
    explicit = explicit_settings(settings)
    run = saved.config["settings"]
    check_kept_settings(run_dir, run, settings, explicit)
    old = int(run["epochs"])
    if "epochs" not in explicit or settings.epochs == old:
        return ResumePlan(saved, saved.config, saved.schedule, old, None, False)
    new = settings.epochs
    per_epoch = steps_per_epoch(saved.config)
    now = checkpoint_step(saved)
    done = now // per_epoch
    if new < max(done, 1):
        raise WorkbenchError(f"{run_dir}: the run has trained {done} epochs; --epochs {new} "
                             f"would end it before that: give {max(done, 1)} or more")
    # the schedule's own end: a run extended after its schedule ran out goes past it
    schedule = saved.schedule.stretched(now, saved.schedule.end_step(), new * per_epoch)
    note = _epochs_note(old, new, done, now, saved.schedule, schedule, per_epoch)
    config = copy.deepcopy(saved.config)
    config["settings"]["epochs"] = new
    config["steps_per_epoch"] = per_epoch
    if schedule is not None:
        config["schedule"] = schedule.to_dict()
    return ResumePlan(saved, config, schedule or saved.schedule, new, note, True)


def _epochs_note(old: int, new: int, done: int, now: int, before: LearningRateSchedule,
                 after: LearningRateSchedule | None, per_epoch: int) -> str:
    head = f"{'extending' if new > old else 'shortening'} the run from {old} to {new} epochs"
    if new == done:
        return f"{head}: it has trained {done}, so it ends now"
    if after is not None:
        start = after.stretches[-1][0]
        where = ("from where it stopped" if start == now
                 else f"from the end of its warm-up at step {start}")
        how = "stretched" if new > old else "squeezed"
        return (f"{head}; the rest of the learning-rate schedule ({before.policy}, {where}) is "
                f"{how} to end at epoch {new}")
    end = before.end_step()
    if now >= end:  # its schedule had run out: the extra epochs go on at its end
        ended = -(-end // per_epoch)
        first = done + 1  # the epoch the run goes on in
        extra = f"epoch {new} trains" if new == first else f"epochs {first}-{new} train"
        return (f"{head}; its learning-rate schedule ended with epoch {ended}: {extra} at its "
                f"last rate, {before.rate(end):.3g}")
    return f"{head}; the learning-rate schedule is unchanged (the run is still warming up)"
