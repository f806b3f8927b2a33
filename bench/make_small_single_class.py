"""A small single-class data set with the character of photos people label themselves, made
from BCCD: its white blood cells only, each image a random crop around a cell rescaled to a
random size and aspect ratio, so the cell is large and the images vary from 200 to 1,000 px.

    python3 bench/make_small_single_class.py BCCD_DEVKIT OUT [--train 160] [--test 40] [--seed 0]
    python3 bench/bench_bccd.py OUT --weights yolov3-tiny.weights     # the same figures on it

OUT is a VOC devkit (JPEGImages/, Annotations/, ImageSets/Main/trainval.txt and test.txt):
trainval crops come only from BCCD's trainval photos and test crops only from its test photos,
so no cell is in both. A crop keeps a cell when at least half of the cell's box is inside it
(the box clipped to the crop); red cells and platelets are background.
"""

from __future__ import annotations

import argparse
import random
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASS = "WBC"


def cells(annotation: Path) -> list[tuple[float, float, float, float]]:
    root = ET.parse(annotation).getroot()
    return [tuple(float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            for o in root.iter("object") if o.findtext("name", "").strip() == CLASS]


def random_crop(rng: random.Random, w: int, h: int, cell) -> tuple[int, int, int, int]:
    """A crop (x1, y1, x2, y2) inside the image holding ``cell``, the cell filling 35-85 % of
    the crop's longer side, aspect ratio 0.6-1.7 (as far as the image allows)."""
    x1, y1, x2, y2 = cell
    side = max(x2 - x1, y2 - y1) / rng.uniform(0.35, 0.85)
    aspect = rng.uniform(0.6, 1.7)
    cw, ch = min(side * aspect ** 0.5, w), min(side / aspect ** 0.5, h)
    cw, ch = max(cw, min(x2 - x1, w)), max(ch, min(y2 - y1, h))
    left = rng.uniform(max(0.0, x2 - cw), max(min(x1, w - cw), max(0.0, x2 - cw)))
    top = rng.uniform(max(0.0, y2 - ch), max(min(y1, h - ch), max(0.0, y2 - ch)))
    return int(left), int(top), int(min(left + cw, w)), int(min(top + ch, h))


def write_voc(path: Path, name: str, width: int, height: int, boxes) -> None:
    from workbench.storage.atomic import atomic_write_text

    objects = "".join(
        f"<object><name>{CLASS}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for b in boxes)
    atomic_write_text(path, f"<annotation><filename>{name}</filename><size><width>{width}"
                      f"</width><height>{height}</height><depth>3</depth></size>{objects}"
                      "</annotation>\n")


def make(devkit: Path, out: Path, counts: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for split, source in (("trainval", "trainval"), ("test", "test")):
        stems = (devkit / "ImageSets" / "Main" / f"{source}.txt").read_text().split()
        stems = [s for s in stems if cells(devkit / "Annotations" / f"{s}.xml")]
        rng.shuffle(stems)
        written = []
        for i in range(counts[split]):
            stem = stems[i % len(stems)]
            image = cv2.imread(str(devkit / "JPEGImages" / f"{stem}.jpg"))
            h, w = image.shape[:2]
            found = cells(devkit / "Annotations" / f"{stem}.xml")
            cx1, cy1, cx2, cy2 = random_crop(rng, w, h, rng.choice(found))
            crop = image[cy1:cy2, cx1:cx2]
            width = rng.randint(200, 1000)  # the output size: 200 to 1,000 px wide
            height = max(32, round(width * crop.shape[0] / crop.shape[1]))
            sx, sy = width / crop.shape[1], height / crop.shape[0]
            boxes = []
            for x1, y1, x2, y2 in found:
                ix1, iy1, ix2, iy2 = max(x1, cx1), max(y1, cy1), min(x2, cx2), min(y2, cy2)
                if ix2 <= ix1 or iy2 <= iy1:
                    continue
                if (ix2 - ix1) * (iy2 - iy1) < 0.5 * (x2 - x1) * (y2 - y1):
                    continue
                boxes.append((round((ix1 - cx1) * sx), round((iy1 - cy1) * sy),
                              round((ix2 - cx1) * sx), round((iy2 - cy1) * sy)))
            name = f"{split}_{i:04d}"
            resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA
                                 if sx < 1 else cv2.INTER_LINEAR)
            cv2.imwrite(str(out / "JPEGImages" / f"{name}.jpg"), resized,
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            write_voc(out / "Annotations" / f"{name}.xml", f"{name}.jpg", width, height, boxes)
            written.append(name)
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(written) + "\n")
        print(f"{split}: {len(written)} crops from {min(len(stems), counts[split])} BCCD photos")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("devkit", type=Path, help="the BCCD VOC devkit folder")
    p.add_argument("out", type=Path, help="where to write the new devkit")
    p.add_argument("--train", type=int, default=160)
    p.add_argument("--test", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    make(args.devkit, args.out, {"trainval": args.train, "test": args.test}, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
