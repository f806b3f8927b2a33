"""The engine registry (issue 22): what lists or picks engines reads it (the CLI's --backend
and --precision choices, docs/engines.md's table, auto's order, the window's list), a new engine
is one module and one registration, and the engine modules import no circle."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import grimp
import numpy as np
import pytest
from model_factory import random_bundle

from workbench.cli import build_parser
from workbench.detect import engines
from workbench.detect.backends import BACKEND_CHOICES, PRECISION_CHOICES, make_backend
from workbench.detect.engines import Backend, Engine
from workbench.detect.engines.opencv import OpenCvBackend
from workbench.errors import BackendUnavailable

ROOT = Path(__file__).resolve().parents[1]
ENGINE_MODULES = ["workbench.detect.engines." + m for m in
                  ("base", "registry", "onnx_cache", "opencv", "onnxruntime", "openvino",
                   "tensorflow")]


def _detect_option(flag: str) -> argparse.Action:
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return verbs.choices["detect"]._option_string_actions[flag]


def test_the_cli_offers_exactly_the_registered_engines_and_precisions():
    assert list(_detect_option("--backend").choices) == list(engines.choices())
    assert list(_detect_option("--precision").choices) == list(engines.precision_choices())
    assert BACKEND_CHOICES == engines.choices() and PRECISION_CHOICES == \
        engines.precision_choices()


def _docs_table() -> dict[str, str]:
    """docs/engines.md's engine table: each --backend name -> its precisions cell."""
    text = (ROOT / "docs" / "engines.md").read_text(encoding="utf-8")
    header = text.index("| `--backend` | engine | precisions |")
    rows = {}
    for line in text[header:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        first, _engine, precisions = (cell.strip() for cell in line.strip("|").split("|"))
        for name in re.findall(r"`([^`]+)`", first):
            rows[name] = precisions
    return rows


def test_the_docs_table_lists_exactly_the_registered_engines():
    rows = _docs_table()
    assert sorted(rows) == sorted(engines.names())
    for engine in engines.registered():
        for precision in engine.precisions:
            assert precision in rows[engine.name], (engine.name, precision)


def test_auto_order_and_what_runs_here_come_from_the_registry():
    ranked = [e.name for e in engines.ranked()]
    assert ranked == ["cuda-fp16", "cuda", "onnxruntime-cuda", "openvino", "onnxruntime", "cpu"]
    assert "tensorflow" not in ranked  # auto never loads TensorFlow
    here = engines.engines_here()
    assert [s.name for s in here] == engines.names()
    assert engines.available_names() == ["auto", *(s.name for s in here if s.available)]


def test_a_precision_an_engine_lacks_says_which_engines_run_it():
    with pytest.raises(BackendUnavailable) as caught:
        make_backend(None, "cpu", 160, 160, precision="fp16")
    assert str(caught.value) == ("--precision fp16: only the openvino backend runs fp16 "
                                 "(OpenCV's half precision is --backend cuda-fp16)")
    with pytest.raises(BackendUnavailable, match="unknown backend 'gpu' .*tensorflow"):
        make_backend(None, "gpu")


def test_auto_with_bf16_and_no_openvino_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    with pytest.raises(BackendUnavailable) as caught:
        make_backend(None, "auto", 160, 160, precision="bf16")
    assert str(caught.value) == "--precision bf16 needs the OpenVINO backend (pip install openvino)"


class WrappedOpenCv(Backend):
    """A stand-in engine: OpenCV DNN on the CPU under another name."""

    def __init__(self, bundle, width: int, height: int) -> None:
        self.inner = OpenCvBackend(bundle, width, height, "cpu")
        self.width, self.height = width, height
        self.name, self.reason = "wrapped-cpu", "asked for the wrapped engine"

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.inner.forward(blob)


@pytest.fixture
def wrapped_engine():
    engine = Engine("wrapped-cpu",
                    lambda bundle, width, height, precision, calibrate:
                    WrappedOpenCv(bundle, width, height),
                    lambda: (True, ""), rank=-1, label="Wrapped OpenCV")
    engines.register(engine)  # the new engine's one line; nothing else is edited
    try:
        yield engine
    finally:
        engines.unregister("wrapped-cpu")


def test_a_new_engine_is_one_registration(wrapped_engine, tmp_path):
    assert engines.names()[-1] == "wrapped-cpu" and "wrapped-cpu" in engines.choices()
    assert engines.ranked()[0] is wrapped_engine  # rank -1: auto tries it first
    assert "wrapped-cpu" in engines.available_names()
    bundle = random_bundle(tmp_path, "yolov3-tiny", size=160)
    auto = make_backend(bundle, "auto", 160, 160)
    assert isinstance(auto, WrappedOpenCv)
    assert auto.reason == "auto: wrapped-cpu is the first engine in auto's order that runs here"
    asked = make_backend(bundle, "wrapped-cpu", 160, 160)
    assert asked.reason == "asked for the wrapped engine"
    blob = np.random.default_rng(0).random((1, 3, 160, 160), dtype=np.float32)
    reference = OpenCvBackend(bundle, 160, 160).forward(blob)
    for ours, theirs in zip(asked.forward(blob), reference, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="registered already"):
        engines.register(wrapped_engine)


def test_unregistering_takes_the_engine_out_of_every_list(wrapped_engine):
    engines.unregister("wrapped-cpu")
    try:
        assert "wrapped-cpu" not in engines.choices()
        assert wrapped_engine not in engines.ranked()
        with pytest.raises(BackendUnavailable, match="unknown backend 'wrapped-cpu'"):
            make_backend(None, "wrapped-cpu")
    finally:
        engines.register(wrapped_engine)  # the fixture unregisters it


def test_the_engine_modules_import_no_circle():
    graph = grimp.build_graph("workbench", exclude_type_checking_imports=True)
    for module in ENGINE_MODULES:
        for imported in graph.find_modules_directly_imported_by(module):
            assert not graph.chain_exists(importer=imported, imported=module), (module, imported)
        # the engines never reach for the facade, the Detector or the package's __init__
        for above in ("workbench.detect.backends", "workbench.detect.detector",
                      "workbench.detect.engines"):
            assert not graph.chain_exists(importer=module, imported=above), (module, above)
    inside = {m for m in graph.find_modules_directly_imported_by("workbench.detect.engines.base")
              if m.startswith("workbench")}
    assert inside == set()  # the interface imports no engine


@pytest.mark.parametrize("shape", [(120, 200, 3), (160, 160, 3)])
def test_int8_calibration_sees_the_pixels_detection_feeds(shape):
    from workbench.detect.detector import preprocess
    from workbench.detect.engines.openvino import stretched_blob

    image = np.random.default_rng(1).integers(0, 255, shape, dtype=np.uint8)
    np.testing.assert_array_equal(stretched_blob(image, 160, 160), preprocess(image, 160, 160))
