"""Training in TensorFlow: a Keras model built from a darknet cfg, weights in and out, the loss.

Importing this package does not import TensorFlow; its modules do, so the CLI imports them
inside the ``train`` verb only. TensorFlow's C++ logging is quietened before it first loads.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
