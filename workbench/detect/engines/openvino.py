"""The OpenVINO engine: the exported ONNX file (cached as for ONNX Runtime) run by OpenVINO on CPU.

OpenVINO is the fastest CPU engine measured here (docs/engines.md): its fp32 matches ONNX
Runtime, and on a CPU with AMX or AVX-512 BF16 its bf16 mode runs yolov3-tiny about 4x faster.

Precisions (``--precision``):

- ``fp32``: exact (OpenCV's outputs within 2e-4);
- ``bf16`` / ``fp16``: OpenVINO's inference-precision hint; needs the CPU to offer it
  (``OPTIMIZATION_CAPABILITIES``);
- ``int8``: the model quantized by NNCF on the user's own images (``calibrate``), with the first
  convolution and the heads' convolutions kept in float; cached per model and image set;
- ``auto``: bf16 where the CPU runs it natively (AMX or AVX-512 BF16), else fp32. bf16 kept
  mAP@0.5 within 0.5 points of fp32 on the demo data and BCCD (docs/engines.md); int8 did not
  always, so it is opt-in.

Forwards run on a pool of infer requests (``requests``): the folder pipeline keeps several in
flight so decoding the next images overlaps the network (``start`` / ``Pending``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.data.images import load_bgr
from workbench.detect.engines.base import Backend, Done, Pending
from workbench.detect.engines.onnx_cache import cache_dir, cached_onnx, cpu_cores, model_key
from workbench.detect.engines.registry import Engine, register
from workbench.errors import BackendUnavailable, ModelError

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
#: calibration images NNCF looks at, at most (its own default subset is 300)
CALIBRATION_IMAGES = 300


def available() -> bool:
    """Whether the openvino package imports and offers a CPU device."""
    return check()[0]


def check() -> tuple[bool, str]:
    """Whether OpenVINO runs on the CPU here, and why not (the registry's check)."""
    try:  # openvino is heavy: imported when this engine is probed or built
        import openvino as ov
    except ImportError:
        return False, "openvino is not installed"
    try:
        cpu = "CPU" in ov.Core().available_devices
    except RuntimeError:
        cpu = False
    return (True, "") if cpu else (False, "OpenVINO here lists no CPU device")


def cpu_flags() -> set[str]:
    """The CPU feature flags /proc/cpuinfo lists (empty where there is none: macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def capabilities() -> list[str]:
    """OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES`` (e.g. FP32, BF16, FP16, INT8)."""
    import openvino as ov  # heavy: only once OpenVINO is asked about

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def supported_precisions() -> list[str]:
    """The precisions this CPU runs natively: what ``--precision`` may ask for here."""
    caps = set(capabilities())
    found = ["fp32"]
    if "BF16" in caps:
        found.append("bf16")
    if "FP16" in caps:
        found.append("fp16")
    if "INT8" in caps:
        found.append("int8")
    return found


def auto_precision() -> tuple[str, str]:
    """(precision, why) that ``--precision auto`` picks on this CPU."""
    flags = cpu_flags()
    if "bf16" in supported_precisions():
        unit = ("AMX present" if "amx_bf16" in flags
                else "AVX-512 BF16 present" if "avx512_bf16" in flags
                else "the CPU runs BF16")
        return "bf16", f"{unit}; bf16 keeps mAP@0.5 within 0.5 of fp32 (docs/engines.md)"
    return "fp32", "no BF16 unit on this CPU (AMX or AVX-512 BF16)"


def stretched_blob(image_bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """(1, 3, height, width) float32 RGB blob in [0, 1] of the image stretched to the network
    input: the pixels ``Detector.preprocess`` gives without letterbox, so int8 is calibrated on
    what detection feeds the network (tests/test_engine_registry.py holds them equal)."""
    if image_bgr.shape[:2] != (height, width):
        image_bgr = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.dnn.blobFromImage(image_bgr, 1 / 255.0, swapRB=True, crop=False)


def _calibration_key(paths: Sequence[Path]) -> str:
    """Hash of the calibration image list: names, sizes and modification times."""
    digest = hashlib.sha256()
    for p in sorted(str(p) for p in paths):
        try:
            st = os.stat(p)
        except OSError:
            continue
        digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def kept_in_float(model) -> list[str]:
    """Names of the convolutions int8 leaves in float: the first one and every head's.

    A head is a convolution without an activation: OpenVINO reads the exporter's Conv + bias
    as Convolution -> Add, and after a head's Add comes the box decoding, not a PRelu (leaky).
    """
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    keep = {convs[0].get_friendly_name()} if convs else set()
    for op in convs:
        if not {"PRelu", "Relu", "LeakyRelu"} & _types_after(op, skip="Add"):
            keep.add(op.get_friendly_name())
    return sorted(keep)


def _types_after(op, skip: str) -> set[str]:
    """Types of the ops fed by ``op``, looking through one op of type ``skip`` (the bias)."""
    found = set()
    for out in op.outputs():
        for target in out.get_target_inputs():
            node = target.get_node()
            if node.get_type_name() == skip:
                found |= _types_after(node, skip="")
            else:
                found.add(node.get_type_name())
    return found


def quantized_model(bundle: ModelBundle, width: int, height: int, images: Sequence[Path],
                    preprocess: Callable[[np.ndarray], np.ndarray]) -> Path:
    """The int8 OpenVINO IR of ``bundle`` calibrated on ``images``, made by NNCF if not cached."""
    # NNCF sends usage telemetry unless told not to (on by default, no prompt); NNCF_CI is the
    # switch its telemetry module reads (nothing else in NNCF reads it). Calibration stays local.
    os.environ.setdefault("NNCF_CI", "1")
    try:  # nncf is optional (the int8 extra) and heavy
        import nncf
    except ImportError:
        raise BackendUnavailable("int8 needs NNCF: pip install 'detection-workbench[int8]' "
                                 "(or pip install nncf)") from None
    import openvino as ov  # heavy: only once a model is quantized

    if not images:
        raise ModelError("int8 needs calibration images (--calibrate DIR): none found")
    images = list(images)
    key = hashlib.sha256(f"{model_key(bundle, width, height)} {_calibration_key(images)} "
                         f"{nncf.__version__} {CALIBRATION_IMAGES}".encode()).hexdigest()[:20]
    folder = cache_dir().parent / "openvino"
    target = folder / f"{Path(bundle.cfg).stem}-{width}x{height}-int8-{key}"
    xml = target / "model.xml"
    if xml.is_file() and (target / "model.bin").is_file():
        return xml
    onnx_path = cached_onnx(bundle, width, height)
    core = ov.Core()
    model = core.read_model(str(onnx_path))
    model.reshape([1, 3, height, width])

    def blob(path: Path) -> np.ndarray:
        return preprocess(load_bgr(path))

    readable = []
    for p in images[:CALIBRATION_IMAGES * 2]:  # skip unreadable files, as detect does
        try:
            readable.append(blob(p))
        except Exception:  # noqa: BLE001 - a bad calibration image is skipped, not fatal
            continue
        if len(readable) >= CALIBRATION_IMAGES:
            break
    if not readable:
        raise ModelError("int8 calibration: none of the calibration images could be read")
    logging.getLogger("nncf").setLevel(logging.ERROR)
    quantized = nncf.quantize(
        model, nncf.Dataset(readable), subset_size=len(readable),
        preset=nncf.QuantizationPreset.MIXED,
        ignored_scope=nncf.IgnoredScope(names=kept_in_float(model), validate=False))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # saved into a temporary folder and renamed: another process sees all or nothing
        tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=folder))
        ov.save_model(quantized, str(tmp / "model.xml"), compress_to_fp16=False)
        try:
            os.replace(tmp, target)
        except OSError:  # someone else finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot write the int8 model: {exc}") from None
    return xml


class _Pool:
    """A compiled model and its infer requests; a request is taken per image and given back."""

    def __init__(self, compiled, requests: int) -> None:
        self.compiled = compiled
        self.free = [compiled.create_infer_request() for _ in range(max(1, requests))]
        self.size = len(self.free)
        self.available = threading.Condition()

    def take(self):
        with self.available:
            while not self.free:
                self.available.wait()
            return self.free.pop()

    def give(self, request) -> None:
        with self.available:
            self.free.append(request)
            self.available.notify()


class _Request(Pending):
    """A forward in flight on OpenVINO infer requests (one per image); ``result()`` waits."""

    def __init__(self, pool: _Pool, images: np.ndarray, n_outputs: int) -> None:
        self.pool, self.n_outputs = pool, n_outputs
        self.requests = []
        for i in range(images.shape[0]):
            request = pool.take()
            # share_inputs: OpenVINO reads the caller's array in place, no copy
            request.start_async({0: images[i:i + 1]}, share_inputs=True)
            self.requests.append(request)
        self.images: np.ndarray | None = images  # kept alive while the requests read it

    def result(self) -> list[np.ndarray]:
        per_image = []
        try:
            for request in self.requests:
                request.wait()
                # copies: the request's buffers are reused by the next forward
                per_image.append([np.array(request.get_output_tensor(k).data)
                                  for k in range(self.n_outputs)])
        finally:
            for request in self.requests:
                self.pool.give(request)
            self.requests = []
            self.images = None
        if len(per_image) == 1:
            return per_image[0]
        return [np.concatenate([img[k] for img in per_image], axis=0)
                for k in range(self.n_outputs)]


def _bgr8_model(model):
    """``model`` taking uint8 NHWC BGR at the network size: the 1/255 scaling, BGR->RGB and
    NHWC->NCHW run inside OpenVINO's compiled graph instead of in Python (cv2.dnn's blob
    conversion cost more than the JPEG decoding on the folder pipeline's workers)."""
    import openvino as ov  # heavy: only once the first uint8 forward compiles
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
        .set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32) \
        .convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


class OpenVinoBackend(Backend):
    """``OpenVinoBackend(bundle, width, height, precision="auto", calibrate=(), requests=0)``.

    ``calibrate``: image paths for int8. ``requests``: infer requests (parallel forwards);
    0 takes twice OpenVINO's optimal number for the throughput hint (1 request: the latency
    hint).

    Besides the float blob of the Backend contract, ``start``/``forward`` take the image
    resized to the network input as uint8 (N, height, width, 3) BGR (``input_layout``
    "bgr8"): the blob conversion then runs inside OpenVINO.
    """

    input_layout = "bgr8"

    def __init__(self, bundle: ModelBundle, width: int, height: int, precision: str = "auto",
                 calibrate: Sequence[Path] = (), reason: str = "", *, requests: int = 0,
                 preprocess: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        try:  # openvino is heavy: imported when this engine is built
            import openvino as ov
        except ImportError:
            raise BackendUnavailable("the OpenVINO backend needs openvino: pip install "
                                     "openvino") from None
        if precision not in PRECISIONS:
            raise BackendUnavailable(f"unknown precision {precision!r} (choose from "
                                     f"{', '.join(PRECISIONS)})")
        core = ov.Core()
        if "CPU" not in core.available_devices:
            raise BackendUnavailable("OpenVINO here lists no CPU device")
        why = ""
        if precision == "auto":
            precision, why = auto_precision()
            why = f"auto: {why}"
        elif precision not in supported_precisions():
            raise BackendUnavailable(
                f"this CPU cannot run {precision} in OpenVINO (it offers "
                f"{', '.join(supported_precisions())}); --precision fp32 runs everywhere")
        if precision == "int8":
            if preprocess is None:
                preprocess = partial(stretched_blob, width=width, height=height)

            path = quantized_model(bundle, width, height, list(calibrate), preprocess)
            why = why or (f"asked for OpenVINO int8, calibrated on "
                          f"{min(len(calibrate), CALIBRATION_IMAGES)} images")
            hint = "f32"  # what int8 leaves in float (first layer, heads) stays exact
            source = path
        else:
            hint = _HINT[precision]
            source = cached_onnx(bundle, width, height)
        try:
            model = core.read_model(str(source))
        except RuntimeError:
            # a damaged cache file (disk trouble, a hand edit): export once more and retry
            if precision == "int8":
                raise ModelError(f"{source}: OpenVINO cannot read the cached int8 model; "
                                 f"delete {source.parent} to rebuild it") from None
            source.unlink(missing_ok=True)
            source = cached_onnx(bundle, width, height)
            try:
                model = core.read_model(str(source))
            except RuntimeError as exc:
                raise ModelError(f"{source}: OpenVINO cannot read the exported model: "
                                 f"{str(exc).strip().splitlines()[-1]}") from None
        # batch 1, static: the fastest shape; a batch of N runs as N requests in parallel
        model.reshape([1, 3, height, width])
        threads = cpu_cores()
        self._config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads,
                        "PERFORMANCE_HINT": "THROUGHPUT" if requests != 1 else "LATENCY"}
        self._core, self._model, self._source = core, model, source
        self._requests = requests
        self._pools: dict[str, _Pool] = {}
        self._compile_lock = threading.Lock()  # the pipeline's first bgr8 forward compiles
        self._pool("blob")
        self.n_outputs = len(model.outputs)
        self.model_path = Path(source)
        self.onnx_path = cached_onnx(bundle, width, height)
        self.precision = precision
        self.width, self.height = width, height
        self.in_flight = self._pools["blob"].size
        self.name = "openvino-cpu"
        self.reason = reason or why or f"asked for OpenVINO {precision} ({threads} threads)"

    def _pool(self, layout: str) -> _Pool:
        """The compiled model for ``layout`` ("blob" or "bgr8"), compiled on first use."""
        with self._compile_lock:
            if layout not in self._pools:
                model = self._model if layout == "blob" else _bgr8_model(self._model.clone())
                try:
                    compiled = self._core.compile_model(model, "CPU", self._config)
                except RuntimeError as exc:
                    raise ModelError(f"{self._source}: OpenVINO cannot compile the model: "
                                     f"{str(exc).strip().splitlines()[-1]}") from None
                # twice OpenVINO's optimal number (one per stream): a queued request starts
                # the moment a stream finishes, instead of after the pipeline has decoded
                # the finished one (bench_pipeline.py --requests 2 on BCCD: 215 vs 181
                # img/s end to end, docs/engines.md)
                n = self._requests or 2 * int(
                    compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
                if self._pools:  # same number of requests for both layouts
                    n = next(iter(self._pools.values())).size
                self._pools[layout] = _Pool(compiled, n)
            return self._pools[layout]

    def start(self, images: np.ndarray) -> Pending:
        """Start a forward of a float blob (N, 3, H, W) or uint8 BGR images (N, H, W, 3)."""
        if images.dtype == np.uint8:
            layout, shape = "bgr8", (self.height, self.width, 3)
        else:
            layout, shape = "blob", (3, self.height, self.width)
            images = images.astype(np.float32, copy=False)
        if images.ndim != 4 or images.shape[1:] != shape:
            raise ModelError(f"input of shape {tuple(images.shape)} does not fit the network "
                             f"input (N, {', '.join(map(str, shape))})")
        images = np.ascontiguousarray(images)
        pool = self._pool(layout)
        if images.shape[0] > pool.size:  # more images than requests: run them in turns
            parts = [_Request(pool, images[i:i + pool.size], self.n_outputs).result()
                     for i in range(0, images.shape[0], pool.size)]
            return Done([np.concatenate([p[k] for p in parts], axis=0)
                         for k in range(self.n_outputs)])
        return _Request(pool, images, self.n_outputs)

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.start(blob).result()


def build(bundle: ModelBundle, width: int, height: int, precision: str = "auto",
          calibrate: Sequence[Path] = ()) -> OpenVinoBackend:
    """The registry's factory."""
    if not available():
        raise BackendUnavailable("the OpenVINO backend needs the openvino package with a "
                                 "CPU device: pip install openvino")
    return OpenVinoBackend(bundle, width, height, precision, calibrate)


def auto_reason(backend: Backend, skipped: Mapping[str, str]) -> str:
    """Why ``auto`` took OpenVINO, after the reason of its own ``auto`` precision."""
    return ((f"{backend.reason}; " if backend.reason.startswith("auto") else "auto: ")
            + "no CUDA here; OpenVINO is the fastest CPU engine")


register(Engine("openvino", build, check, precisions=("fp32", "bf16", "fp16", "int8"), rank=40,
                label="OpenVINO", install="pip install openvino", aliases=("openvino-cpu",),
                auto_errors=(BackendUnavailable, ModelError, RuntimeError),
                auto_reason=auto_reason))
