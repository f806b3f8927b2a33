"""The engines' names as the rest of the workbench imports them: the interface every engine
implements (``Backend``, ``Pending``, ``Done``: ``workbench.detect.engines.base``) and the
choice of engine (``make_backend``, ``available_backends``), which reads the engine registry
(``workbench.detect.engines.registry``: one module per engine, and how to add one).
"""

from __future__ import annotations

from workbench.detect.engines import (
    Backend,
    Done,
    Pending,
    available_names,
    choices,
    create,
    precision_choices,
)

__all__ = ["BACKEND_CHOICES", "PRECISION_CHOICES", "Backend", "Done", "Pending",
           "available_backends", "make_backend"]

#: what ``--backend`` accepts ("opencv-*" and "*-cpu" spellings are accepted too): the
#: registered engines when this module loaded (``engines.choices()`` is the live list)
BACKEND_CHOICES = choices()
#: what ``--precision`` accepts; only OpenVINO runs other than fp32 (OpenCV has "cuda-fp16")
PRECISION_CHOICES = precision_choices()

#: ``make_backend(bundle, name="auto", width=416, height=416, precision="auto", calibrate=())``:
#: the backend called ``name``, or the best one here for "auto" (``engines.registry.create``)
make_backend = create


def available_backends() -> list[str]:
    """The BACKEND_CHOICES that can run here (for menus such as the GUI's Detect panel)."""
    return available_names()
