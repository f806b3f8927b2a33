"""The public box surface: ``iou_matrix`` and ``nms`` (and the rest of box geometry).

Kept at this path because the guide names ``workbench.boxes.iou_matrix`` and
``workbench.boxes.nms`` as the public surface; the code lives in ``workbench.geometry``.
"""

from workbench.geometry.boxes import *  # noqa: F403
from workbench.geometry.boxes import __all__ as _box_names
from workbench.geometry.nms import *  # noqa: F403
from workbench.geometry.nms import __all__ as _nms_names

__all__ = [*_box_names, *_nms_names]
