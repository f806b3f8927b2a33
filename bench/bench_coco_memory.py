"""Peak memory of converting a COCO instances file, as a multiple of the file's size.

Generates a file shaped like COCO's ``instances_*.json`` (images with file_name, width,
height, id and the URL fields; annotations with segmentation polygons, area, iscrowd, bbox,
category_id, id; about 1% crowd regions with RLE counts; 80 categories) and the images it
lists (tiny PNGs of the listed sizes, hard links of one file per size), then runs in child
processes, alternating:

- ``workbench convert FILE --images DIR --to yolo`` (the real conversion path), and
- the reference: plain ``json.load`` of the same file (what any reader of it costs at least),
- the baseline: the same convert of a 20 kB COCO file listing the first few of the same
  images (the interpreter, its imports, the image folder: all but the big file's part).

Each child is started by a small launcher that prints ``getrusage(RUSAGE_CHILDREN).ru_maxrss``
for its one child: Linux counts the memory of the process that forks into the child's peak, so
children forked straight from a large process (this one after generating, or pytest) would
report that process's size; the launcher's own ~10 MB is under the baseline figure.

``--coords float`` writes polygon points with 2 decimals, as COCO's own files do; ``int``
writes dense integer points (every few pixels of the outline), as files converted from masks
do: the short numbers cost more memory per byte of file.

Usage: python3 bench/bench_coco_memory.py [--size-mb 200] [--coords float|int] [--to yolo|voc]
                                          [--repeats 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "coco_memory"
# COCO's own image sizes are mostly these (640 on the long side)
SIZES = ((640, 480), (480, 640), (640, 427), (427, 640), (640, 426), (500, 375))
# COCO's 80 category ids: 1..90 with gaps
CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def _polygon(rng: random.Random, x: float, y: float, w: float, h: float, coords: str
             ) -> list[float]:
    """A polygon inside the box: 2-decimal points as COCO writes them, or integer ones."""
    if coords == "int":  # a mask's outline traced every few pixels
        count = max(6, min(400, int(2 * (w + h) / rng.randint(2, 6))))
        return [int(v) for _ in range(count)
                for v in (x + rng.random() * w, y + rng.random() * h)]
    points = []
    for _ in range(rng.randint(6, 40)):  # COCO 2017: about 24 points on average
        points.append(round(x + rng.random() * w, 2))
        points.append(round(y + rng.random() * h, 2))
    return points


def _annotation(rng: random.Random, ann_id: int, image_id: int, width: int, height: int,
                coords: str) -> dict:
    w, h = rng.uniform(4, width / 2), rng.uniform(4, height / 2)
    x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
    crowd = rng.random() < 0.01
    if crowd:  # crowd regions are RLE: run lengths over the whole image
        counts = [rng.randint(1, 400) for _ in range(rng.randint(50, 300))]
        segmentation: object = {"counts": counts, "size": [height, width]}
    else:
        segmentation = [_polygon(rng, x, y, w, h, coords) for _ in range(1 + (rng.random() < 0.1))]
    return {"segmentation": segmentation, "area": round(w * h * 0.6, 4), "iscrowd": int(crowd),
            "image_id": image_id, "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
            "category_id": rng.choice(CATEGORY_IDS), "id": ann_id}


def _image(image_id: int, width: int, height: int) -> dict:
    name = f"{image_id:012d}.jpg"
    return {"license": 3, "file_name": name,
            "coco_url": f"http://images.cocodataset.org/train2017/{name}", "height": height,
            "width": width, "date_captured": "2013-11-14 11:18:45",
            "flickr_url": f"http://farm4.staticflickr.com/3153/{image_id}_5ba2d4f1a4_z.jpg",
            "id": image_id}


def write_coco_instances(path: Path, size_bytes: int, coords: str = "float", seed: int = 0
                         ) -> list[dict]:
    """Write a COCO instances file of about ``size_bytes`` at ``path``; returns its images.

    Written as it is generated (annotations to a side file first, since ``images`` comes
    before them), so making a 200 MB file does not itself take gigabytes.
    """
    rng = random.Random(seed)
    dump = json.JSONEncoder(separators=(",", ":")).encode  # compact, as COCO's files are
    images: list[dict] = []
    written = 0
    ann_id = 0
    with tempfile.TemporaryFile("w+", dir=path.parent) as anns:
        while written < size_bytes:
            width, height = SIZES[rng.randrange(len(SIZES))]
            image = _image(len(images) + 1, width, height)
            images.append(image)
            written += len(dump(image)) + 1
            for _ in range(rng.randint(1, 14)):  # COCO 2017: 7.3 annotations an image
                ann_id += 1
                text = dump(_annotation(rng, ann_id, image["id"], width, height, coords))
                anns.write(("," if ann_id > 1 else "") + text)
                written += len(text) + 1
        anns.seek(0)
        with open(path, "w") as f:
            f.write('{"info":{"description":"bench_coco_memory","version":"1.0"},'
                    '"licenses":[{"url":"http://creativecommons.org/licenses/by/2.0/",'
                    '"id":3,"name":"Attribution License"}],"images":[')
            f.write(",".join(dump(image) for image in images))
            f.write('],"annotations":[')
            shutil.copyfileobj(anns, f, 1 << 20)
            f.write('],"categories":')
            f.write(dump([{"supercategory": "thing", "id": i, "name": f"class{i}"}
                          for i in CATEGORY_IDS]))
            f.write("}")
    return images


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def write_images(folder: Path, images: list[dict]) -> None:
    """The listed images: one PNG per size, hard-linked under every name of that size."""
    folder.mkdir(parents=True, exist_ok=True)
    templates: dict[tuple[int, int], Path] = {}
    for (width, height) in {(im["width"], im["height"]) for im in images}:
        templates[width, height] = folder.parent / f"template_{width}x{height}.png"
        templates[width, height].write_bytes(_png(width, height))
    for image in images:
        target = folder / image["file_name"]
        template = templates[image["width"], image["height"]]
        try:
            os.link(template, target)
        except OSError:  # no hard links on this file system
            shutil.copyfile(template, target)


# the baseline's COCO file: the same first images (same seed), a few annotations
SMALL_BYTES = 20_000


def make_data(folder: Path, size_bytes: int, coords: str = "float", seed: int = 0
              ) -> tuple[Path, Path, Path]:
    """The COCO file, a small one listing its first images, and the image folder of both.

    Generated once: kept when ``folder`` already has them.
    """
    coco, small, images = (folder / "instances.json", folder / "small.json",
                           folder / "images")
    if coco.is_file() and small.is_file() and images.is_dir():
        return coco, small, images
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    write_images(images, write_coco_instances(coco, size_bytes, coords, seed))
    write_coco_instances(small, SMALL_BYTES, coords, seed)
    return coco, small, images


# run with -S (no site-packages): the smaller the launcher, the lower the floor it sets
_LAUNCHER = """import os, resource, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def peak_rss(argv: list[str], timeout: float | None = None) -> tuple[int, float]:
    """Peak RSS in bytes of a child running ``argv`` (through the launcher), and seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv], capture_output=True,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    maxrss, code = done.stdout.split() if done.returncode == 0 else ("0", "launcher")
    if code != "0":
        raise RuntimeError(f"{' '.join(argv)} failed ({code}):\n{done.stderr}")
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    return int(maxrss) * (1 if sys.platform == "darwin" else 1024), seconds


def convert_argv(coco: Path, images: Path, to: str, out: Path) -> list[str]:
    """The real conversion path: the CLI in its own interpreter."""
    return [sys.executable, "-m", "workbench", "convert", str(coco), "--images", str(images),
            "--to", to, "--out", str(out), "--force"]


def commands(coco: Path, small: Path, images: Path, to: str) -> dict[str, list[str]]:
    out = coco.parent / f"out_{to}"
    return {
        # the interpreter, its imports and the image folder: all but the COCO file's part
        "baseline (convert of small.json)": convert_argv(small, images, to, out),
        "json.load (reference)": [sys.executable, "-c",
                                  "import json, sys; json.load(open(sys.argv[1]))", str(coco)],
        f"workbench convert --to {to}": convert_argv(coco, images, to, out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=200, help="COCO file size (default 200)")
    parser.add_argument("--coords", choices=("float", "int"), default="float",
                        help="polygon points: COCO's 2 decimals or integers (default float)")
    parser.add_argument("--to", choices=("yolo", "voc"), default="yolo")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, alternating")
    args = parser.parse_args()
    coco, small, images = make_data(OUT / f"{args.size_mb:g}mb_{args.coords}",
                                    int(args.size_mb * 1e6), args.coords)
    size = coco.stat().st_size
    runs = commands(coco, small, images, args.to)
    peaks: dict[str, list[int]] = {name: [] for name in runs}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # alternating, so a busy host weighs on all alike
        for name, argv in runs.items():
            peak, seconds = peak_rss(argv)
            peaks[name].append(peak)
            times[name].append(seconds)
    count = sum(1 for _ in images.iterdir())
    print(f"COCO file: {size / 1e6:.1f} MB ({args.coords} polygon points), {count} images")
    print(f"{'child':34} {'peak RSS MB':>12} {'x file':>7} {'seconds':>8}")
    for name in runs:
        peak = statistics.median(peaks[name])
        print(f"{name:34} {peak / 1e6:12.0f} {peak / size:7.2f} "
              f"{statistics.median(times[name]):8.1f}")
    baseline, reference, convert = (statistics.median(peaks[name]) for name in runs)
    print(f"convert / json.load peak: {convert / reference:.2f}; convert above the baseline: "
          f"{(convert - baseline) / size:.2f}x the file")


if __name__ == "__main__":
    main()
