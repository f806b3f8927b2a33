"""``workbench weights partial``'s service: darknet's ``partial`` in Python, the convolutions
of the first N layers of a weights file written as a start point (e.g. yolov3-tiny.conv.15).
"""

from __future__ import annotations

from pathlib import Path

from workbench.darknet.cfg import read_cfg
from workbench.darknet.weights import (
    conv_layer_sizes,
    read_weights_for_transfer,
    truncate,
    write_weights,
)
from workbench.errors import WorkbenchError
from workbench.storage.output_guard import refuse_input_as_output


def write_partial(cfg_path: str | Path, weights_path: str | Path, layers: int,
                  out: str | Path) -> int:
    """Write the convolutions of layers 0..``layers``-1 of ``weights_path`` (laid out for
    ``cfg_path``, whose class count may differ from the file's) to ``out``; the number of
    convolutions written. WorkbenchError when ``out`` is an input, ``layers`` is out of
    range, or the file lacks a convolution before layer ``layers``."""
    # before anything is read: OUT = the cfg once overwrote the cfg with weights
    refuse_input_as_output(out, [cfg_path, weights_path])
    cfg = read_cfg(cfg_path)
    n = layers
    if not 1 <= n <= len(cfg.layers):
        raise WorkbenchError(f"N must lie between 1 and {len(cfg.layers)} (the layers of "
                             f"{cfg_path}), got {n}")
    transfer = read_weights_for_transfer(weights_path, cfg)
    wanted = [i for i, *_ in conv_layer_sizes(cfg) if i < n]
    missing = [i for i in wanted if i not in transfer.weights.layers]
    if missing:
        raise WorkbenchError(f"{weights_path}: layer {missing[0]} is not in the file or does "
                             f"not fit {cfg_path}; a partial file must hold every convolution "
                             f"before layer {n}")
    if not wanted:
        raise WorkbenchError(f"layers 0..{n - 1} of {cfg_path} have no convolution")
    write_weights(truncate(transfer.weights, n), out)
    return len(wanted)
