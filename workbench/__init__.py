"""Detection workbench core: datasets, label formats, boxes, evaluation, Darknet models, detection.

This package never imports Qt (enforced by import-linter) and imports TensorFlow only lazily,
inside ``workbench.train`` and the TensorFlow detection backend.
"""

__version__ = "0.1.0"
