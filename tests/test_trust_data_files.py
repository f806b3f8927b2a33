"""Issue 21, "Trust, round 2": the data set's own small files (split lists, data.yaml,
classes.txt, a prediction set's run.json, a model's thresholds.json) are read and written as
untrusted, with real files, FIFOs and links:

- item 5: a rerun of `split` keeps the test split; `--test 0` drops it and says so;
- item 6: nothing is written through a link that leads out of the data set folder;
- item 7: run.json's paths and a set folder linked elsewhere never lead reads outside;
- items 8, 10: a YAML alias bomb or a 20,000-deep data.yaml is one line, fast;
- item 9: a FIFO named like one of these files never blocks, over-size files are refused;
- item 12: every run.json field is checked (1e400 is not a size).

Cases that could hang or blow up on old code run in a child with a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from workbench.cli import main
from workbench.darknet.bundle import ModelBundle, read_model_conf
from workbench.data.folder import open_dataset, save_classes, save_labels
from workbench.data.synth import make_demo_dataset
from workbench.data.ultralytics import read_data_yaml
from workbench.errors import FormatError, ModelError

BCCD_MINI = Path(__file__).parent / "data" / "bccd_mini"


def _demo(path: Path, images: int = 20) -> Path:
    root = make_demo_dataset(path, images=images, seed=5, size=64)
    for name in ("train.txt", "valid.txt", "test.txt"):
        (root / name).unlink(missing_ok=True)
    return root


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _one_error_line(err: str, *names: str) -> str:
    """The single stderr line of a refused verb, naming each of ``names``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(name in lines[0] for name in names), lines[0]
    return lines[0]


def _child(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Python ``code`` in a child: a hang is a failed test, not a stuck suite."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


def _link_out(link: Path, outside: Path, text: str) -> Path:
    """``link`` (a data set or prediction set file) made a link to ``outside``, a file out of
    that folder holding ``text``; returns ``outside``."""
    outside.write_text(text)
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    return outside


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=timeout)


def _ultralytics(tmp_path: Path) -> Path:
    """BCCD mini converted to the Ultralytics layout: data.yaml with train/val/test."""
    out = tmp_path / "ul"
    assert main(["convert", str(BCCD_MINI), "--to", "ultralytics", "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------ item 5: test split kept

def test_a_rerun_without_test_keeps_the_test_split_out_of_training(tmp_path, capsys):
    root = _demo(tmp_path / "d")
    assert main(["split", str(root), "--valid", "0.2", "--test", "0.2"]) == 0
    test_before = (root / "test.txt").read_bytes()
    held = set(_lines(root / "test.txt"))
    sizes = (len(_lines(root / "train.txt")), len(_lines(root / "valid.txt")))
    capsys.readouterr()
    assert main(["split", str(root), "--valid", "0.2", "--seed", "9"]) == 0
    out = capsys.readouterr().out
    assert "kept the test split of 4 image(s)" in out
    assert (root / "test.txt").read_bytes() == test_before
    train, valid = set(_lines(root / "train.txt")), set(_lines(root / "valid.txt"))
    assert not held & (train | valid)  # no test image leaks into training or validation
    assert (len(train), len(valid)) == sizes  # --valid stays a share of all the images
    dataset = open_dataset(root)
    assert {dataset.relative_path(r).as_posix() for r in dataset.split["test"]} == held


def test_test_0_drops_the_test_split_and_says_so(tmp_path, capsys):
    root = _demo(tmp_path / "d")
    assert main(["split", str(root), "--test", "0.2"]) == 0
    held = set(_lines(root / "test.txt"))
    capsys.readouterr()
    assert main(["split", str(root), "--test", "0"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "test split" in line] == [
        "dropped the test split of 4 image(s) (--test 0): they are dealt into train and valid"]
    assert _lines(root / "test.txt") == []
    assert held <= set(_lines(root / "train.txt")) | set(_lines(root / "valid.txt"))
    assert not open_dataset(root).split.get("test")


def test_a_devkit_rerun_keeps_image_sets_test(tmp_path, capsys):
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    main_dir = root / "ImageSets" / "Main"
    before = (main_dir / "test.txt").read_bytes()
    held = set(before.decode().split())
    assert main(["split", str(root), "--valid", "0.25"]) == 0
    assert "kept the test split of 2 image(s)" in capsys.readouterr().out
    assert (main_dir / "test.txt").read_bytes() == before
    trainval = set(_lines(main_dir / "trainval.txt"))
    assert len(trainval) == 4 and not held & trainval


def test_an_ultralytics_rerun_keeps_data_yaml_test(tmp_path, capsys):
    out = _ultralytics(tmp_path)
    assert main(["split", str(out), "--valid", "0.34"]) == 0
    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert (doc["train"], doc["val"], doc["test"]) == ("train.txt", "val.txt", "images/test")
    listed = _lines(out / "train.txt") + _lines(out / "val.txt")
    assert len(listed) == 4 and not any("images/test/" in line for line in listed)
    assert main(["split", str(out), "--valid", "0.34", "--test", "0"]) == 0
    assert "test" not in yaml.safe_load((out / "data.yaml").read_text())


def test_a_kept_test_split_that_leaves_nothing_to_train_is_one_line(tmp_path, capsys):
    root = _demo(tmp_path / "d", images=6)
    assert main(["split", str(root), "--valid", "0.3", "--test", "0.5"]) == 0
    capsys.readouterr()
    assert main(["split", str(root), "--valid", "0.6"]) == 2
    _one_error_line(capsys.readouterr().err, "kept test split", "--test 0")


# ------------------------------------------------------------------ item 6: links out

def test_split_never_rewrites_a_data_yaml_linked_outside(tmp_path, capsys):
    out = _ultralytics(tmp_path)
    outside = tmp_path / "elsewhere" / "data.yaml"
    outside.parent.mkdir()
    (out / "data.yaml").rename(outside)
    (out / "data.yaml").symlink_to(outside)
    before = outside.read_bytes()
    capsys.readouterr()
    assert main(["split", str(out), "--valid", "0.5", "--test", "0"]) == 2
    _one_error_line(capsys.readouterr().err, str(out / "data.yaml"), "link", str(outside))
    assert outside.read_bytes() == before
    # all or nothing: no list file was written before the refusal
    assert not (out / "train.txt").exists() and not (out / "val.txt").exists()


def test_split_never_writes_a_list_file_linked_outside(tmp_path, capsys):
    root = _demo(tmp_path / "d")
    outside = _link_out(root / "train.txt", tmp_path / "bashrc", "export PATH=/usr/bin\n")
    assert main(["split", str(root)]) == 2
    _one_error_line(capsys.readouterr().err, "train.txt", "not written")
    assert outside.read_text() == "export PATH=/usr/bin\n"
    assert not (root / "valid.txt").exists()


def test_split_never_writes_through_a_linked_image_sets_folder(tmp_path, capsys):
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    outside = tmp_path / "other_sets"
    shutil.move(root / "ImageSets", outside)
    (root / "ImageSets").symlink_to(outside)
    before = {p.name: p.read_bytes() for p in (outside / "Main").iterdir()}
    assert main(["split", str(root), "--test", "0.2"]) == 2
    _one_error_line(capsys.readouterr().err, "ImageSets", "link")
    assert {p.name: p.read_bytes() for p in (outside / "Main").iterdir()} == before


def test_a_class_list_linked_outside_is_not_rewritten(tmp_path):
    root = _demo(tmp_path / "d", images=2)
    outside = _link_out(root / "classes.txt", tmp_path / "authorized_keys",
                        "circle\nsquare\ntriangle\nstar\n")
    dataset = open_dataset(root)
    dataset.classes.rename(0, "ssh-rsa AAAA attacker")
    with pytest.raises(FormatError, match="leads through a link to .*; not written") as err:
        save_classes(dataset)
    assert str(root / "classes.txt") in str(err.value) and "\n" not in str(err.value)
    assert outside.read_text() == "circle\nsquare\ntriangle\nstar\n"
    assert (root / "classes.txt").is_symlink()
    assert not list(root.glob("classes.txt.bak*"))


def test_a_label_linked_outside_is_not_written_through(tmp_path):
    root = _demo(tmp_path / "d", images=2)
    outside = _link_out(root / "img_00000.txt", tmp_path / "victim.txt", "precious\n")
    dataset = open_dataset(root)  # the link is listed as a problem and not read
    record = next(r for r in dataset.images if r.path.name == "img_00000.jpg")
    with pytest.raises(FormatError, match="not written"):
        save_labels(dataset, record)
    assert outside.read_text() == "precious\n"


def test_links_inside_the_data_set_are_still_written_through(tmp_path):
    root = _demo(tmp_path / "d", images=2)
    shared = root / "meta" / "classes.txt"
    shared.parent.mkdir()
    shutil.move(root / "classes.txt", shared)
    (root / "classes.txt").symlink_to(Path("meta") / "classes.txt")
    dataset = open_dataset(root)
    dataset.classes.rename(0, "disc")
    save_classes(dataset)
    assert (root / "classes.txt").is_symlink()
    assert shared.read_text().splitlines()[0] == "disc"


# ------------------------------------------------------------------ item 7: prediction sets

def _prediction_set(root: Path, name: str = "mine", **info) -> Path:
    """A set as detect_into_set leaves it: one prediction file and run.json."""
    from workbench.predictions import sets as sets

    set_dir = sets.set_folder(root, name)
    set_dir.mkdir(parents=True)
    (set_dir / "img_00000.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n")
    (set_dir / "classes.txt").write_text("circle\nsquare\ntriangle\nstar\n")
    data = {"model": "demo", "size": [416, 416], "conf": 0.25, "nms": 0.45,
            "images": [["img_00000.jpg", 64, 64]], **info}
    (set_dir / "run.json").write_text(json.dumps(data))
    return set_dir


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "a/../../x.jpg",
                                  "..\\..\\x.jpg", "C:/x.jpg", ""])
def test_run_json_image_paths_must_stay_in_the_set(tmp_path, path):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root, images=[[path, 64, 64]])
    with pytest.raises(FormatError, match=r"run.json: images\[0\]: expected a path relative"):
        sets.read_info(set_dir)
    set_dir = _prediction_set(root, "renamed", renamed={"img_00000.jpg": path or "x/../.."})
    with pytest.raises(FormatError, match=r"run.json: renamed"):
        sets.read_info(set_dir)


def test_export_never_reads_an_image_through_a_link_out_of_the_data_set(tmp_path):
    from workbench.predictions.run import export_set

    root = _demo(tmp_path / "d", images=1)
    secret = tmp_path / "secret"
    secret.mkdir()
    shutil.copy(root / "img_00000.jpg", secret / "photo.jpg")
    (root / "linked").symlink_to(secret)  # a relative path without .. that leads out
    set_dir = _prediction_set(root, images=[["linked/photo.jpg", 64, 64]])
    (set_dir / "linked").mkdir()
    (set_dir / "linked" / "photo.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n")
    with pytest.raises(FormatError, match="leads outside the data set folder"):
        export_set(set_dir, root, tmp_path / "out", "yolo", save_images=True)
    assert not list((tmp_path / "out").rglob("*.jpg"))


def test_a_prediction_file_linked_outside_is_not_read(tmp_path):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root)
    outside = _link_out(set_dir / "img_00000.txt", tmp_path / "outside.txt",
                        "0 0.5 0.5 0.2 0.2 0.9\n")
    with pytest.raises(FormatError, match="leads outside the prediction set folder"):
        sets.read_predictions(set_dir, "img_00000.jpg", 64, 64)
    (set_dir / "classes.txt").unlink()
    (set_dir / "classes.txt").symlink_to(outside)
    with pytest.raises(FormatError, match="classes.txt: leads outside"):
        sets.read_names(set_dir)


def test_a_set_folder_linked_elsewhere_is_neither_listed_nor_followed(tmp_path):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    _prediction_set(root, "real")
    other = _prediction_set(_demo(tmp_path / "other", images=1), "theirs")
    (sets.sets_folder(root) / "theirs").symlink_to(other)
    assert sets.list_sets(root) == ["real"]
    with pytest.raises(FormatError, match="theirs: is a link"):
        sets.read_info(sets.set_folder(root, "theirs"))
    with pytest.raises(FormatError, match="is a link"):
        sets.read_predictions(sets.set_folder(root, "theirs"), "img_00000.jpg", 64, 64)
    # the whole .predictions folder linked elsewhere: no set at all
    shutil.rmtree(sets.sets_folder(root))
    sets.sets_folder(root).symlink_to(other.parent)
    assert sets.list_sets(root) == []
    with pytest.raises(FormatError, match=r"\.predictions: is a link"):
        sets.read_info(sets.set_folder(root, "theirs"))


# ------------------------------------------------------------------ items 8, 10: YAML bombs

def _ultralytics_with_data_yaml(tmp_path: Path, text: str) -> Path:
    out = _ultralytics(tmp_path)
    (out / "data.yaml").write_text(text)
    return out


def _alias_bomb(levels: int = 10, width: int = 9) -> str:
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['x'] * width)}]"]
    for prev, name in zip(names, names[1:], strict=False):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
    lines += [f"names: *{names[-1]}", "train: images/train", "val: images/val"]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_one_line_fast(tmp_path):
    out = _ultralytics_with_data_yaml(tmp_path, _alias_bomb())
    with pytest.raises(FormatError, match="expands to more than 1,000,000 values"):
        read_data_yaml(out / "data.yaml")
    start = time.monotonic()
    done = _cli("stats", str(out))
    assert time.monotonic() - start < 30
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert [line for line in done.stdout.splitlines() if "data.yaml" in line and "aliases"
            in line], done.stdout
    # a split does not replace the data.yaml it could not read
    done = _cli("split", str(out), "--test", "0")
    assert done.returncode == 2
    _one_error_line(done.stderr, "data.yaml", "not replaced")
    assert (out / "data.yaml").read_text() == _alias_bomb()


def test_many_aliases_and_a_recursive_alias_are_refused(tmp_path):
    many = "x: &x a\nnames: [" + ", ".join(["*x"] * 1001) + "]\ntrain: images\n"
    out = _ultralytics_with_data_yaml(tmp_path, many)
    with pytest.raises(FormatError, match="more than 1,000 aliases"):
        read_data_yaml(out / "data.yaml")
    (out / "data.yaml").write_text("names: &n [a, *n]\ntrain: images\n")
    with pytest.raises(FormatError, match="alias refers to the collection that holds it"):
        read_data_yaml(out / "data.yaml")


@pytest.mark.parametrize("text", ["names: " + "[" * 20000 + "]" * 20000 + "\ntrain: x\n",
                                  "names: " + "{a: " * 20000 + "b" + "}" * 20000 + "\n",
                                  "names: [a]\ntrain: x\nnested:\n" + "".join(
                                      "  " * i + "- \n" for i in range(1, 200))])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, text):
    out = _ultralytics_with_data_yaml(tmp_path, text)
    with pytest.raises(FormatError, match="nested more than 64 levels deep; not read"):
        read_data_yaml(out / "data.yaml")
    done = _cli("stats", str(out))
    assert done.returncode == 0 and "RecursionError" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_odd_values_in_data_yaml_are_one_line(tmp_path):
    out = _ultralytics_with_data_yaml(tmp_path, "names: [[a, b], c]\ntrain: images\n")
    with pytest.raises(FormatError, match="<names>: a class name is a list"):
        read_data_yaml(out / "data.yaml")
    (out / "data.yaml").write_text("names: [a]\nnc: " + "9" * 5000 + "\ntrain: images\n")
    with pytest.raises(FormatError, match="data.yaml: malformed YAML: ValueError"):
        read_data_yaml(out / "data.yaml")


# ------------------------------------------------------------------ item 9: FIFOs, sizes

def test_a_fifo_data_yaml_does_not_block_stats(tmp_path):
    out = _ultralytics(tmp_path)
    (out / "data.yaml").unlink()
    os.mkfifo(out / "data.yaml")
    done = _cli("stats", str(out))
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert [line for line in done.stdout.splitlines()
            if "data.yaml: is a FIFO, not a regular file; not read" in line], done.stdout
    done = _child(f"""
        from workbench.data.ultralytics import read_data_yaml
        try:
            read_data_yaml({str(out / "data.yaml")!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
        """)
    assert "FormatError" in done.stdout and "is a FIFO, not a regular file" in done.stdout


def test_a_fifo_run_json_or_thresholds_json_does_not_block(tmp_path):
    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root)
    (set_dir / "run.json").unlink()
    os.mkfifo(set_dir / "run.json")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    os.mkfifo(bundle / "thresholds.json")
    done = _child(f"""
        from pathlib import Path
        from workbench.predictions import sets as sets
        from workbench.darknet.bundle import ModelBundle, read_model_conf
        for call in (lambda: sets.read_info(Path({str(set_dir)!r})),
                     lambda: read_model_conf(ModelBundle(Path({str(bundle)!r}) / "m.cfg",
                                                         Path("m.weights"), Path("m.names")))):
            try:
                call()
            except Exception as exc:
                print(type(exc).__name__, exc)
        """)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout + done.stderr
    assert lines[0].startswith("FormatError") and "run.json: is a FIFO" in lines[0]
    assert lines[1].startswith("ModelError") and "thresholds.json: is a FIFO" in lines[1]


def test_over_size_metadata_files_are_refused_unread(tmp_path):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root)
    # sparse files: the size is what counts, no disk is used
    os.truncate(set_dir / "run.json", (64 << 20) + 1)
    with pytest.raises(FormatError, match="run.json: file is 67,108,865 bytes, more than"):
        sets.read_info(set_dir)
    out = _ultralytics(tmp_path)
    os.truncate(out / "data.yaml", (4 << 20) + 1)
    with pytest.raises(FormatError, match="data.yaml: file is 4,194,305 bytes"):
        read_data_yaml(out / "data.yaml")
    (tmp_path / "thresholds.json").write_text("{}")
    os.truncate(tmp_path / "thresholds.json", (1 << 20) + 1)
    bundle = ModelBundle(tmp_path / "m.cfg", tmp_path / "m.weights", tmp_path / "m.names")
    with pytest.raises(ModelError, match="thresholds.json: file is 1,048,577 bytes"):
        read_model_conf(bundle)


# ------------------------------------------------------------------ item 12: run.json fields

@pytest.mark.parametrize("field, value, message", [
    ("size", "[1e400, 416]", r"size\[0\]: expected a whole number"),
    ("size", "[416]", r"size: expected \[width, height\]"),
    ("size", "[416.5, 416]", r"size\[0\]: expected a whole number"),
    ("conf", "NaN", "conf: expected a number from 0 to 1"),
    ("conf", "1e400", "conf: expected a number from 0 to 1"),
    ("conf", "true", "conf: expected a number from 0 to 1"),
    ("nms", '"0.5"', "nms: expected a number from 0 to 1"),
    ("seconds", "-Infinity", "seconds: expected a number"),
    ("cancelled", '"yes"', "cancelled: expected true or false"),
    ("classes", '"abc"', "classes: expected a list of strings"),
    ("classes", "[1, 2]", r"classes\[0\]: expected a string"),
    ("images", '[["a.jpg", 1e400, 5]]', r"images\[0\]: expected a whole number"),
    ("images", '[["a.jpg", 0, 5]]', r"images\[0\]: expected a whole number from 1"),
    ("images", '[["a.jpg", 5]]', r"images\[0\]: expected \[path, width, height\]"),
    ("images", '{"a": 1}', "images: expected a list"),
    ("renamed", "[1]", "renamed: expected a mapping"),
    ("skipped", "[null]", r"skipped\[0\]: expected a string"),
    ("model", "7", "model: expected a string"),
])
def test_every_run_json_field_is_checked(tmp_path, field, value, message):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root)
    data = json.loads((set_dir / "run.json").read_text())
    data[field] = "@@"
    (set_dir / "run.json").write_text(json.dumps(data).replace('"@@"', value))
    with pytest.raises(FormatError, match=message) as err:
        sets.read_info(set_dir)
    assert str(err.value).startswith(str(set_dir / "run.json") + ": ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("[" * 20000 + "]" * 20000, "RecursionError"),
    ("[1, 2]", "expected a JSON object"),
    ('{"size": [' + "9" * 5000 + ", 1]}", "ValueError"),
    ("{", "JSONDecodeError"),
    ('{"model": "\xff"}', "not UTF-8 text"),
])
def test_a_damaged_run_json_is_one_line(tmp_path, text, message):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root)
    (set_dir / "run.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(FormatError, match=message) as err:
        sets.read_info(set_dir)
    assert "run.json" in str(err.value) and "\n" not in str(err.value)


def test_a_good_run_json_reads_back_as_written(tmp_path):
    from workbench.predictions import sets as sets

    root = _demo(tmp_path / "d", images=1)
    set_dir = _prediction_set(root)
    info = sets.RunInfo(model="m", size=(416, 320), conf=0.3, classes=["a"], seconds=1.5,
                        images=[("sub/a.jpg", 640, 480)], renamed={"sub/a.jpg": "sub/a_jpg"},
                        skipped=["x.jpg: cannot decode"], cancelled=True)
    sets.write_info(set_dir, info)
    assert sets.read_info(set_dir) == info


def test_thresholds_json_values_are_checked(tmp_path):
    bundle = ModelBundle(tmp_path / "m.cfg", tmp_path / "m.weights", tmp_path / "m.names")
    for text, message in (('{"conf": 1e400}', "conf inf is not between 0 and 1"),
                          ('{"conf": NaN}', "conf nan is not between 0 and 1"),
                          ('{"conf": "0.5"}', "is not a number"),
                          ("[" * 20000, "not a thresholds file")):
        (tmp_path / "thresholds.json").write_text(text)
        with pytest.raises(ModelError, match=message):
            read_model_conf(bundle)
    (tmp_path / "thresholds.json").write_text('{"conf": 0.4}')
    assert read_model_conf(bundle) == 0.4


def test_a_names_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    """`detect --names FIFO` used to block forever in read_text."""
    fifo = tmp_path / "coco.names"
    os.mkfifo(fifo)
    child = _child(f"""
        from workbench.darknet.bundle import read_names
        read_names({str(fifo)!r})
        """)
    assert child.returncode != 0 and "FIFO" in child.stderr and "coco.names" in child.stderr
