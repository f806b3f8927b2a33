"""Which numeric precision training runs in: ``auto`` picks mixed precision where it pays.

On a GPU ``auto`` is ``mixed_float16`` (with loss scaling); on a CPU it is float32. A CPU with
bfloat16 matrix units (Intel AMX, or AVX-512 BF16) can run ``mixed_bfloat16`` (weights in
float32, convolutions in bfloat16), but measured on BCCD (docs/training.md) it finished a
30-epoch run in the same wall time as float32 (19.1 vs 19.0 min: steps 1.14x faster, data
and validation unchanged) and not above float32's mAP, so it is opt-in (``--precision
bfloat16``). Validation and export always use float32 weights, so the exported model is the
same kind of file either way.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when /proc/cpuinfo lists AMX-BF16 or AVX512-BF16 (Linux; False elsewhere)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(f in flags for f in BF16_CPU_FLAGS)
    return False


def resolve_precision(name: str, has_gpu: bool, cpu_bf16: bool | None = None) -> str:
    """``float32``, ``bfloat16`` or ``float16`` for the ``--precision`` value ``name``."""
    if name not in PRECISIONS:
        raise WorkbenchError(f"unknown precision {name!r} (use {', '.join(PRECISIONS)})")
    if name != "auto":
        return name
    # cpu_bf16 is kept for callers that report it; on a CPU auto stays float32 (see above)
    return "float16" if has_gpu else "float32"


def keras_policy(precision: str) -> str:
    """The Keras dtype policy of the layers for a resolved precision."""
    return {"float32": "float32", "bfloat16": "mixed_bfloat16",
            "float16": "mixed_float16"}[precision]
