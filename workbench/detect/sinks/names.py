"""Where each image's outputs go under an output folder: the naming a file sink asks.

An image's stem is its path relative to the source, without the suffix, made unique among
the run's images (the rule of ``workbench.detect.output_names``, which eval and prediction sets
read back with); a video frame's stem is the video's stem and the frame index.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from workbench.detect.output_names import unique_stems
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.detect.pipeline import ImageResult


class Naming(Protocol):
    """A run's names: ``stem`` (the output path under OUT without a suffix) and
    ``file_name`` (the image as COCO and CSV name it) of each result."""

    def stem(self, result: ImageResult) -> Path: ...

    def file_name(self, result: ImageResult) -> str: ...


def relative(path: Path, src: Path) -> Path:
    """Where an image's outputs go under OUT: its path relative to SRC (or its list file)."""
    base = src if src.is_dir() else src.parent
    try:
        return path.resolve().relative_to(base.resolve())
    except ValueError:
        return Path(path.name)


def output_stems(paths: list[Path], src: Path) -> dict[Path, Path]:
    """Each image's output path under OUT without a suffix: its path relative to SRC (subfolders
    mirrored), made unique so that no two images write the same file."""
    return dict(zip(paths, unique_stems([relative(p, src) for p in paths]), strict=True))


class ImageNames:
    """The names of a run over images: ``stems`` by image path, and each image's file name
    (``files``, by default its path relative to ``src``)."""

    def __init__(self, stems: Mapping[Path, Path], src: Path | None = None,
                 files: Mapping[Path, str] | None = None) -> None:
        self.stems, self.src, self.files = stems, src, files

    @classmethod
    def of(cls, paths: list[Path], src: Path) -> ImageNames:
        return cls(output_stems(paths, src), src)

    def stem(self, result: ImageResult) -> Path:
        return self.stems[result.path]

    def file_name(self, result: ImageResult) -> str:
        if self.files is not None:
            return self.files[result.path]
        if self.src is None:
            raise ValueError("ImageNames needs src or files to name an image")
        return relative(result.path, self.src).as_posix()


class VideoNames:
    """A video's frames: ``NAME_000042`` under OUT, the video's file name in COCO and CSV."""

    def __init__(self, video: Path) -> None:
        self.video = Path(video)

    def stem(self, result: ImageResult) -> Path:
        return Path(f"{self.video.stem}_{result.frame:06d}")

    def file_name(self, result: ImageResult) -> str:
        return self.video.name


def with_suffix(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix`` (Path.with_suffix would cut a stem such as "img.v2" at its dot)."""
    return stem.parent / (stem.name + suffix)


def make_folder(out: Path) -> Path:
    """``out``, created; a WorkbenchError in one line when it cannot be."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"{out}: cannot create the output folder: {exc}") from None
    return out


def target(out: Path, naming: Naming, result: ImageResult, suffix: str) -> Path:
    """The file ``out/STEM+suffix`` of one result, its folder created."""
    path = with_suffix(out / naming.stem(result), suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
