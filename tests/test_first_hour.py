"""A newcomer's first hour: the traps a fresh machine showed, each closed with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.commands.gui import XCB_LIBRARIES, display_problem
from workbench.data.synth import make_demo_dataset

ROOT = Path(__file__).resolve().parents[1]

# An import of tensorflow fails in the child exactly as it does where the train extra is not
# installed (None in sys.modules makes ``import tensorflow`` raise ModuleNotFoundError).
WITHOUT_TF = "import sys; sys.modules['tensorflow'] = None\nfrom workbench.cli import main\n"


def _run(code: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("hour") / "demo", images=6, seed=3,
                             size=96)


def test_gui_without_a_display_is_one_line_and_exit_2_not_an_abort():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    for argv in ([], ["gui"]):       # bare `workbench` opens the GUI too
        proc = subprocess.run([sys.executable, "-m", "workbench", *argv], capture_output=True,
                              text=True, timeout=60, cwd=ROOT, env=env)
        assert proc.returncode == 2, proc.stderr       # Qt's own failure is SIGABRT (-6)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "no display" in lines[0]
        assert "QT_QPA_PLATFORM=offscreen" in lines[0] and "xvfb-run" in lines[0]


def test_display_problem_reads_the_environment_qt_would_use():
    assert display_problem({}, platform="darwin") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, platform="linux") is None
    assert "DISPLAY" in display_problem({}, platform="linux")
    assert "WAYLAND_DISPLAY" in display_problem({"QT_QPA_PLATFORM": "wayland"}, platform="linux")
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, platform="linux") is None
    # with a DISPLAY, what is said depends on the libraries this machine really has
    said = display_problem({"DISPLAY": ":0"}, platform="linux")
    import ctypes.util

    missing = [pkg for lib, pkg in XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]
    if missing:
        assert all(pkg in said for pkg in missing) and "apt-get install" in said
    else:
        assert said is None


def test_tensorflow_backend_without_the_train_extra_names_the_extra(demo):
    proc = _run(WITHOUT_TF + f"sys.exit(main(['detect', {str(demo)!r}, '--model', 'demo', "
                "'--backend', 'tensorflow']))")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert "TensorFlow" in line and ".[train]" in line


def test_train_checks_its_inputs_before_importing_tensorflow(demo, tmp_path):
    # every bad input is refused without TensorFlow even being importable
    bad_inputs = {
        "dataset": [str(tmp_path / "nope")],
        "weights": [str(demo), "--weights", str(tmp_path / "none.weights")],
        "template": [str(demo), "--template", str(tmp_path / "none.cfg")],
        "out": [str(demo), "--out", str(tmp_path / "a-file")],
        "resume": [str(demo), "--out", str(tmp_path / "no-run"), "--resume"],
        "size": [str(demo), "--size", "100"],
    }
    (tmp_path / "a-file").write_text("x")
    for what, argv in bad_inputs.items():
        start = time.perf_counter()
        proc = _run(WITHOUT_TF + f"sys.exit(main(['train', *{argv!r}]))")
        assert proc.returncode == 2, (what, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "TensorFlow" not in lines[0], (what, lines)
        assert time.perf_counter() - start < 20
    assert not (tmp_path / "no-run").exists()


def test_train_keeps_tensorflow_start_up_noise_off_the_terminal(demo, tmp_path):
    micro = ROOT / "tests" / "data" / "micro.cfg"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(demo), "--template", str(micro),
         "--size", "64", "--epochs", "1", "--batch", "4", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    for noise in ("oneDNN", "cuInit", "absl::InitializeLog", "cuda_", "E0000", "I0000"):
        assert noise not in proc.stderr and noise not in proc.stdout, noise


def test_demo_data_refuses_a_non_empty_folder_unless_forced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "classes.txt").write_text("cat\ndog\n")
    (out / "train.txt").write_text("my/own/list.jpg\n")
    assert main(["demo-data", str(out), "--images", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an empty folder" in err[0] and "--force" in err[0]
    assert (out / "classes.txt").read_text() == "cat\ndog\n"
    assert (out / "train.txt").read_text() == "my/own/list.jpg\n"
    assert main(["demo-data", str(out), "--images", "3", "--force"]) == 0
    assert (out / "classes.txt").read_text().split() == ["circle", "square", "triangle", "star"]
    assert main(["demo-data", str(tmp_path / "new"), "--images", "3"]) == 0


@pytest.mark.parametrize("verb", [["stats"], ["convert", "--to", "voc", "--out", "OUT"]])
def test_a_folder_without_images_is_an_error_not_an_empty_success(verb, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here\n")
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in verb]
    assert main([argv[0], str(empty), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no images found" in err[0] and str(empty) in err[0]
    assert not (tmp_path / "out").exists()
