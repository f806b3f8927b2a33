"""Outputs never overwrite inputs, and two runs never share one output (issue 21, items 1-4).

Each case is the original one, reproduced with real files, real symbolic and hard links and
real child processes started together: detect --out into the data set itself, a second
detect into an earlier run's folder, --save-video / weights partial / export / convert onto
their own inputs, and two converts, detects and trainings into one new folder at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_factory import write_demo_video

from workbench.cli import main
from workbench.data.images import list_images
from workbench.data.synth import make_demo_dataset

ROOT = Path(__file__).resolve().parents[1]
DETECT = ("--backend", "cpu", "--size", "160", "--conf", "0.5")
LOST = "was created by another run"


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (links followed) by its relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _detect(src, out, model, *extra) -> int:
    return main(["detect", str(src), "--model", str(model.cfg.parent), "--out", str(out),
                 *DETECT, *map(str, extra)])


def _together(*commands: list[str], timeout: float = 600) -> list[tuple[int, str, str]]:
    """Start every ``workbench`` command at once, each in its own process; (rc, out, err)."""
    # no progress lines (a line every few seconds off a terminal): stderr is then the errors
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "WORKBENCH_PROGRESS_INTERVAL": "3600"}
    procs = [subprocess.Popen([sys.executable, "-m", "workbench", *map(str, c)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in commands]
    done = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            done.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return done


def _one_wins(results: list[tuple[int, str, str]]) -> str:
    """Exactly one run exited 0 and the other 2 with one line saying it lost; that line."""
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], [(rc, err[-800:]) for rc, _, err in results]
    err = next(err for rc, _, err in results if rc == 2)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and LOST in lines[0], err[-2000:]
    return lines[0]


def _many_images(folder: Path, count: int) -> Path:
    """A data set of ``count`` labeled images: 20 real ones and hard links to them (a run
    long enough for two started together to overlap)."""
    src = make_demo_dataset(folder, images=20, seed=3, size=160, valid_fraction=0.0)
    real = list_images(src)
    for i in range(count - len(real)):
        image = real[i % len(real)]
        os.link(image, src / f"x{i:05d}.jpg")
        os.link(image.with_suffix(".txt"), src / f"x{i:05d}.txt")
    for split in ("train.txt", "valid.txt", "test.txt"):  # lists of the 20 only: gone
        (src / split).unlink(missing_ok=True)
    return src


# ------------------------------------------------------------------ 1: the source's labels

def test_detect_never_writes_predictions_over_the_source_labels(model, tmp_path, capsys):
    ds = make_demo_dataset(tmp_path / "ds", images=3, seed=1, size=192)
    before = _tree(ds)
    link = tmp_path / "link"
    link.symlink_to(ds, target_is_directory=True)
    # the original case (exit 0, labels replaced by predictions), then the ways around it
    for out, extra in ((ds, ()), (ds, ("--exist-ok",)), (link, ("--exist-ok",)),
                       (ds, ("--exist-ok", "--format", "voc")),  # new .xml labels beside
                       (ds, ("--split", "train", "--exist-ok"))):
        assert _detect(ds, out, model, *extra) == 2, (out, extra)
        line = _error_line(capsys)
        assert "label file of the source" in line and "prediction set" in line, line
    # a list file of the images (outputs go under OUT as ds/NAME.txt: OUT = the list's
    # folder is the source's folder), and a folder whose .txt files are links into it
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in list_images(ds)))
    assert _detect(listing, tmp_path, model, "--exist-ok") == 2
    assert "label file of the source" in _error_line(capsys)
    linked = tmp_path / "linked"
    linked.mkdir()
    first = list_images(ds)[0]
    (linked / first.with_suffix(".txt").name).symlink_to(first.with_suffix(".txt"))
    assert _detect(ds, linked, model, "--exist-ok") == 2
    assert "label file of the source" in _error_line(capsys)
    assert _tree(ds) == before
    # the image folder of a VOC devkit: its labels are in Annotations/
    voc = make_demo_dataset(tmp_path / "voc_src", images=2, seed=2, size=192)
    assert main(["convert", str(voc), "--to", "voc", "--out", str(tmp_path / "v")]) == 0
    devkit = tmp_path / "devkit"
    (devkit / "JPEGImages").mkdir(parents=True)
    (devkit / "Annotations").mkdir()
    for image in list_images(tmp_path / "v"):
        os.link(image, devkit / "JPEGImages" / image.name)
        os.link(image.with_suffix(".xml"), devkit / "Annotations" / f"{image.stem}.xml")
    capsys.readouterr()
    annotations = _tree(devkit / "Annotations")
    assert _detect(devkit / "JPEGImages", devkit / "Annotations", model, "--format", "voc",
                   "--exist-ok") == 2
    assert "label file of the source" in _error_line(capsys)
    assert _tree(devkit / "Annotations") == annotations
    # a folder of its own is fine
    assert _detect(ds, tmp_path / "preds", model) == 0
    assert _tree(ds) == before


# ------------------------------------------------------------------ 2: no silent mix of runs

def test_a_second_detect_into_a_used_folder_is_refused_unless_exist_ok(model, tmp_path,
                                                                       capsys):
    a = make_demo_dataset(tmp_path / "a", images=2, seed=1, size=192)
    b = make_demo_dataset(tmp_path / "b", images=3, seed=2, size=192)
    for image in list_images(b):  # names that do not clash with a's
        image.rename(image.with_name(f"b_{image.name}"))
    out = tmp_path / "out"
    assert _detect(a, out, model) == 0
    marker = json.loads((out / ".workbench-detect.json").read_text())
    assert marker["source"] == str(a.resolve()) and marker["complete"] is True
    first = _tree(out)
    capsys.readouterr()
    # the original case: b's files silently joined a's
    assert _detect(b, out, model) == 2
    line = _error_line(capsys)
    assert "earlier detect of" in line and "--exist-ok" in line
    assert _tree(out) == first
    assert _detect(b, out, model, "--exist-ok") == 0
    mixed = _tree(out)
    assert len([n for n in mixed if n.endswith(".txt")]) == 2 + 3 + 1  # both runs + classes
    assert json.loads((out / ".workbench-detect.json").read_text())["mixed"] is True
    capsys.readouterr()
    # a mix is never taken for one run of a: a rerun of a is refused too
    assert _detect(a, out, model) == 2
    assert "--exist-ok" in _error_line(capsys)
    # a folder of the user's is never mixed into either
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert _detect(a, mine, model) == 2
    assert "not an earlier `workbench detect` run" in _error_line(capsys)
    assert _tree(mine) == {"notes.txt": b"keep"}


def test_a_rerun_of_the_same_source_replaces_its_earlier_run_whole(model, tmp_path, capsys):
    src = make_demo_dataset(tmp_path / "src", images=3, seed=1, size=192)
    out = tmp_path / "out"
    assert _detect(src, out, model, "--save-images") == 0
    assert len(list(out.glob("*.txt"))) == 4 and len(list(out.glob("annotated/*.jpg"))) == 3
    gone = list_images(src)[0]
    gone.unlink()
    capsys.readouterr()
    assert _detect(src, out, model) == 0
    assert "replacing the earlier run" in capsys.readouterr().out
    # no file of the earlier run is left: not the removed image's, not the drawn images
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".workbench-detect.json", "classes.txt"]
        + [p.with_suffix(".txt").name for p in list_images(src)])
    assert not list(tmp_path.glob(".out.*"))  # no private folder left beside it


# ------------------------------------------------------------------ 3: an output is no input

@pytest.fixture
def clip(tmp_path):
    return write_demo_video(tmp_path, 3)


def test_save_video_never_replaces_the_input_video(model, clip, tmp_path, capsys):
    data = clip.read_bytes()
    symlink, hardlink = tmp_path / "symlink.avi", tmp_path / "hardlink.avi"
    symlink.symlink_to(clip)
    os.link(clip, hardlink)
    # pathlib drops a "." (tmp_path / "." / "clip.avi" is clip): the other spelling as text
    for target in (clip, symlink, hardlink, f"{tmp_path}/./clip.avi"):
        assert main(["detect", str(clip), "--model", str(model.cfg.parent), "--save-video",
                     str(target), *DETECT]) == 2, target
        line = _error_line(capsys)
        assert "--save-video is the input" in line and str(clip) in line
    assert clip.read_bytes() == data and symlink.is_symlink()
    assert main(["detect", str(clip), "--model", str(model.cfg.parent), "--save-video",
                 str(tmp_path / "drawn.avi"), *DETECT]) == 0
    assert clip.read_bytes() == data and (tmp_path / "drawn.avi").stat().st_size > 0


def test_weights_partial_and_export_never_write_over_their_inputs(model, tmp_path, capsys):
    cfg, weights, names = model.cfg, model.weights, model.names
    before = {p: p.read_bytes() for p in (cfg, weights, names)}
    cfg_link = tmp_path / "cfg-link.cfg"
    cfg_link.symlink_to(cfg)
    weights_hard = tmp_path / "hard.weights"
    os.link(weights, weights_hard)
    # the original case: --out the cfg wrote weights over the cfg
    for out in (cfg, cfg_link, weights, weights_hard):
        assert main(["weights", "partial", str(cfg), str(weights), "4", "--out", str(out)]) == 2
        line = _error_line(capsys)
        assert "--out is the input" in line, line
    for out in (cfg, weights_hard, names):
        assert main(["export", "--model", str(cfg.parent), "--out", str(out)]) == 2
        assert "--out is the input" in _error_line(capsys)
    assert {p: p.read_bytes() for p in before} == before
    assert main(["weights", "partial", str(cfg), str(weights), "4", "--out",
                 str(tmp_path / "part.conv.4")]) == 0


def test_convert_never_writes_into_or_above_its_source(tmp_path, capsys):
    src = make_demo_dataset(tmp_path / "data" / "src", images=3, seed=1, size=64)
    before = _tree(src)
    link = tmp_path / "link"
    link.symlink_to(src, target_is_directory=True)
    for out, what in ((src, "inside the source"), (link, "inside the source"),
                      (src / "voc", "inside the source"), (link / "voc", "inside the source"),
                      (tmp_path / "data", "contains the source")):
        assert main(["convert", str(src), "--to", "voc", "--out", str(out)]) == 2, out
        assert what in _error_line(capsys)
    assert _tree(src) == before
    assert not (src / "voc").exists()


# ------------------------------------------------------------------ 4: two runs at once

def test_two_converts_into_one_new_folder_one_wins_the_other_says_so(tmp_path):
    src = _many_images(tmp_path / "src", 2000)
    out = tmp_path / "out"
    results = _together(*[["convert", src, "--to", "voc", "--out", out]] * 2, timeout=300)
    line = _one_wins(results)
    assert line.startswith(f"workbench convert: error: {out} {LOST}")
    images = list_images(src)
    assert len(list(out.glob("*.jpg"))) == len(images) == len(list(out.glob("*.xml")))
    manifest = json.loads((out / ".workbench-convert.json").read_text())
    assert manifest["images"] == len(images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # nothing beside


@pytest.mark.slow
def test_two_detects_into_one_new_folder_one_wins_the_other_says_so(model, tmp_path):
    src = _many_images(tmp_path / "src", 400)
    out = tmp_path / "out"
    command = ["detect", src, "--model", model.cfg.parent, "--out", out, *DETECT]
    line = _one_wins(_together(command, command, timeout=300))
    assert line.startswith(f"workbench detect: error: {out} {LOST}")
    written = {p.stem for p in out.glob("*.txt")} - {"classes"}
    assert written == {p.stem for p in list_images(src)}
    assert json.loads((out / ".workbench-detect.json").read_text())["complete"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]


@pytest.mark.slow
def test_two_trainings_into_one_run_folder_one_wins_the_other_says_so(tmp_path):
    data = make_demo_dataset(tmp_path / "data", images=16, seed=5, size=64,
                             valid_fraction=0.25)
    run = tmp_path / "run"
    command = ["train", data, "--template", ROOT / "tests" / "data" / "micro.cfg", "--size",
               "64", "--batch", "4", "--epochs", "3", "--out", run]
    line = _one_wins(_together(command, command, timeout=500))
    assert line.startswith(f"workbench train: error: {run}: {LOST}")
    assert (run / "bundle").is_dir() and (run / "metrics.csv").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["epochs"] == 3
