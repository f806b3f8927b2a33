"""Files shipped with the tool: the demo model (``resources/``) and the darknet templates
(``darknet_cfg/``).

In a clone they are the top-level folders of the source tree. A wheel cannot hold folders
outside its packages, so ``setup.py`` copies both into ``workbench/_bundled/`` at build time,
and an installed tool finds them there through ``importlib.resources``. The installed copy is
looked for first, so a wheel never reaches for a source tree that may not be there.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from workbench.errors import WorkbenchError

# where setup.py's build step puts the top-level folders inside the package
PACKAGED = "_bundled"
FOLDERS = ("resources", "darknet_cfg")
_SOURCE_TREE = Path(__file__).resolve().parents[1]


def bundled_folder(name: str) -> Path:
    """The shipped folder ``name`` (one of FOLDERS): the installed copy, else the clone's."""
    if name not in FOLDERS:
        raise ValueError(f"not a bundled folder: {name}")
    installed = resources.files("workbench").joinpath(PACKAGED).joinpath(name)
    # a wheel is installed unpacked, so the Traversable is a real folder on disk
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    source = _SOURCE_TREE / name
    if source.is_dir():
        return source
    raise WorkbenchError(f"the bundled folder {name}/ is missing from this installation "
                         f"(looked in {installed} and {source}); reinstall the workbench")


def demo_model_folder() -> Path:
    """The folder of the bundled demo model (``--model demo``)."""
    return bundled_folder("resources") / "models" / "demo"


def template_cfg(template: str) -> Path:
    """The .cfg file of a built-in training template (``train.settings.TEMPLATES``:
    yolov3-tiny, yolov3-tiny-3l, yolov3, demo-tiny)."""
    return bundled_folder("darknet_cfg") / f"{template}.cfg"
