"""The darknet training layout: obj.names, obj.data, seeded split, images with labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from workbench.data.darknet_layout import export_darknet, read_obj_data, split_records
from workbench.data.folder import open_dataset, save_labels
from workbench.data.images import exif_orientation, image_size, load_bgr
from workbench.errors import FormatError
from workbench.labels.dataset import Box


def _dataset(root: Path, n=10):
    for i in range(n):
        folder = root / ("images" if i % 2 else "more")  # darknet's /images/ trap
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 32), (i * 20, 50, 50)).save(folder / f"im{i}.png")
        (folder / f"im{i}.txt").write_text(f"{i % 3} 0.500000 0.500000 0.250000 0.500000\n")
    Image.new("RGB", (64, 32)).save(root / "more" / "unlabeled.png")
    (root / "classes.txt").write_text("a\nb\nc\n")
    return open_dataset(root)


def test_export_writes_the_alexeyab_layout(tmp_path):
    dataset = _dataset(tmp_path / "src")
    data = export_darknet(dataset, tmp_path / "out", valid_fraction=0.3, seed=1)
    out = (tmp_path / "out").resolve()
    assert data == out / "obj.data"
    values = read_obj_data(data)
    assert values == {"classes": "3", "train": str(out / "train.txt"),
                      "valid": str(out / "valid.txt"), "names": str(out / "obj.names"),
                      "backup": f"{out / 'backup'}/"}
    assert (out / "obj.names").read_text() == "a\nb\nc\n"
    assert (out / "backup").is_dir()
    train = (out / "train.txt").read_text().splitlines()
    valid = (out / "valid.txt").read_text().splitlines()
    assert (len(train), len(valid)) == (7, 3)  # the unlabeled image is left out
    assert not set(train) & set(valid)
    for line in train + valid:
        image = Path(line)
        assert image.is_absolute() and image.is_file() and image.parent == out / "obj"
        # darknet's own rule for finding the label: same path, image extension -> .txt
        assert "/images/" not in line
        assert image.with_suffix(".txt").read_text().startswith(
            ("0 0.500000", "1 0.500000", "2 0.500000"))


def test_split_is_seeded_and_deterministic(tmp_path):
    dataset = _dataset(tmp_path / "src", n=20)
    labeled = [r for r in dataset.images if r.labeled]
    a = split_records(labeled, 0.25, seed=5)
    b = split_records(list(reversed(labeled)), 0.25, seed=5)
    c = split_records(labeled, 0.25, seed=6)
    assert [r.path for r in a[1]] == [r.path for r in b[1]] and len(a[1]) == 5
    assert [r.path for r in a[1]] != [r.path for r in c[1]]
    assert split_records(labeled[:2], 0.01, 0)[1] and split_records(labeled[:2], 0.99, 0)[0]
    with pytest.raises(ValueError):
        split_records(labeled, 1.5, 0)


def test_existing_split_is_kept(tmp_path):
    dataset = _dataset(tmp_path / "src", n=4)
    (tmp_path / "src" / "valid.txt").write_text("images/im1.png\n")
    (tmp_path / "src" / "train.txt").write_text("more/im0.png\nimages/im3.png\n")
    dataset = open_dataset(tmp_path / "src")
    export_darknet(dataset, tmp_path / "out")
    valid = (tmp_path / "out" / "valid.txt").read_text().splitlines()
    train = (tmp_path / "out" / "train.txt").read_text().splitlines()
    assert [Path(v).name for v in valid] == ["im1.png"]
    assert sorted(Path(t).name for t in train) == ["im0.png", "im2.png", "im3.png"]


def test_layout_reopens_as_the_same_dataset(tmp_path):
    dataset = _dataset(tmp_path / "src")
    export_darknet(dataset, tmp_path / "out", seed=3)
    again = open_dataset(tmp_path / "out")
    assert again.classes == dataset.classes and again.problems == []
    assert len(again.split["train"]) + len(again.split["valid"]) == 10
    before = {r.name: r.boxes for r in dataset.images if r.labeled}
    assert {r.name: r.boxes for r in again.images} == before


def test_same_file_names_in_different_folders_stay_apart(tmp_path):
    root = tmp_path / "src"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / folder / "x.png")
        (root / folder / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "classes.txt").write_text("k\n")
    export_darknet(open_dataset(root), tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out" / "obj").iterdir())
    assert names == ["x.png", "x.txt", "x_1.png", "x_1.txt"]


def test_exif_rotated_image_is_written_upright_for_darknet(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (80, 40), (10, 200, 10)).save(root / "phone.jpg", exif=exif.tobytes())
    Image.new("RGB", (30, 30)).save(root / "plain.webp")
    (root / "classes.txt").write_text("thing\n")
    dataset = open_dataset(root)
    for record in dataset.images:
        record.boxes = [Box(2, 2, 20, 20, 0)]
        save_labels(dataset, record)
    export_darknet(open_dataset(root), tmp_path / "out")
    obj = tmp_path / "out" / "obj"
    turned = obj / "phone.jpg"
    assert exif_orientation(turned) == 1 and image_size(turned) == (40, 80)
    assert load_bgr(turned).shape[:2] == load_bgr(root / "phone.jpg").shape[:2]
    assert (obj / "plain.png").is_file()  # darknet cannot read webp
    assert (obj / "phone.txt").read_text() == "0 0.275000 0.137500 0.450000 0.225000\n"


def test_obj_data_reader_reports_bad_lines(tmp_path):
    path = tmp_path / "obj.data"
    path.write_text("classes = 2  # two\ntrain\n")
    with pytest.raises(FormatError) as info:
        read_obj_data(path)
    assert info.value.line == 2
