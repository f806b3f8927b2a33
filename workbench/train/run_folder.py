"""What a run folder holds, read back whole before a resumed run touches anything.

``--resume`` continues a run from RUN_DIR's config.json, model.cfg, checkpoint state and
metrics.csv. If any of them is missing or damaged the run refuses with one line naming the file
and the place, before a byte in RUN_DIR is written: training from epoch 1 over a run's bundle,
best checkpoint and metrics would destroy the work the user asked to continue.

Imports no TensorFlow: the checks here run before it loads.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from workbench.darknet.cfg import DarknetCfg, read_cfg
from workbench.darknet.validate import check_cfg
from workbench.errors import WorkbenchError
from workbench.storage.output_guard import hold_folder
from workbench.train.protocol import read_metrics_csv
from workbench.train.schedule import LearningRateSchedule
from workbench.train.settings import RUN_SETTINGS

#: files (and folders) that show RUN_DIR holds a run a fresh start would overwrite
RUN_RESULTS = ("checkpoints/checkpoint", "best", "bundle", "metrics.csv")


__all__ = ["RUN_RESULTS", "RUN_SETTINGS", "SavedRun", "check_fresh_run_dir", "claim_run_dir",
           "default_run_dir", "read_config", "read_saved_run", "release_run_dirs"]


def default_run_dir(dataset: Path | str, template: str, base: Path | str = ".") -> Path:
    """The run folder a run gets without ``--out``: ``BASE/runs/<dataset>-<template>``, the
    dataset's folder name and the template's file name without ``.cfg``. The CLI's base is
    the working folder (``runs/...``, relative); the window passes the dataset's parent."""
    return Path(base) / "runs" / f"{Path(dataset).resolve().name}-{Path(template).stem}"


@dataclass
class SavedRun:
    """A run folder read back for ``--resume``: everything checked, nothing written."""

    config: dict
    cfg: DarknetCfg
    schedule: LearningRateSchedule
    checkpoint: Path  # the checkpoint prefix (``.../checkpoints/ckpt-N``)
    metrics: list[dict]


def _damaged(path: Path, what: str) -> WorkbenchError:
    return WorkbenchError(f"{path}: {what}; the run cannot be resumed (nothing was changed)")


def read_config(path: Path) -> dict:
    """config.json with every key a resumed run reads, of the right type."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkbenchError(f"{path.parent}: nothing to resume (no config.json); start a run "
                             "without --resume") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _damaged(path, f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise _damaged(path, "not a JSON object")
    classes = config.get("classes")
    if (not isinstance(classes, list) or not classes
            or not all(isinstance(c, str) for c in classes)):
        raise _damaged(path, "'classes' is not a list of class names")
    settings = config.get("settings")
    if not isinstance(settings, dict):
        raise _damaged(path, "'settings' is missing")
    for key, types in RUN_SETTINGS.items():
        value = settings.get(key)
        # bool is an int in Python: an int key must not accept true/false
        if (not isinstance(value, types) or (bool not in types and isinstance(value, bool))
                or (isinstance(value, float) and not math.isfinite(value))):
            raise _damaged(path, f"settings.{key} is {value!r}")
    if settings["batch"] < 1:
        raise _damaged(path, f"settings.batch is {settings['batch']}")
    frozen = settings.get("frozen_layers", 0)
    if not isinstance(frozen, int) or isinstance(frozen, bool) or frozen < 0:
        raise _damaged(path, f"settings.frozen_layers is {frozen!r}")
    if not isinstance(config.get("schedule"), dict):
        raise _damaged(path, "'schedule' is missing")
    per_epoch = config.get("steps_per_epoch", 1)  # absent in runs from before resumes moved
    if not isinstance(per_epoch, int) or isinstance(per_epoch, bool) or per_epoch < 1:
        raise _damaged(path, f"steps_per_epoch is {per_epoch!r}")
    return config


def read_schedule(path: Path, config: dict) -> LearningRateSchedule:
    try:
        return LearningRateSchedule.from_dict(config["schedule"])
    except WorkbenchError as exc:
        raise _damaged(path, f"schedule: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise _damaged(path, f"schedule: {exc}") from None


def latest_checkpoint(folder: Path) -> Path:
    """The checkpoint prefix ``folder/checkpoint`` names, with its index and data present.

    TensorFlow's own lookup returns None for a missing or garbled state file, which a resume
    used to take for "start from scratch".
    """
    state = folder / "checkpoint"
    try:
        text = state.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkbenchError(f"{folder}: nothing to resume (no checkpoint state file "
                             f"'checkpoint'); start the run again in another --out") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(state, f"cannot read: {exc}") from None
    match = re.search(r'^model_checkpoint_path:\s*"([^"\n]+)"\s*$', text, re.MULTILINE)
    if not match:
        raise _damaged(state, "no model_checkpoint_path line")
    prefix = Path(match.group(1))
    prefix = prefix if prefix.is_absolute() else folder / prefix
    if not Path(f"{prefix}.index").is_file():
        raise _damaged(state, f"names {prefix.name}, but {prefix.name}.index is missing")
    if not list(prefix.parent.glob(f"{prefix.name}.data-*")):
        raise _damaged(state, f"names {prefix.name}, but its .data file is missing")
    return prefix


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv's rows (none when the file is not there yet: stopped within epoch 1)."""
    try:
        rows = read_metrics_csv(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"cannot read: {exc}") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise _damaged(path, f"not a metrics table ({exc})") from None
    if path.is_file() and any(r["epoch"] is None for r in rows):
        raise _damaged(path, "a row has no epoch")
    return rows


def read_saved_run(run_dir: Path, class_names: list[str]) -> SavedRun:
    """Everything ``--resume`` needs from RUN_DIR, checked; WorkbenchError otherwise."""
    config_path = run_dir / "config.json"
    config = read_config(config_path)
    if config["classes"] != class_names:
        raise WorkbenchError(f"{run_dir}: the run was trained on classes {config['classes']}, "
                             f"the dataset now has {class_names}")
    schedule = read_schedule(config_path, config)
    cfg_path = run_dir / "model.cfg"
    if not cfg_path.is_file():
        raise _damaged(cfg_path, "missing")
    cfg = read_cfg(cfg_path)
    check_cfg(cfg)
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    metrics = read_metrics(run_dir / "metrics.csv")
    return SavedRun(config, cfg, schedule, checkpoint, metrics)


def check_fresh_run_dir(run_dir: Path) -> None:
    """A fresh run may start in RUN_DIR: nothing there it would overwrite. (A run that failed
    before its first checkpoint holds only config.json and model.cfg: it starts again.)"""
    results = [name for name in RUN_RESULTS if (run_dir / name).exists()]
    if results:
        raise WorkbenchError(f"{run_dir}: already holds a training run ({', '.join(results)}); "
                             "add --resume to continue it or choose another --out")


#: run folders this process writes, each held by an flock on its descriptor: released by
#: ``release_run_dirs`` or when the process ends (a killed run frees its folder)
_held: dict[Path, int] = {}


def claim_run_dir(run_dir: Path) -> None:
    """Create RUN_DIR if needed and hold it for this process, before anything in it is
    checked or written: of two ``train --out RUN`` started together one wins, the other
    stops with one line instead of both writing one folder. Claiming a folder this process
    already holds (a resume in the same process) is a no-op."""
    key = run_dir.resolve()
    if key in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = hold_folder(run_dir, "was created by another run, which is still writing it "
                     "(another `workbench train`); choose another --out")
    if fd is not None:
        _held[key] = fd


def release_run_dirs() -> None:
    """Let other processes train in the folders this one held (its training is over)."""
    while _held:
        os.close(_held.popitem()[1])
