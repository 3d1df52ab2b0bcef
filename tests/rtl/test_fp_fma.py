"""FMA core in the Amaranth simulator against tensorforge.golden.fp.fma, bit for bit incl. flags.

Each configuration streams TestFloat-style operands (special values, random patterns,
near-cancelling addends) with random input gaps and output back-pressure. Rounding modes
rotate over the configurations so that every mode meets pipelined and combinational cores;
the exhaustive-style depth (millions of vectors, every mode x config) runs in Verilator.
"""

from __future__ import annotations

import numpy as np
import pytest

from tensorforge.golden import fp as gfp
from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32
from tensorforge.rtl.fp.fma import FMA

from test_fp_support import check, near_cancelling_addends, operands, run_stream, vector_count

CASES = [
    # in_format, acc_format, rounding, stages
    (FP16, FP32, "rne", 0),
    (FP16, FP32, "rtz", 9),
    (FP16, FP32, "rmm", 3),
    (BF16, FP32, "rdn", 0),
    (BF16, FP32, "rup", 5),
    (FP32, FP32, "rmm", 0),
    (FP32, FP32, "rne", 4),
    (FP16, FP16, "rup", 2),
    (TF32, FP32, "rdn", 8),
    (FP8_E4M3, FP8_E4M3, "rne", 0),
    (FP8_E4M3, FP8_E4M3, "rup", 1),
    (FP8_E5M2, FP8_E5M2, "rtz", 6),
    (FP8_E5M2, FP16, "rdn", 0),
    (FP8_E4M3, FP32, "rmm", 7),
    (FP16, FP32, "rne", 9),
]


def _ids(case):
    fi, fa, mode, stages = case
    return f"{fi}x{fi}+{fa}-{mode}-s{stages}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_fma_matches_golden(case):
    fi, fa, mode, stages = case
    seed = sum(map(ord, _ids(case)))
    rng = np.random.default_rng(seed)
    n = vector_count(80)
    a = operands(fi, rng, n)
    b = operands(fi, rng, n)
    c = operands(fa, rng, n)
    cancel = rng.random(n) < 0.3
    c[cancel] = near_cancelling_addends(a[cancel], b[cancel], fi, fa, rng, mode)
    core = FMA(in_format=fi, acc_format=fa, rounding=mode, stages=stages)
    assert core.latency == stages and core.initiation_interval == 1
    inputs = {"a": a, "b": b, "c": c}
    out = run_stream(core, inputs, seed=seed)
    bits, flags = gfp.fma(a, b, c, fi, fa, mode)
    check(out, bits, flags, inputs, seed=seed, label=_ids(case))
