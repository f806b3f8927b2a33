import numpy as np
import pytest
from PIL import Image

from workbench.data.images import exif_orientation, image_size, list_images, load_bgr, load_rgb
from workbench.errors import ImageError


def _rotated_jpeg(path, width=40, height=30, orientation=6):
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)  # left half red, stored unrotated
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, exif=exif, quality=95)
    return path


def test_exif_orientation_6_swaps_size_and_rotates_pixels(tmp_path):
    path = _rotated_jpeg(tmp_path / "phone.jpg")
    assert exif_orientation(path) == 6
    assert image_size(path) == (30, 40)
    rgb = load_rgb(path)
    assert rgb.shape == (40, 30, 3)
    # orientation 6 = rotate 90 degrees clockwise to display: the stored left half is on top
    assert rgb[5, 15, 0] > 200 and rgb[35, 15, 0] < 60


def test_size_without_exif(tmp_path):
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    assert exif_orientation(tmp_path / "a.png") == 1
    assert image_size(tmp_path / "a.png") == (64, 48)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "I;16"])
def test_any_mode_is_converted_to_8bit_bgr(tmp_path, mode):
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray((rng.random((20, 30)) * 65535).astype(np.uint16))
        path = tmp_path / "deep.png"
    elif mode == "CMYK":
        img, path = base.convert("CMYK"), tmp_path / "cmyk.jpg"
    else:
        img, path = base.convert(mode), tmp_path / f"{mode}.png"
    img.save(path)
    bgr = load_bgr(path)
    assert bgr.shape == (20, 30, 3) and bgr.dtype == np.uint8


def test_truncated_and_corrupt_images_raise_image_error_naming_the_file(tmp_path):
    Image.new("RGB", (50, 50), "white").save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("cut.jpg", "junk.png", "empty.jpg"):
        with pytest.raises(ImageError) as err:
            load_bgr(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ImageError, match="junk.png"):
        image_size(tmp_path / "junk.png")
    with pytest.raises(ImageError, match="not found"):
        image_size(tmp_path / "missing.jpg")


def test_list_images_recursive_sorted_skips_hidden_and_other_files(tmp_path):
    for rel in ["b.jpg", "a.PNG", "sub/c.jpeg", ".hidden/d.jpg", "notes.txt", "sub/ü.bmp"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / rel, format="PNG") if rel.endswith(
            ("jpg", "PNG", "jpeg", "bmp")) else (tmp_path / rel).write_text("x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert names == ["a.PNG", "b.jpg", "sub/c.jpeg", "sub/ü.bmp"]


def test_header_sizes_equal_pil_for_every_orientation_and_kind(tmp_path):
    from PIL import ImageOps

    rng = np.random.default_rng(0)
    for o in range(1, 9):
        img = Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8))
        exif = img.getexif()
        exif[0x010F] = "camera"  # a tag before the orientation in the IFD
        exif[0x0112] = o
        img.save(tmp_path / f"o{o}.jpg", exif=exif)
        img.save(tmp_path / f"p{o}.jpg", progressive=True, exif=exif)
        img.save(tmp_path / f"o{o}.png")
        img.save(tmp_path / f"o{o}.bmp")
    for path in sorted(tmp_path.iterdir()):
        with Image.open(path) as img:
            expected = ImageOps.exif_transpose(img).size
        assert image_size(path) == expected, path.name
        if path.suffix != ".bmp":
            assert load_bgr(path).shape[1::-1] == expected, path.name
