"""The engine registry: every detection engine is one :class:`Engine` record, and everything
that lists or picks engines reads it (``--backend``'s names, ``auto``'s order, the window's
engine list, docs/engines.md's table, checked by tests/test_engine_registry.py).

Adding an engine (say "tvm"):

1. Write ``workbench/detect/engines/tvm.py``: a :class:`~workbench.detect.engines.base.Backend`
   subclass, a factory ``build(bundle, width, height, precision, calibrate) -> Backend`` and a
   cheap check ``check() -> (available, why_not)`` (import the engine's library inside the
   functions that need it, not at the top of the module).
2. End the module with its one registration line::

       register(Engine("tvm", build, check, precisions=("fp32",), rank=45, label="TVM",
                       install="pip install apache-tvm"))

3. Import the module in ``workbench/detect/engines/__init__.py`` (that order is the order
   ``--backend`` lists the engines in) and add a row to docs/engines.md's table (a test says
   when the table and the registry differ). ``--backend``'s and ``--precision``'s choices and
   the window's engine list read the registry; nothing else changes.

``rank``: ``auto`` tries the registered engines from the lowest rank up and takes the first
whose check passes and whose factory builds (an error of a type in ``auto_errors`` moves on to
the next engine, any other error is the user's); ``None`` keeps an engine out of ``auto``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import BackendUnavailable

if TYPE_CHECKING:
    from workbench.darknet.bundle import ModelBundle
    from workbench.detect.engines.base import Backend

#: ``factory(bundle, width, height, precision, calibrate)``: the backend, or raises
#: BackendUnavailable / ModelError in one line
Factory = Callable[["ModelBundle", int, int, str, Sequence[Path]], "Backend"]
#: ``check()``: (runs here, why not in one line); cheap: no model is loaded
Check = Callable[[], tuple[bool, str]]
#: ``auto_reason(backend, skipped)``: why ``auto`` took this engine; ``skipped`` maps the names
#: of the engines tried before it to why they were passed over
AutoReason = Callable[["Backend", Mapping[str, str]], str]


@dataclass(frozen=True)
class Engine:
    """One engine as ``--backend`` names it (OpenCV on CUDA and on CPU are two engines)."""

    name: str                            # what --backend takes
    factory: Factory
    check: Check
    precisions: tuple[str, ...] = ("fp32",)  # what --precision may ask of it besides auto
    rank: int | None = None              # auto's order: lowest first; None: never auto
    label: str = ""                      # in words, e.g. "OpenVINO"
    install: str = ""                    # how to get it, e.g. "pip install openvino"
    aliases: tuple[str, ...] = ()        # other spellings --backend accepts
    auto_errors: tuple[type[Exception], ...] = ()  # errors after which auto tries the next
    auto_reason: AutoReason | None = None
    #: (precision, note): said when --precision asks another engine for that precision
    precision_notes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine runs on this machine (the window's engine list)."""

    name: str           # what --backend takes
    available: bool
    why_not: str = ""   # one line when not available


_ENGINES: dict[str, Engine] = {}


def register(*engines: Engine) -> None:
    """Add engines (a module's one registration line); a name already taken is an error."""
    for engine in engines:
        taken = {n for e in _ENGINES.values() for n in (e.name, *e.aliases)}
        clash = {engine.name, *engine.aliases} & (taken | {"auto"})
        if clash:
            raise ValueError(f"engine name {sorted(clash)[0]!r} is registered already")
        _ENGINES[engine.name] = engine


def unregister(name: str) -> Engine:
    """Remove the engine called ``name`` and return it (tests, plug-ins)."""
    return _ENGINES.pop(name)


def registered() -> list[Engine]:
    """Every engine, in registration order."""
    return list(_ENGINES.values())


def names() -> list[str]:
    """What ``--backend`` takes besides "auto", in registration order."""
    return list(_ENGINES)


def choices() -> tuple[str, ...]:
    """What ``--backend`` takes: "auto", then every engine."""
    return ("auto", *_ENGINES)


def precision_choices() -> tuple[str, ...]:
    """What ``--precision`` takes: "auto", then every precision some engine runs."""
    found = dict.fromkeys(p for e in _ENGINES.values() for p in e.precisions)
    return ("auto", *found)


def ranked() -> list[Engine]:
    """The engines ``auto`` tries, in the order it tries them."""
    ranks = {e.name: e.rank for e in _ENGINES.values() if e.rank is not None}
    return [_ENGINES[name] for name in sorted(ranks, key=ranks.__getitem__)]


def find(name: str) -> Engine:
    """The engine ``name`` (or one of its aliases) names; BackendUnavailable if none."""
    for engine in _ENGINES.values():
        if name == engine.name or name in engine.aliases:
            return engine
    raise BackendUnavailable(f"unknown backend {name!r} (choose from {', '.join(choices())})")


def device_of(engine_name: str) -> str:
    """The device an engine name runs on: "cuda", "gpu", "npu" or "cpu"."""
    parts = engine_name.lower().split("-")
    for device in ("cuda", "gpu", "npu"):
        if device in parts:
            return device
    return "cpu"


def engines_here() -> list[EngineStatus]:
    """Every engine ``--backend`` names except "auto", with whether it runs here (probed
    cheaply: no model is loaded, TensorFlow is not imported)."""
    found = []
    for engine in registered():
        ok, why = engine.check()
        found.append(EngineStatus(engine.name, ok, "" if ok else why))
    return found


def available_names() -> list[str]:
    """The ``--backend`` names that can run here, "auto" first (menus such as the GUI's)."""
    return ["auto", *(s.name for s in engines_here() if s.available)]


def create(bundle: ModelBundle, name: str = "auto", width: int = 416, height: int = 416,
           precision: str = "auto", calibrate: Sequence[Path] = ()) -> Backend:
    """The backend called ``name`` (see :func:`choices`), or the best one here for "auto".

    ``auto`` tries the engines by rank (:func:`ranked`; today OpenCV CUDA FP16, OpenCV CUDA,
    ONNX Runtime CUDA, OpenVINO CPU, ONNX Runtime CPU, OpenCV CPU: docs/engines.md). An
    explicit name that cannot run here raises BackendUnavailable.

    ``precision`` (:func:`precision_choices`): "auto" lets the engine pick (OpenVINO: bf16
    where the CPU has it); a precision only some engines run picks the first of them here
    under ``auto``; int8 is calibrated on ``calibrate``.
    """
    engine = None if name == "auto" else find(name)
    if precision not in precision_choices():
        raise BackendUnavailable(f"unknown precision {precision!r} (choose from "
                                 f"{', '.join(precision_choices())})")
    if engine is None:
        if precision == "auto" or all(precision in e.precisions for e in ranked()):
            return _auto(bundle, width, height, precision)
        engine = _first_running(precision)
    elif precision != "auto" and precision not in engine.precisions:
        raise BackendUnavailable(_precision_elsewhere(precision))
    return engine.factory(bundle, width, height, precision, calibrate)


def _runs(precision: str) -> list[Engine]:
    """The engines that run ``precision``, auto's order first, then the unranked ones."""
    ranks = ranked()
    return [e for e in ranks + [e for e in registered() if e not in ranks]
            if precision in e.precisions]


def _first_running(precision: str) -> Engine:
    """The first engine here that runs ``precision`` (``auto`` with a reduced precision)."""
    candidates = _runs(precision)
    for engine in candidates:
        if engine.check()[0]:
            return engine
    labels = " or ".join(e.label or e.name for e in candidates)
    installs = "; ".join(e.install for e in candidates if e.install)
    raise BackendUnavailable(f"--precision {precision} needs the {labels} backend"
                             + (f" ({installs})" if installs else ""))


def _precision_elsewhere(precision: str) -> str:
    """One line: which engines run ``precision`` (asked of an engine that does not)."""
    notes = [note for e in registered() for p, note in e.precision_notes if p == precision]
    return (f"--precision {precision}: only the {' and '.join(e.name for e in _runs(precision))}"
            f" backend runs {precision}" + (f" ({'; '.join(notes)})" if notes else ""))


def _auto(bundle: ModelBundle, width: int, height: int, precision: str) -> Backend:
    skipped: dict[str, str] = {}
    for engine in ranked():
        ok, why = engine.check()
        if not ok:
            skipped[engine.name] = why
            continue
        try:
            backend = engine.factory(bundle, width, height, precision, ())
        except engine.auto_errors as exc:
            skipped[engine.name] = f"{engine.name} failed: {exc}"
            continue
        backend.reason = (engine.auto_reason(backend, skipped) if engine.auto_reason
                          else f"auto: {engine.name} is the first engine in auto's order that "
                          "runs here")
        return backend
    raise BackendUnavailable("auto: no engine runs here: "
                             + "; ".join(f"{n}: {why}" for n, why in skipped.items()))
