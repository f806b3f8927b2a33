"""Hostile data set folders and faults (issue 11): every case keeps its promise.

Each folder is built in a temp dir from a small real data set plus one kind of damage: links
out of the folder, FIFOs, decompression bombs, broken headers, bad names, damaged COCO
entries, a kill -9 mid-convert, a full disk (RLIMIT_FSIZE in a child). The promises: nothing
is lost (an unreadable label never becomes an empty one, a half-written output never stays),
nothing hangs or escapes the folder, and every bad file is one line while the good ones are
still processed. Verbs that could hang on old code run in a child with a timeout.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from workbench.cli import main
from workbench.data.folder import open_dataset, save_classes, save_labels
from workbench.data.images import image_size, load_bgr, load_rgb
from workbench.data.synth import make_demo_dataset
from workbench.errors import ImageError, WorkbenchError
from workbench.formats import ProblemLog
from workbench.formats.coco import parse_coco
from workbench.labels.dataset import ClassList
from workbench.storage.atomic import atomic_write_text

TARGETS = ("yolo", "voc", "coco", "darknet")


def _demo(path: Path, images: int = 4, size: int = 64) -> Path:
    return make_demo_dataset(path, images=images, seed=3, size=size, valid_fraction=0.25)


def _cli(*args: str, timeout: float = 120, env: dict | None = None, **kw
         ) -> subprocess.CompletedProcess:
    """``workbench ARGS`` in a child: a hang is a failed test, not a stuck suite."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          **kw)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _one_line_errors(stderr: str) -> None:
    lines = stderr.splitlines()
    assert "Traceback" not in stderr, stderr
    assert all(line.strip() for line in lines), f"blank line in stderr: {stderr!r}"


def _png(width: int, height: int, exif: bytes | None = None, pixels: bytes | None = None
         ) -> bytes:
    """A grayscale PNG with any header size; IDAT holds ``pixels`` (default: one row)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = pixels if pixels is not None else b"\0" * (width + 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                               0, 0, 0))
            + (chunk(b"eXIf", exif) if exif else b"")
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# ------------------------------------------------------------------ item 3: orientation

@pytest.mark.parametrize("kind", ["png", "webp", "tiff"])
def test_exif_orientation_is_one_rule_for_png_webp_and_tiff(tmp_path, kind):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    for o in range(1, 9):
        img = Image.fromarray(stored)
        exif = img.getexif()
        exif[0x0112] = o
        path = tmp_path / f"o{o}.{kind}"
        img.save(path, exif=exif.tobytes(), **({"lossless": True} if kind == "webp" else {}))
        # the reference: PIL's exif_transpose of the stored pixels with that tag
        reference = Image.fromarray(stored)
        reference.info["exif"] = exif.tobytes()
        expected = np.asarray(ImageOps.exif_transpose(reference))
        assert image_size(path) == expected.shape[1::-1], (kind, o)
        np.testing.assert_array_equal(load_rgb(path), expected, err_msg=f"{kind} {o}")


def test_orientation_found_past_a_large_metadata_block(tmp_path):
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 255, (120, 200, 3), dtype=np.uint8))
    exif = noise.getexif()
    exif[0x0112] = 6
    exif[0x010E] = "x" * 40_000  # a description: the orientation's block is 40 KB long
    for name, kw in (("big.jpg", {"quality": 90}), ("big.png", {}),
                     ("big.webp", {"lossless": True})):
        noise.save(tmp_path / name, exif=exif.tobytes(), **kw)
        assert image_size(tmp_path / name) == (120, 200), name
        assert load_bgr(tmp_path / name).shape == (200, 120, 3), name


def test_png_labels_are_normalized_by_the_rotated_size(tmp_path):
    img = Image.new("RGB", (80, 40))
    exif = img.getexif()
    exif[0x0112] = 6  # shown 40 wide, 80 tall
    img.save(tmp_path / "a.png", exif=exif.tobytes())
    (tmp_path / "classes.txt").write_text("thing\n")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 1.0 1.0\n")
    record = open_dataset(tmp_path).images[0]
    assert (record.width, record.height) == (40, 80) == load_bgr(tmp_path / "a.png").shape[1::-1]
    assert record.boxes[0].xyxy() == (0, 0, 40, 80)


# ------------------------------------------------------------------ item 4: unreadable labels

def test_convert_never_turns_an_unreadable_label_into_an_empty_one(tmp_path):
    src = _demo(tmp_path / "src")
    bad_label = src / "img_00001.txt"
    bad_label.write_bytes(b"0 0.5 0.5 0.1 0.1\n\xff\xfe not utf-8\n")
    # an image that cannot be read, with a good label
    (src / "img_00002.jpg").write_bytes(b"\xff\xd8\xff\xdb garbage")
    good_label = (src / "img_00002.txt").read_bytes()
    for to in TARGETS:
        out = tmp_path / to
        done = _cli("convert", str(src), "--to", to, "--out", str(out))
        assert done.returncode == 0, done.stderr
        _one_line_errors(done.stderr)
        assert "img_00001.txt" in done.stderr and "img_00002" in done.stderr
        if to == "yolo":  # same format: copied unchanged, never rewritten empty
            assert (out / "img_00001.txt").read_bytes() == bad_label.read_bytes()
            assert (out / "img_00002.txt").read_bytes() == good_label
        elif to == "voc":
            assert not (out / "img_00001.xml").exists()
            assert not (out / "img_00002.xml").exists()
        elif to == "coco":
            names = {i["file_name"] for i in json.loads(
                (out / "annotations.json").read_text())["images"]}
            assert "img_00001.jpg" not in names and "img_00002.jpg" not in names
            assert "img_00000.jpg" in names
        else:
            listed = (out / "train.txt").read_text() + (out / "valid.txt").read_text()
            assert "img_00001" not in listed and "img_00002" not in listed
            assert not (out / "obj" / "img_00001.txt").exists()
            assert "img_00000" in listed


# ------------------------------------------------------------------ item 5: COCO entries

def _coco(tmp_path: Path) -> Path:
    src = _demo(tmp_path / "src", images=3)
    done = _cli("convert", str(src), "--to", "coco", "--out", str(tmp_path / "coco"))
    assert done.returncode == 0, done.stderr
    return tmp_path / "coco"


def test_one_bad_coco_entry_skips_only_that_entry(tmp_path):
    coco = _coco(tmp_path)
    doc = json.loads((coco / "annotations.json").read_text())
    doc["images"][1]["width"] = 64.5                                        # a float width
    doc["images"].append(dict(doc["images"][0], file_name="x.jpg"))        # a duplicate id
    doc["categories"].append({"id": 1.5, "name": "floaty"})                 # a float id
    doc["categories"].append({"id": 99, "name": 7})                         # a number name
    doc["categories"].append(dict(doc["categories"][0], name="again"))      # a duplicate id
    (coco / "annotations.json").write_text(json.dumps(doc))
    log = ProblemLog(strict=False)
    classes, records = parse_coco((coco / "annotations.json").read_bytes(), "a.json", log)
    assert list(classes) == ["circle", "square", "triangle", "star"]
    assert sorted(records) == ["img_00000.jpg", "img_00002.jpg"]
    where = " ".join(str(e) for e in log.errors)
    for element in ("images[1].width", "images[3]", "categories[4].id", "categories[5].name",
                    "categories[6]"):
        assert element in where
    out = tmp_path / "yolo"
    done = _cli("convert", str(coco), "--to", "yolo", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "img_00000.txt").read_text() and (out / "img_00002.txt").read_text()
    assert not (out / "img_00001.txt").exists()  # its entry was bad: not labeled, not empty


def test_huge_coco_numbers_are_one_entry_problem(tmp_path):
    coco = _coco(tmp_path)
    text = (coco / "annotations.json").read_text()
    doc = json.loads(text)
    doc["images"][0]["width"] = 12345
    doc["annotations"][-1]["bbox"][0] = 67890
    text = json.dumps(doc).replace("12345", "1" + "0" * 400).replace("67890", "1" + "0" * 400)
    (coco / "annotations.json").write_text(text)
    for verb in (["stats", str(coco)], ["convert", str(coco), "--to", "voc", "--out",
                                         str(tmp_path / "voc")]):
        done = _cli(*verb)
        assert done.returncode == 0, done.stderr
        _one_line_errors(done.stderr)
        assert "images[0]" in done.stdout + done.stderr
    assert (tmp_path / "voc" / "img_00001.xml").is_file()


# ------------------------------------------------------------------ item 6: kill -9, full disk

def test_convert_killed_mid_way_leaves_no_half_output_and_the_rerun_works(tmp_path):
    src = _demo(tmp_path / "src", images=40, size=256)
    rng = np.random.default_rng(0)
    for i in range(40):  # big incompressible images: the copy takes long enough to be hit
        Image.fromarray(rng.integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(
            src / f"big_{i:02d}.png", compress_level=0)
    out = tmp_path / "out"
    killed_mid_way = False
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-m", "workbench", "convert", str(src),
                                  "--to", "yolo", "--out", str(out), "--force"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill as soon as the first image is written (in OUT, or where OUT is being built)
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            if any(tmp_path.glob("*out*/big_*.png")) or any(tmp_path.glob(".out*/big_*")):
                break
            time.sleep(0.002)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.returncode == -signal.SIGKILL:
            killed_mid_way = True
            # OUT is absent or a complete earlier output; never a half-copied image
            if out.exists():
                assert (out / ".workbench-convert.json").is_file()
            break
    assert killed_mid_way
    done = _cli("convert", str(src), "--to", "yolo", "--out", str(out), "--force")
    assert done.returncode == 0, done.stderr
    got = _files(out)
    for name, data in _files(src).items():
        assert got[name] == data, name  # every image whole, every label the same
    assert not [n for n in got if n.endswith(".tmp")]
    assert not list(tmp_path.glob(".out.*"))  # the killed run's staging folder is gone
    # a folder that is not a convert output is never replaced, even with --force
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    done = _cli("convert", str(src), "--to", "yolo", "--out", str(tmp_path / "mine"),
                "--force")
    assert done.returncode == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


@pytest.mark.parametrize("to", ["yolo", "darknet"])
def test_full_disk_mid_convert_is_one_line_and_leaves_nothing(tmp_path, to):
    src = _demo(tmp_path / "src", images=2)
    rng = np.random.default_rng(1)
    # 270 KB, more than the child may write to one file: the disk is "full" mid-copy
    Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(
        src / "huge.png", compress_level=0)
    (src / "huge.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "workbench", "convert", str(src), "--to", to,
                           "--out", str(out)], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit_file_size)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert ".tmp" not in done.stderr and "nothing written" in done.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["src"]


# ------------------------------------------------------------------ item 7: atomic writes

def test_read_only_label_file_is_refused_not_replaced(tmp_path):
    root = _demo(tmp_path / "d", images=1)
    label = root / "img_00000.txt"
    before = label.read_bytes()
    os.chmod(label, 0o444)
    dataset = open_dataset(root)
    dataset.images[0].boxes = []
    with pytest.raises(PermissionError, match="read-only") as err:
        save_labels(dataset, dataset.images[0])
    assert str(label) in str(err.value)
    assert label.read_bytes() == before and stat.S_IMODE(label.stat().st_mode) == 0o444


def test_symlinked_class_list_inside_is_written_through_and_outside_is_refused(tmp_path):
    """A link that stays in the data set is written through and stays a link; one that leads
    out of it is never written (issue 21.6): the file elsewhere keeps its bytes."""
    root = _demo(tmp_path / "d", images=1)
    inside = root / "meta" / "classes.txt"
    inside.parent.mkdir()
    inside.write_text("a\nb\n")
    os.chmod(inside, 0o640)
    (root / "classes.txt").unlink()
    (root / "classes.txt").symlink_to(inside)
    (root / "img_00000.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    dataset = open_dataset(root)
    dataset.classes.rename(0, "renamed")
    save_classes(dataset)
    assert (root / "classes.txt").is_symlink()
    assert inside.read_text() == "renamed\nb\n" and stat.S_IMODE(inside.stat().st_mode) == 0o640

    shared = tmp_path / "shared" / "classes.txt"
    shared.parent.mkdir()
    shared.write_text("a\nb\n")
    (root / "classes.txt").unlink()
    (root / "classes.txt").symlink_to(shared)
    dataset = open_dataset(root)
    dataset.classes.rename(0, "renamed")
    with pytest.raises(WorkbenchError, match="not written"):
        save_classes(dataset)
    assert shared.read_text() == "a\nb\n" and (root / "classes.txt").is_symlink()


def test_new_files_get_the_umask_without_touching_the_process_umask(tmp_path, monkeypatch):
    def no_umask(*_):
        raise AssertionError("os.umask changes the whole process (other threads race it)")

    real_umask = os.umask
    old = real_umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", no_umask)
        atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        monkeypatch.undo()
        real_umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


# ------------------------------------------------------------------ item 8: links out

def test_links_out_of_the_data_set_are_never_followed(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    outside = tmp_path / "private.jpg"
    Image.new("RGB", (20, 20), "red").save(outside)
    (src / "stolen.jpg").symlink_to(outside)
    (src / "passwd.jpg").symlink_to("/etc/passwd")
    (src / "zero.jpg").symlink_to("/dev/zero")
    (src / "img_00001.txt").unlink()
    (src / "img_00001.txt").symlink_to("/etc/passwd")
    for to in TARGETS:
        out = tmp_path / to
        done = _cli("convert", str(src), "--to", to, "--out", str(out), timeout=60)
        assert done.returncode == 0, done.stderr
        for name in ("stolen.jpg", "passwd.jpg", "zero.jpg", "img_00001.txt"):
            assert name in done.stderr and "outside" in done.stderr
        copied = b"".join(_files(out).values())
        assert outside.read_bytes() not in copied and b"root:" not in copied
        assert not [p for p in out.rglob("*") if p.name.startswith(("stolen", "passwd",
                                                                      "zero"))]


# ------------------------------------------------------------------ item 9: FIFOs

def test_fifos_named_like_images_and_labels_never_block(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    os.mkfifo(src / "pipe.jpg")
    (src / "img_00001.txt").unlink()
    os.mkfifo(src / "img_00001.txt")
    os.mkfifo(src / "extra.xml")
    done = _cli("stats", str(src), "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    problems = " ".join(json.loads(done.stdout)["problems"])
    assert "pipe.jpg" in problems and "img_00001.txt" in problems
    for to in TARGETS:
        done = _cli("convert", str(src), "--to", to, "--out", str(tmp_path / to), timeout=60)
        assert done.returncode == 0 and "pipe.jpg" in done.stderr, done.stderr
    assert _cli("anchors", str(src), "-n", "2", "--size", "64", timeout=60).returncode in (0, 2)


def test_fifo_and_outward_link_in_a_separate_label_folder(tmp_path):
    demo = _demo(tmp_path / "demo", images=3)
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_bytes((demo / "classes.txt").read_bytes())
    for image in demo.glob("img_*.jpg"):
        image.rename(root / "images" / image.name)
        (demo / f"{image.stem}.txt").rename(root / "labels" / f"{image.stem}.txt")
    (root / "labels" / "img_00001.txt").unlink()
    (root / "labels" / "img_00001.txt").symlink_to("/etc/passwd")
    (root / "labels" / "img_00002.txt").unlink()
    os.mkfifo(root / "labels" / "img_00002.txt")
    done = _cli("stats", str(root), "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["labeled"] == 1
    assert any("img_00001.txt" in p and "outside" in p for p in report["problems"])
    assert any("img_00002.txt" in p and "FIFO" in p for p in report["problems"])


def test_detect_on_a_device_or_fifo_named_like_an_image_is_one_line(tmp_path):
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.jpg")
    for name in ("zero.jpg", "pipe.jpg"):
        done = _cli("detect", str(tmp_path / name), "--model", "demo", timeout=60)
        assert done.returncode == 2 and name in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ item 10: class lists

def test_huge_class_ids_and_class_lists_end_fast_with_one_line(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    (src / "classes.txt").unlink()
    (src / "img_00000.txt").write_text("999999999 0.5 0.5 0.1 0.1\n")
    started = time.monotonic()
    done = _cli("stats", str(src), "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    problems = json.loads(done.stdout)["problems"]
    assert any("img_00000.txt:1" in p and "limit" in p for p in problems)
    long_list = ClassList(f"class{i}" for i in range(50_000))  # linear: well under a second
    assert long_list.index("class49999") == 49_999
    (src / "classes.txt").write_text("".join(f"c{i}\n" for i in range(200_000)))
    done = _cli("stats", str(src), "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    assert any("classes.txt" in p and "limit" in p for p in json.loads(done.stdout)["problems"])
    assert time.monotonic() - started < 50


# ------------------------------------------------------------------ item 11: bombs

def test_decompression_bombs_are_refused_from_the_header(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    (src / "bomb.png").write_bytes(_png(30000, 30000))  # claims 900 megapixels
    with pytest.raises(ImageError, match="limit"):
        load_bgr(src / "bomb.png")
    with pytest.raises(ImageError, match="limit"):
        image_size(src / "bomb.png")
    done = _cli("stats", str(src), "--json")
    assert done.returncode == 0
    assert any("bomb.png" in p for p in json.loads(done.stdout)["problems"])
    # the limit is documented and can be raised or lowered
    small = _cli("stats", str(src), "--json", env={"WORKBENCH_MAX_PIXELS": "100"})
    assert sum("limit" in p for p in json.loads(small.stdout)["problems"]) == 3
    big = _cli("stats", str(src), "--json", env={"WORKBENCH_MAX_PIXELS": str(10**10)})
    assert not any("bomb.png" in p for p in json.loads(big.stdout)["problems"])


# ------------------------------------------------------------------ items 12, 13, 14: crashes

def _tiff_header(width: int, height: int) -> bytes:
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8 + 2 + 12 * 9 + 4), (277, 3, 1), (278, 4, height), (279, 4, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else
        struct.pack("<HHIHH", tag, kind, 1, value, 0) for tag, kind, value in entries)
    return b"II*\0" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + b"\0" * 16


def _hostile_headers(src: Path) -> list[str]:
    good = (src / "img_00000.jpg").read_bytes()
    png = Image.new("RGB", (10, 10))
    png.save(src / "whole.png")
    (src / "short.png").write_bytes((src / "whole.png").read_bytes()[:20])
    (src / "whole.png").unlink()
    (src / "app1.jpg").write_bytes(good[:2] + b"\xff\xe1\x00\x00" + good[2:])
    Image.new("RGB", (4, 4)).save(src / "big.bmp")
    bmp = bytearray((src / "big.bmp").read_bytes())
    bmp[18:26] = struct.pack("<ii", 40000, 40000)
    (src / "big.bmp").write_bytes(bytes(bmp))
    (src / "big.tif").write_bytes(_tiff_header(40000, 40000))
    for name in ("short", "app1", "big"):
        (src / f"{name}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return ["short.png", "app1.jpg", "big.bmp", "big.tif"]


def test_bad_image_headers_are_one_line_each_and_good_files_still_go_through(tmp_path):
    src = _demo(tmp_path / "src", images=3)
    bad = _hostile_headers(src)
    done = _cli("stats", str(src), "--json")
    assert done.returncode == 0, done.stderr
    problems = json.loads(done.stdout)["problems"]
    for name in bad:
        assert sum(name in p for p in problems) >= 1, name
    for to in TARGETS:
        out = tmp_path / to
        done = _cli("convert", str(src), "--to", to, "--out", str(out))
        assert done.returncode == 0, done.stderr
        _one_line_errors(done.stderr)
        assert all(name in done.stderr for name in bad[:3]), done.stderr
        written = [p.name for p in out.rglob("img_*.jpg")]
        assert len(written) == 3, to
    done = _cli("anchors", str(src), "-n", "2", "--size", "64")
    assert done.returncode == 0, done.stderr


def test_dangling_folder_and_looping_links_are_listed_not_crashed_on(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    (src / "sub").mkdir()
    (src / "dangling.jpg").symlink_to("not-there.jpg")
    (src / "folder.jpg").symlink_to("sub")
    (src / "loop.jpg").symlink_to("loop.jpg")
    (src / "inside.jpg").symlink_to("img_00000.jpg")  # a link inside the folder is fine
    for to in TARGETS:
        done = _cli("convert", str(src), "--to", to, "--out", str(tmp_path / to))
        assert done.returncode == 0, done.stderr
        _one_line_errors(done.stderr)
        for name in ("dangling.jpg", "folder.jpg", "loop.jpg"):
            assert name in done.stderr, (to, done.stderr)
    assert (tmp_path / "yolo" / "inside.jpg").is_file()


def test_file_names_that_cannot_go_into_label_files_are_listed(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    raw = os.fsencode(src)
    with open(os.path.join(raw, b"bad\xff.jpg"), "wb") as f:
        f.write((src / "img_00000.jpg").read_bytes())
    (src / "new\nline.jpg").write_bytes((src / "img_00000.jpg").read_bytes())
    (src / "new\nline.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    for to in ("voc", "coco", "darknet"):
        out = tmp_path / to
        done = _cli("convert", str(src), "--to", to, "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "not valid UTF-8" in done.stderr and "control character" in done.stderr
        assert "new\\nline.jpg" in done.stderr  # the name shown escaped, on one line
        _one_line_errors(done.stderr)
        if to == "darknet":
            assert len((out / "train.txt").read_text().splitlines()) + len(
                (out / "valid.txt").read_text().splitlines()) == 2
    done = _cli("stats", str(src))  # the text report prints the names too
    assert done.returncode == 0 and "bad\\udcff.jpg" in done.stdout, done.stderr
    (src / "classes.txt").write_text("circle\nsq\x01uare\ntriangle\nstar\n")
    done = _cli("convert", str(src), "--to", "voc", "--out", str(tmp_path / "v2"))
    assert done.returncode == 2 and "classes.txt:2" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "v2").exists()


def test_eval_with_overflowing_predictions_is_one_line(tmp_path):
    gt = _demo(tmp_path / "gt", images=2)
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "img_00000.txt").write_text("0 1e308 0.5 1e308 0.2 0.9\n")
    (pred / "img_00001.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n")
    done = _cli("eval", "--gt", str(gt), "--pred", str(pred))
    assert done.returncode == 2 and "img_00000.txt:1" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ item 17: bad arguments

@pytest.mark.parametrize("fraction", ["2", "nan", "-0.1"])
def test_bad_valid_fraction_is_one_line_and_leaves_nothing(tmp_path, fraction):
    src = _demo(tmp_path / "src", images=2)
    done = _cli("convert", str(src), "--to", "darknet", "--out", str(tmp_path / "out"),
                "--valid-fraction", fraction)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ item 21: stats

def test_stats_decode_finds_truncated_and_header_only_images(tmp_path):
    src = _demo(tmp_path / "src", images=2, size=96)
    jpeg = (src / "img_00000.jpg").read_bytes()
    (src / "cut.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    sos = jpeg.index(b"\xff\xda")
    (src / "header_only.jpg").write_bytes(jpeg[:sos] + b"\xff\xd9")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        src / "whole.png")
    png = (src / "whole.png").read_bytes()
    (src / "half.png").write_bytes(png[:len(png) // 2])
    (src / "whole.png").unlink()
    from workbench.data.images import check_decodable

    assert check_decodable(src / "img_00001.jpg") is None
    done = _cli("stats", str(src), "--decode", "--json")
    assert done.returncode == 0, done.stderr
    problems = json.loads(done.stdout)["problems"]
    for name in ("cut.jpg", "header_only.jpg", "half.png"):
        assert sum(name in p for p in problems) == 1, (name, problems)
    assert not any("img_0000" in p for p in problems)


def test_stats_reports_an_unreadable_subfolder(tmp_path, monkeypatch, capsys):
    src = _demo(tmp_path / "src", images=3)
    (src / "locked").mkdir()
    (src / "img_00001.jpg").rename(src / "locked" / "img_00001.jpg")
    locked = str(src / "locked")
    os.chmod(locked, 0o000)
    if os.access(locked, os.R_OK):  # root reads any folder: refuse this one the same way
        real_scandir = os.scandir

        def scandir(path="."):
            if os.fspath(path) == locked:
                raise PermissionError(13, "Permission denied", locked)
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        assert main(["stats", str(src), "--json"]) == 0
    finally:
        os.chmod(locked, 0o755)
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any("locked" in p and "folder not read" in p for p in problems), problems


# ------------------------------------------------------------------ items 22, 23

def test_damaged_class_list_is_named_not_called_missing(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    (src / "classes.txt").write_text("circle\nsquare\ncircle\nstar\n")
    done = _cli("stats", str(src), "--json")
    problems = json.loads(done.stdout)["problems"]
    assert any("classes.txt:3" in p for p in problems)
    assert not any("no class list file" in p for p in problems)
    done = _cli("convert", str(src), "--to", "voc", "--out", str(tmp_path / "voc"))
    assert done.returncode == 2 and "classes.txt:3" in done.stderr
    assert not (tmp_path / "voc").exists()


def test_no_decoder_noise_and_huge_label_files_are_refused_fast(tmp_path):
    src = _demo(tmp_path / "src", images=2)
    (src / "zero.png").write_bytes(_png(0, 5))             # libpng: "Invalid IHDR data"
    (src / "warn.png").write_bytes(_png(12000, 12000))     # PIL: DecompressionBombWarning
    line = "0 0.500000 0.500000 0.100000 0.100000\n"
    (src / "img_00001.txt").write_text(line * (17 * (1 << 20) // len(line)))
    started = time.monotonic()
    for args in (["stats", str(src)], ["convert", str(src), "--to", "voc", "--out",
                                       str(tmp_path / "voc")],
                 ["detect", str(src), "--model", "demo", "--out", str(tmp_path / "det")]):
        done = _cli(*args)
        assert done.returncode == 0, done.stderr
        _one_line_errors(done.stderr)
        for noise in ("libpng", "IHDR", "DecompressionBomb", "Warning"):
            assert noise not in done.stderr, (args[0], done.stderr)
    stats = _cli("stats", str(src), "--json")
    assert any("img_00001.txt" in p and "bytes" in p
               for p in json.loads(stats.stdout)["problems"])
    assert time.monotonic() - started < 90
