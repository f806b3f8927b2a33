"""Where each image's outputs go when many images are written into one folder.

`workbench detect --out`, prediction sets and `workbench eval` share this rule, so that what
one writes the others find: an image's output path is its path relative to the source without
the suffix, mirrored under the output folder; images whose names clash once the suffix is
dropped (``a.jpg`` and ``a.png``; two ``a.jpg`` of a list file flattened) take their suffix
into the name (``a_jpg``, ``a_png``), then a number if that still clashes.
"""

from __future__ import annotations

from pathlib import Path


def unique_stems(relative: list[Path]) -> list[Path]:
    """Output stem (no suffix) of each relative image path, in order; an image whose stem is
    unique keeps its plain name. The same path twice (two ``a.jpg`` from different folders)
    gets two names. Compared case-insensitively: the output folder may be on a
    case-insensitive file system."""
    relative = [Path(r) for r in relative]
    groups: dict[str, list[int]] = {}
    for i, rel in enumerate(relative):
        groups.setdefault(rel.with_suffix("").as_posix().casefold(), []).append(i)
    taken = {key for key, members in groups.items() if len(members) == 1}
    out: list[Path] = [Path()] * len(relative)
    for members in groups.values():
        if len(members) == 1:
            out[members[0]] = relative[members[0]].with_suffix("")
            continue
        for i in members:
            rel = relative[i]
            base = rel.parent / f"{rel.stem}_{rel.suffix.lstrip('.').lower() or 'image'}"
            name, n = base, 1
            while name.as_posix().casefold() in taken:
                n += 1
                name = base.parent / f"{base.name}_{n}"
            taken.add(name.as_posix().casefold())
            out[i] = name
    return out
