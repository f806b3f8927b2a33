"""The public box surface: ``iou_matrix`` and ``nms`` (and the rest of box geometry).

Kept at this path because the guide names ``workbench.boxes.iou_matrix`` and
``workbench.boxes.nms`` as the public surface; the code lives in ``workbench.geometry``.
"""

from workbench.geometry.boxes import *  # noqa: F403
from workbench.geometry.boxes import __all__ as _box_names
from workbench.geometry.nms import (
    Decision,
    NmsTrace,
    batched_nms,
    diou_nms,
    nms,
    nms_trace,
    soft_nms,
)

__all__ = [*_box_names, "nms", "batched_nms", "soft_nms", "diou_nms", "nms_trace", "NmsTrace",
           "Decision"]
