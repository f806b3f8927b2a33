"""Which numeric precision training runs in: ``auto`` picks mixed precision where it is faster.

On a CPU with bfloat16 matrix units (Intel AMX, or AVX-512 BF16) ``mixed_bfloat16`` keeps the
weights in float32 and computes the convolutions in bfloat16 (measured in docs/training.md:
faster, same mAP); on a GPU ``mixed_float16`` (with loss scaling); else float32. Validation and
export always use float32 weights, so the exported model is the same kind of file either way.
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
    if has_gpu:
        return "float16"
    return "bfloat16" if (cpu_has_bf16() if cpu_bf16 is None else cpu_bf16) else "float32"


def keras_policy(precision: str) -> str:
    """The Keras dtype policy of the layers for a resolved precision."""
    return {"float32": "float32", "bfloat16": "mixed_bfloat16",
            "float16": "mixed_float16"}[precision]
