"""`workbench detect --ray`: a real local Ray (2 CPUs) gives the local run's outputs, byte for
byte, and keeps every result when an actor dies in the middle of the job."""

from __future__ import annotations

import filecmp
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.data.images import list_images
from workbench.data.synth import make_demo_dataset
from workbench.detect.detector import Detector

COMMON = ["--backend", "cpu", "--size", "160", "--conf", "0.5"]


def test_ray_options_without_ray_are_an_error(tmp_path, capsys):
    make_demo_dataset(tmp_path / "ds", images=1, seed=0, size=64)
    assert main(["detect", str(tmp_path / "ds"), "--model", "demo", "--workers", "2"]) == 2
    assert "--workers and --gpus-per-worker need --ray" in capsys.readouterr().err


def test_an_unreachable_cluster_is_one_line_in_seconds(tmp_path, capsys):
    import socket
    import time

    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")
    make_demo_dataset(tmp_path / "ds", images=1, seed=0, size=64)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    assert main(["detect", str(tmp_path / "ds"), "--model", "demo", "--out", str(tmp_path / "o"),
                 "--ray", f"127.0.0.1:{port}"]) == 2
    assert time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err
    assert not (tmp_path / "o").exists()  # nothing written for a job that never started


def test_a_bad_model_is_refused_before_ray_starts(tmp_path, capsys, model):
    make_demo_dataset(tmp_path / "ds", images=1, seed=0, size=64)
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in (model.cfg, model.names):
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / model.weights.name).write_bytes(model.weights.read_bytes()[:-40])  # cut short
    args = ["detect", str(tmp_path / "ds"), "--model", str(bad), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    local = capsys.readouterr().err
    assert main([*args, "--ray", "127.0.0.1:1"]) == 2  # no cluster there: never reached
    assert capsys.readouterr().err == local and "model.weights" in local


def test_missing_ray_names_the_extra(tmp_path, capsys, monkeypatch):
    make_demo_dataset(tmp_path / "ds", images=1, seed=0, size=64)
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without Ray imports
    assert main(["detect", str(tmp_path / "ds"), "--model", "demo", "--ray"]) == 2
    err = capsys.readouterr().err
    assert "--ray needs Ray" in err and '.[cluster]"' in err


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the module; `detect --ray` joins it instead of starting one."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Seven demo images in two folders plus one unreadable file among them."""
    root = make_demo_dataset(tmp_path_factory.mktemp("data") / "ds", images=7, seed=3, size=192)
    sub = root / "sub"
    sub.mkdir()
    for p in list_images(root)[:3]:
        p.rename(sub / p.name)
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    return root


def local_results(model, root):
    det = Detector(model, "cpu", size=160)
    return list(det.detect_many(list_images(root), conf=0.5, nms=0.45))


def same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    # the run markers differ by their run ids only
    marked = [f for f in files_a if f.name == ".workbench-detect.json"]
    for marker in marked:
        a_run, b_run = (json.loads((root / marker).read_text()) for root in (a, b))
        assert a_run.pop("run") != b_run.pop("run") and a_run == b_run
    _, mismatch, errors = filecmp.cmpfiles(a, b, [f for f in files_a if f not in marked],
                                           shallow=False)
    assert mismatch == [] and errors == []


@pytest.mark.slow
@pytest.mark.parametrize("options", [["--format", "coco"], ["--format", "yolo", "--save-images"],
                                     ["--format", "csv", "--merge-boxes"]])
def test_ray_run_writes_what_the_local_run_writes(local_ray, model, images, tmp_path, capsys,
                                                  options):
    args = ["detect", str(images), "--model", str(model.cfg.parent), *options, *COMMON]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    local_out = capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "ray"), "--ray", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    same_tree(tmp_path / "local", tmp_path / "ray")
    if "--save-images" in options:  # drawn from images that came back from the actors
        assert len(list((tmp_path / "ray" / "annotated").rglob("*.jpg"))) == 7
    # the same first summary line (rate aside), the broken image skipped and named
    assert local_out.split(",")[:2] == captured.out.split(",")[:2]
    assert ", 1 skipped" in captured.out and "broken.jpg" in captured.err
    # the summary names the cluster, the node and the engine that ran there
    assert "ray: " in captured.out and "2 workers asked" in captured.out
    node = local_ray.util.get_node_ip_address()
    assert f"node {node}: opencv-cpu (" in captured.out


@pytest.mark.slow
def test_small_blocks_over_two_actors_keep_input_order(local_ray, model, images, monkeypatch):
    from ray.data import DataContext

    from workbench.detect.ray_runner import RaySettings, RaySummary, detect_on_ray

    want = local_results(model, images)
    summary = RaySummary()
    # both actors up before the first block goes out, or on a busy machine one takes them all
    monkeypatch.setattr(DataContext.get_current(), "wait_for_min_actors_s", 300)
    got = list(detect_on_ray([r.path for r in want], model,
                             RaySettings(workers=2, block_images=2), backend="cpu",
                             size=(160, 160), conf=0.5, nms=0.45, summary=summary))
    assert [r.path for r in got] == [r.path for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.error == w.error and (g.width, g.height) == (w.width, w.height)
        if w.ok:
            np.testing.assert_array_equal(g.detections.boxes, w.detections.boxes)
            np.testing.assert_array_equal(g.detections.scores, w.detections.scores)
            np.testing.assert_array_equal(g.detections.class_ids, w.detections.class_ids)
    assert sum(summary.engines.values()) == len(want)
    assert len(summary.actors) == 2  # four blocks, both actors took some


def crashing_worker(marker: Path):
    """The real actor, whose process exits on its second block the first time any actor gets
    there, like a node lost in the middle of a job."""
    from workbench.detect.ray_runner import DetectWorker

    class Dying(DetectWorker):
        calls = 0

        def __call__(self, block):
            self.calls += 1
            if self.calls == 2:
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    pass
                else:
                    os._exit(1)  # no exception, no cleanup: the process is simply gone
            return super().__call__(block)

    return Dying


@pytest.mark.slow
def test_a_lost_actor_is_restarted_and_its_block_retried(local_ray, model, images, tmp_path):
    from workbench.detect.ray_runner import RaySettings, RaySummary, detect_on_ray

    want = local_results(model, images)
    summary = RaySummary()
    marker = tmp_path / "died"
    got = list(detect_on_ray([r.path for r in want], model,
                             RaySettings(workers=1, block_images=3), backend="cpu",
                             size=(160, 160), conf=0.5, nms=0.45, summary=summary,
                             worker_class=crashing_worker(marker)))
    assert marker.exists()  # the actor did die
    # one actor asked for, two answered: the first, then its replacement that redid block 2
    assert len(summary.actors) == 2
    assert [r.path for r in got] == [r.path for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.error == w.error
        if w.ok:
            np.testing.assert_array_equal(g.detections.scores, w.detections.scores)
            np.testing.assert_array_equal(g.detections.boxes, w.detections.boxes)


@pytest.mark.slow
def test_ctrl_c_stops_the_job_keeps_results_and_the_cluster(local_ray, model, tmp_path):
    import signal
    import subprocess
    import time

    # 3030 images, long enough to be stopped on a busy machine: 30 and 3000 hard links to them
    root = tmp_path / "many"
    real = list_images(make_demo_dataset(root / "real", images=30, seed=2, size=64))
    for i in range(3000):
        os.link(real[i % 30], root / f"{i:04d}.jpg")
    out = tmp_path / "out"
    address = local_ray.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "detect", str(root), "--model", str(model.cfg.parent),
         "--out", str(out), "--ray", address, "--workers", "1", *COMMON],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # the run is built in a private folder beside OUT (.out.building-*) until it ends
        while (not any(tmp_path.glob(".out.building-*/0*.txt")) and proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # what Ctrl+C sends
        # a hang guard, not a speed check: 12 s on a quiet 2-core machine, over 60 s when a
        # training run shares it
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "cancelled after" in err and "workbench detect: interrupted" in err
    written = list(out.glob("0*.txt"))
    assert 0 < len(written) < 3000 and (out / "classes.txt").is_file()
    # the cluster is still up, and the CPU this job's actor held is free again: it is gone
    assert local_ray.cluster_resources().get("CPU") == 2
    deadline = time.monotonic() + 30
    while local_ray.available_resources().get("CPU") != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert local_ray.available_resources().get("CPU") == 2
    assert "Traceback" not in err  # one line, not Ray's clean-up noise
