"""`workbench train --strategy multiworker`: two real worker processes on 127.0.0.1 ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.data.synth import make_demo_dataset
from workbench.errors import WorkbenchError
from workbench.train.multiworker import role_from_env
from workbench.train.protocol import parse_event

ROOT = Path(__file__).resolve().parents[1]
MICRO = Path(__file__).parent / "data" / "micro.cfg"


def tf_config(hosts: list[str], task_type: str, index: int) -> str:
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": task_type, "index": index}})


def test_worker_zero_is_the_chief_unless_there_is_one():
    hosts = ["a:1", "b:2"]
    assert role_from_env({"TF_CONFIG": tf_config(hosts, "worker", 0)}).chief
    assert not role_from_env({"TF_CONFIG": tf_config(hosts, "worker", 1)}).chief
    with_chief = json.dumps({"cluster": {"chief": ["c:3"], "worker": hosts},
                             "task": {"type": "worker", "index": 0}})
    role = role_from_env({"TF_CONFIG": with_chief})
    assert not role.chief and role.workers == 3


@pytest.mark.parametrize("value, message", [
    ("", "needs TF_CONFIG"),
    ("{not json", "not a cluster description"),
    ('{"cluster": {"worker": ["a:1"]}}', "not a cluster description"),
    (tf_config(["a:1", "b:2"], "worker", 2), "task worker 2 is not in the cluster"),
])
def test_a_bad_tf_config_is_one_clear_error(value, message):
    with pytest.raises(WorkbenchError, match=message):
        role_from_env({"TF_CONFIG": value})


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(data: Path, run: Path, *extra: str) -> list[list[dict]]:
    """Two `workbench train --strategy multiworker` processes on fresh 127.0.0.1 ports; each
    one's JSON events. 8 training images at global batch 4 (2 per worker): two steps an epoch."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": tf_config(hosts, "worker", index)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "workbench", "train", str(data), "--template", str(MICRO),
             "--size", "64", "--batch", "4", "--strategy", "multiworker", "--out", str(run),
             "--json", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=400)
            assert proc.returncode == 0, err[-3000:]
            outputs.append([parse_event(line) for line in out.splitlines()])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return outputs


def check_in_step(outputs: list[list[dict]], steps: list[int]) -> None:
    """Both workers report the same all-reduced loss each step and the same weights at the end."""
    losses = [[e["loss"] for e in events if e["event"] == "batch"] for events in outputs]
    assert [e["step"] for e in outputs[0] if e["event"] == "batch"] == steps
    assert losses[0] == losses[1]
    done = [events[-1] for events in outputs]
    assert all(d["event"] == "done" and d["status"] == "finished" for d in done)
    # every weight, batch-norm moving statistics included
    assert done[0]["weights_sha256"] == done[1]["weights_sha256"]


@pytest.mark.slow
def test_two_workers_train_in_step_and_only_the_chief_writes(tmp_path):
    data = make_demo_dataset(tmp_path / "data", images=10, seed=7, size=64, valid_fraction=0.2)
    run = tmp_path / "run"
    outputs = run_workers(data, run, "--epochs", "1")
    starts = [next(e for e in events if e["event"] == "start") for events in outputs]
    assert all(s["replicas"] == 2 and s["steps_per_epoch"] == 2 for s in starts)
    check_in_step(outputs, [1, 2])
    # the chief wrote the run; worker 1 wrote only to its scratch folder, now gone
    expected = ["best", "bundle", "checkpoints", "config.json", "metrics.csv", "metrics.png",
                "model.cfg"]
    assert sorted(p.name for p in run.iterdir()) == expected
    assert {p.suffix for p in (run / "bundle").iterdir()} == {".cfg", ".weights", ".names"}
    saved = [e["path"] for e in outputs[1] if e["event"] == "checkpoint"]
    assert saved and all(Path(p).is_relative_to(run / ".worker-1") for p in saved)

    # --resume: both workers restore the chief's checkpoint and go on in step
    outputs = run_workers(data, run, "--epochs", "2", "--resume")
    starts = [next(e for e in events if e["event"] == "start") for events in outputs]
    assert all(s["resumed"] and s["step"] == 2 for s in starts)
    check_in_step(outputs, [3, 4])
    assert sorted(p.name for p in run.iterdir()) == expected
