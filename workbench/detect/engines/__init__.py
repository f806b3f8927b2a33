"""The detection engines (OpenCV DNN, ONNX Runtime, OpenVINO, TensorFlow), one module each,
in one registry (``registry``: how to add an engine), behind one interface (``base``).

    from workbench.detect.engines import create, engines_here
    backend = create(bundle, "auto", 416, 416)
"""

from workbench.detect.engines.base import Backend, Done, Pending
from workbench.detect.engines.registry import (
    Engine,
    EngineStatus,
    available_names,
    choices,
    create,
    device_of,
    engines_here,
    find,
    names,
    precision_choices,
    ranked,
    register,
    registered,
    unregister,
)

# isort: off
# Each module registers its engines when imported; this order is the order --backend lists them.
from workbench.detect.engines import opencv  # noqa: E402 - cpu, cuda, cuda-fp16
from workbench.detect.engines import onnxruntime  # noqa: E402 - onnxruntime, onnxruntime-cuda
from workbench.detect.engines import openvino  # noqa: E402
from workbench.detect.engines import tensorflow  # noqa: E402 - TensorFlow loads on build only
# isort: on

__all__ = ["Backend", "Done", "Engine", "EngineStatus", "Pending", "available_names", "choices",
           "create", "device_of", "engines_here", "find", "names", "onnxruntime", "opencv",
           "openvino", "precision_choices", "ranked", "register", "registered", "tensorflow",
           "unregister"]
