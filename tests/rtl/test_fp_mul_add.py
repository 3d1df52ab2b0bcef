"""Mul and Add cores in the Amaranth simulator against tensorforge.golden.fp.mul/add, bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tensorforge.golden import fp as gfp
from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32
from tensorforge.rtl.fp.add import Add
from tensorforge.rtl.fp.mul import Mul

from test_fp_support import check, operands, run_stream, vector_count

MUL_CASES = [
    # fmt, out_format, rounding, stages
    (FP16, FP16, "rne", 0),
    (FP16, FP16, "rdn", 4),
    (FP16, FP32, "rne", 2),          # exact widening product
    (BF16, BF16, "rup", 3),
    (FP32, FP32, "rtz", 4),
    (FP32, FP16, "rmm", 0),          # narrowing: one rounding, deep underflow/overflow
    (FP16, FP8_E4M3, "rne", 1),      # infinities that e4m3fn cannot hold -> NaN + invalid
]

ADD_CASES = [
    # fmt, rounding, stages
    (FP16, "rne", 0),
    (FP16, "rdn", 6),
    (BF16, "rup", 3),
    (FP32, "rtz", 2),
    (FP32, "rmm", 0),
    (FP8_E4M3, "rne", 4),
    (FP8_E5M2, "rdn", 1),
]


def _mul_id(case):
    fmt, out, mode, stages = case
    return f"{fmt}x{fmt}->{out}-{mode}-s{stages}"


def _add_id(case):
    fmt, mode, stages = case
    return f"{fmt}+{fmt}-{mode}-s{stages}"


@pytest.mark.parametrize("case", MUL_CASES, ids=[_mul_id(c) for c in MUL_CASES])
def test_mul_matches_golden(case):
    fmt, out_format, mode, stages = case
    seed = sum(map(ord, _mul_id(case)))
    rng = np.random.default_rng(seed)
    n = vector_count(60)
    a, b = operands(fmt, rng, n), operands(fmt, rng, n)
    core = Mul(fmt=fmt, out_format=out_format, rounding=mode, stages=stages)
    assert core.latency == stages and core.fmt is fmt and core.out_format is out_format
    inputs = {"a": a, "b": b}
    out = run_stream(core, inputs, seed=seed)
    bits, flags = gfp.mul(a, b, fmt, mode, out_format=out_format)
    check(out, bits, flags, inputs, seed=seed, label=_mul_id(case))


@pytest.mark.parametrize("case", ADD_CASES, ids=[_add_id(c) for c in ADD_CASES])
def test_add_matches_golden(case):
    fmt, mode, stages = case
    seed = sum(map(ord, _add_id(case)))
    rng = np.random.default_rng(seed)
    n = vector_count(60)
    a, b = operands(fmt, rng, n), operands(fmt, rng, n)
    # half the pairs nearly cancel: b = -(a moved by a few ulps)
    close = rng.random(n) < 0.4
    moved = np.clip(a[close].astype(np.int64) + rng.integers(-3, 4, int(close.sum())), 0, (1 << fmt.width) - 1)
    b[close] = moved.astype(np.uint64) ^ np.uint64(fmt.sign_mask)
    core = Add(fmt=fmt, rounding=mode, stages=stages)
    inputs = {"a": a, "b": b}
    out = run_stream(core, inputs, seed=seed)
    bits, flags = gfp.add(a, b, fmt, mode)
    check(out, bits, flags, inputs, seed=seed, label=_add_id(case))


def _fp8_pairs(fmt, share):
    allbits = np.arange(256, dtype=np.uint64)
    a, b = (x.ravel() for x in np.meshgrid(allbits, allbits, indexing="ij"))
    if share < 1:
        keep = np.random.default_rng(256).random(a.size) < share
        a, b = a[keep], b[keep]
    return a, b


@pytest.mark.parametrize("fmt", [FP8_E4M3, FP8_E5M2], ids=str)
def test_fp8_mul_pairs_subset(fmt):
    """A fixed pseudo-random ~1% subset of all 65,536 input pairs (every mode covered in the slow test)."""
    a, b = _fp8_pairs(fmt, vector_count(300) / 65536)
    mode = "rne"
    core = Mul(fmt=fmt, rounding=mode, stages=2)
    out = run_stream(core, {"a": a, "b": b}, seed=8, p_valid=0.9, p_ready=0.9)
    bits, flags = gfp.mul(a, b, fmt, mode)
    check(out, bits, flags, {"a": a, "b": b}, seed=8, label=f"{fmt} mul pairs")


@pytest.mark.slow
@pytest.mark.parametrize("fmt,mode", list(itertools.product([FP8_E4M3, FP8_E5M2], ["rne", "rtz", "rdn", "rup", "rmm"])),
                         ids=lambda x: str(x))
def test_fp8_mul_all_pairs(fmt, mode):
    """Every one of the 65,536 input pairs, per rounding mode (about 10 minutes each in pysim)."""
    a, b = _fp8_pairs(fmt, 1)
    core = Mul(fmt=fmt, rounding=mode, stages=0)
    out = run_stream(core, {"a": a, "b": b}, seed=9, p_valid=1.0, p_ready=1.0)
    bits, flags = gfp.mul(a, b, fmt, mode)
    check(out, bits, flags, {"a": a, "b": b}, seed=9, label=f"{fmt} mul all pairs {mode}")
