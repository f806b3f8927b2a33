"""--precision auto: float16 on a GPU, float32 on a CPU even with bf16 units (measured: no
faster end to end there); bfloat16 on request."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.train.precision import cpu_has_bf16, keras_policy, resolve_precision

AMX = "processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
PLAIN = "processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n"


def test_bf16_units_are_read_from_the_cpu_flags():
    assert cpu_has_bf16(AMX)
    assert cpu_has_bf16(PLAIN.replace("avx512_vnni", "avx512_vnni avx512_bf16"))
    assert not cpu_has_bf16(PLAIN)
    assert not cpu_has_bf16("")


@pytest.mark.parametrize(("name", "gpu", "bf16", "expected"), [
    ("auto", False, True, "float32"), ("auto", False, False, "float32"),
    ("auto", True, True, "float16"), ("float32", False, True, "float32"),
    ("bfloat16", False, False, "bfloat16")])
def test_auto_picks_mixed_precision_where_it_pays(name, gpu, bf16, expected):
    assert resolve_precision(name, gpu, bf16) == expected


def test_policies_and_bad_names():
    assert keras_policy("bfloat16") == "mixed_bfloat16"
    assert keras_policy("float16") == "mixed_float16"
    assert keras_policy("float32") == "float32"
    with pytest.raises(WorkbenchError, match="unknown precision 'half'"):
        resolve_precision("half", False)
