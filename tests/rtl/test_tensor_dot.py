"""DotProductAdd in the Amaranth simulator against tensorforge.golden.dot, bit for bit (d and flags).

Every semantics family (chain, exact, the nvidia presets and a custom F/L) meets k = 2, 4, 8
(and k > L block chaining), every input format and both accumulator formats, with
pipelined and combinational cores, random input gaps and output back-pressure. Stimulus: the
format-generic directed rows of ``sim.models_tensor.directed_dot_rows``, then
``golden.dot.random_dot_operands`` (uniform bit patterns, exponent-clustered products,
c ~ -(sum) cancellation, pairwise cancelling products, the bottom of the range, random
exponents, zeros) with 5 % special values (zeros, subnormal/normal extremes, inf, NaN, sNaN).
Directed cases: the volta discriminating cases of NUMERICS.md section 2, each derived by hand.
Deep runs (>= 20k vectors per configuration) are in tests/sim/test_tensor_verilator.py.
"""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest

from tensorforge.golden import dot as gd
from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32
from tensorforge.rtl.tensor import DotProductAdd
from tensorforge.sim.models_tensor import dot_operands

from test_tensor_support import check, dot_fields, run_stream, vector_count

CUSTOM = gd.Nvidia(F=20, L=3, e_zero=-140, out_rounding="rtz")

CASES = [
    # k, in_format, acc_format, semantics, stages, vectors (CI size)
    (2, FP16, FP32, "volta", 2, 200),
    (4, FP16, FP32, "volta", 3, 200),
    (8, FP16, FP32, "volta", 7, 150),           # two blocks of L=4, chained inside the pipeline
    (4, BF16, FP32, "volta", 0, 150),
    (8, BF16, FP32, "ampere", 4, 150),
    (4, TF32, FP32, "hopper", 5, 150),
    (4, FP16, FP16, "volta", 2, 150),           # volta_fp16: RNE, e_zero -19
    (8, FP16, FP16, "ampere", 7, 100),           # ampere_fp16, fully pipelined
    (4, FP8_E4M3, FP32, "hopper_fp8", 3, 150),  # 13 output fraction bits
    (8, FP8_E5M2, FP32, "hopper_fp8", 1, 100),
    (4, TF32, FP32, CUSTOM, 9, 100),            # custom F/L: blocks of 3 (a partial last block)
    (2, FP16, FP32, "exact", 0, 50),
    (4, FP16, FP32, "exact", 3, 40),
    (8, FP8_E5M2, FP32, "exact", 7, 30),
    (4, FP16, FP16, "exact", 2, 80),
    (2, FP16, FP32, "chain", 3, 60),
    (4, BF16, FP32, "chain", 28, 40),
    (3, FP8_E4M3, FP16, "chain", 0, 20),
]


def _ids(case):
    k, fi, fa, sem, stages, _ = case
    return f"k{k}-{fi}-{fa}-{getattr(sem, 'tag', sem)}-s{stages}"


def _golden(a, b, c, fi, fa, sem, has_flags):
    d, flags = gd.dot_product_add(a, b, c, in_format=fi, acc_format=fa, semantics=sem)
    return {"d": d, "flags": flags} if has_flags else {"d": d}


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_dot_matches_golden(case):
    k, fi, fa, sem, stages, count = case
    seed = sum(map(ord, _ids(case)))
    rng = np.random.default_rng(seed)
    n = vector_count(count)
    a, b, c = dot_operands(rng, n, k, fi, fa)      # the directed rows, then random_dot_operands rows
    core = DotProductAdd(k=k, in_format=fi, acc_format=fa, semantics=sem, stages=stages)
    assert core.latency == stages and core.initiation_interval == 1
    inputs = dot_fields(a, b, c)
    got = run_stream(core, inputs, seed=seed)
    check(got, _golden(a, b, c, fi, fa, core.semantics, core.has_flags), inputs, seed=seed, label=_ids(case))


def test_back_pressure_heavy_and_full_throughput():
    """Heavy back-pressure (ready 30 %) and then full throughput (valid and ready always high)."""
    fi, fa = FP16, FP32
    rng = np.random.default_rng(7)
    a, b, c = gd.random_dot_operands(rng, 60, 4, fi, fa)
    inputs = dot_fields(a, b, c)
    expected = _golden(a, b, c, fi, fa, "volta", False)
    for p_valid, p_ready in ((1.0, 0.3), (1.0, 1.0)):
        core = DotProductAdd(k=4, in_format=fi, acc_format=fa, semantics="volta", stages=5)
        check(run_stream(core, inputs, seed=7, p_valid=p_valid, p_ready=p_ready), expected, inputs,
              seed=7, label=f"volta valid {p_valid} ready {p_ready}")


# -- directed cases (NUMERICS.md section 2, volta: F=23, L=4, e_zero=-131, RTZ) ----------------
def _h(x) -> int:
    """FP16 bits of an exactly representable value."""
    return int(np.array(x, dtype=np.float16).view(np.uint16))


def _f(x) -> int:
    """FP32 bits of an exactly representable value."""
    v = Fraction(x)
    bits = struct.unpack("<I", struct.pack("<f", float(v)))[0]
    assert Fraction(struct.unpack("<f", struct.pack("<I", bits))[0]) == v, x
    return bits


ONE, TWO = _h(1.0), _h(2.0)
#: (name, a[4], b[4], c, expected d, why)
VOLTA_DIRECTED = [
    ("c loses its last bit", [ONE, 0, 0, 0], [ONE, 0, 0, 0], _f(-(1 - Fraction(1, 2**24))), _f(Fraction(1, 2**23)),
     "E = 0: c = -(1-2^-24) truncated to 23 fraction bits is -(1-2^-23); 1 - (1-2^-23) = 2^-23 "
     "(exact would give 2^-24)"),
    ("product truncated away", [ONE] * 4, [TWO, 0x0003, 0, 0], 0, _f(2),
     "b1 = 3*2^-24 (= 2^-23 + 2^-24, FP16 subnormal); E = 1 (product 2), grid 2^-22: the second "
     "product is truncated to 0, d = 2 exactly (exact: 2 + 2^-22)"),
    ("carry headroom: exactly 8", [ONE] * 4, [TWO] * 4, 0, _f(8),
     "four products of 2 at E = 1 sum to 4 * 2^1 = 2^3: two carry bits above the [1, 2) units place"),
    ("carry headroom: four products near 4", [0x3FFF] * 4, [0x3FFF] * 4, 0,
     _f(4 * (2 - Fraction(1, 1024)) ** 2),
     "a = b = 2 - 2^-10: each product 4 - 2^-8 + 2^-20 (|s| < 4, not renormalized, E = 0) is exact "
     "on the 2^-23 grid; the sum 16 - 2^-6 + 2^-18 < 16 needs 4 integer bits and is representable"),
    ("non-monotonic, c below 2", [0x0006] * 4, [ONE] * 4, _f(2 - Fraction(1, 2**23)), _f(2 + 5 * Fraction(1, 2**22)),
     "products 3*2^-23 (FP16 subnormal 6*2^-24), E = 0: everything exact, sum 2 + 11*2^-23, "
     "RTZ to the 2^-22 grid of [2, 4): 2 + 5*2^-22"),
    ("non-monotonic, c raised to 2", [0x0006] * 4, [ONE] * 4, _f(2), _f(2 + 4 * Fraction(1, 2**22)),
     "c = 2 raises E to 1: each product 1.5*2^-22 truncates to 2^-22, d = 2 + 4*2^-22 -- "
     "smaller than with the smaller c above"),
    ("zero result is +0", [ONE, _h(-1.0), 0, 0], [ONE, ONE, 0, 0], 0x80000000, 0,
     "1 - 1 + (-0) = 0: every zero result is +0 in the nvidia family"),
    ("NaN pattern", [0x7E00, 0, 0, 0], [ONE, 0, 0, 0], 0, 0x7FFFFFFF, "a NaN input gives 0x7FFFFFFF"),
    ("inf - inf", [0x7C00, 0xFC00, 0, 0], [ONE, ONE, 0, 0], 0, 0x7FFFFFFF, "inf - inf is NaN"),
    ("0 * inf", [0x7C00, 0, 0, 0], [0, 0, 0, 0], 0, 0x7FFFFFFF, "0 * inf is NaN"),
    ("inf propagates", [0xFC00, ONE, 0, 0], [ONE, ONE, 0, 0], _f(1), 0xFF800000, "-inf + finite = -inf"),
    ("huge c swallows products", [0x7BFF] * 4, [0x7BFF] * 4, 0x7F7FFFFF, 0x7F7FFFFF,
     "E = 127: 4 * 65504^2 < 2^34 lies entirely below the 2^104 grid and truncates to 0"),
    ("subnormal c kept", [0, 0, 0, 0], [0, 0, 0, 0], 0x00000001, 0x00000001,
     "zero products at e_zero = -131 < -126: the smallest FP32 subnormal c survives (F = 23 "
     "below 2^-126 reaches 2^-149)"),
]


def test_volta_directed_cases():
    names = [case[0] for case in VOLTA_DIRECTED]
    a = np.array([case[1] for case in VOLTA_DIRECTED], dtype=np.uint64)
    b = np.array([case[2] for case in VOLTA_DIRECTED], dtype=np.uint64)
    c = np.array([case[3] for case in VOLTA_DIRECTED], dtype=np.uint64)
    want = np.array([case[4] for case in VOLTA_DIRECTED], dtype=np.uint64)
    # the golden model agrees with the hand derivations
    gold, _ = gd.dot_product_add(a, b, c, in_format=FP16, acc_format=FP32, semantics="volta")
    for name, g, w in zip(names, gold, want):
        assert int(g) == int(w), f"golden {name}: {int(g):#010x} != {int(w):#010x}"
    # non-monotonicity: c went up, d went down
    up, down = names.index("non-monotonic, c below 2"), names.index("non-monotonic, c raised to 2")
    assert c[down] > c[up] and want[down] < want[up]
    for stages in (0, 4):
        core = DotProductAdd(k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=stages)
        inputs = dot_fields(a, b, c)
        check(run_stream(core, inputs, seed=stages), {"d": want}, inputs, seed=stages,
              label=f"volta directed s{stages}")


def test_volta_overflow_gives_inf():
    """BF16 products can overflow FP32: 2^127 * 2 = 2^128 gives +inf even though the rounding is
    RTZ (which alone would give max finite); -2^127 * 2 - max gives -inf."""
    a = np.array([[0x7F00, 0, 0, 0], [0xFF00, 0, 0, 0]], dtype=np.uint64)
    b = np.array([[0x4000, 0, 0, 0], [0x4000, 0, 0, 0]], dtype=np.uint64)
    c = np.array([0, 0xFF7FFFFF], dtype=np.uint64)
    want = np.array([0x7F800000, 0xFF800000], dtype=np.uint64)
    gold, _ = gd.dot_product_add(a, b, c, in_format=BF16, acc_format=FP32, semantics="volta")
    assert [int(x) for x in gold] == [int(x) for x in want]
    core = DotProductAdd(k=4, in_format=BF16, acc_format=FP32, semantics="volta", stages=1)
    inputs = dot_fields(a, b, c)
    check(run_stream(core, inputs, seed=5), {"d": want}, inputs, seed=5, label="volta overflow")


def test_exact_directed_cases():
    """exact: the same inputs round once, correctly: 2^-24, 2 + 2^-22 (inexact), and the
    sign of an exact zero (-0 only when every product and c are -0; 1 - 1 + (-0) = +0)."""
    a = np.array([[ONE, 0, 0, 0], [ONE] * 4, [_h(-1.0), 0x8000, 0x8000, 0x8000], [ONE, _h(-1.0), 0, 0]],
                 dtype=np.uint64)
    b = np.array([[ONE, 0, 0, 0], [TWO, 0x0003, 0, 0], [0, ONE, ONE, ONE], [ONE, ONE, 0, 0]], dtype=np.uint64)
    c = np.array([_f(-(1 - Fraction(1, 2**24))), 0, 0x80000000, 0x80000000], dtype=np.uint64)
    want = np.array([_f(Fraction(1, 2**24)), _f(2 + Fraction(1, 2**22)), 0x80000000, 0], dtype=np.uint64)
    flags = np.array([0, 1, 0, 0], dtype=np.uint64)      # 2 + 3*2^-24 rounds (inexact)
    gold, gflags = gd.dot_product_add(a, b, c, in_format=FP16, acc_format=FP32, semantics="exact")
    assert [int(x) for x in gold] == [int(x) for x in want] and [int(x) for x in gflags] == [int(x) for x in flags]
    core = DotProductAdd(k=4, in_format=FP16, acc_format=FP32, semantics="exact", stages=2)
    inputs = dot_fields(a, b, c)
    check(run_stream(core, inputs, seed=3), {"d": want, "flags": flags}, inputs, seed=3, label="exact directed")


def test_exact_wide_cancellation_bf16():
    """BF16 x BF16 + FP32 exact (the ~530-bit window): 2^100 - 2^100 + 2^-100 needs every bit
    down to 2^-100 (only a full-range window gets it), then random rows."""
    def bf(x):
        return int(np.array([x], dtype=np.float32).view(np.uint32)[0] >> 16)
    a = np.array([[bf(2.0**50), bf(2.0**-50)], [bf(2.0**-60), bf(2.0**-70)]], dtype=np.uint64)
    b = np.array([[bf(2.0**50), bf(2.0**-50)], [bf(-(2.0**-60)), bf(2.0**-79)]], dtype=np.uint64)
    c = np.array([_f(-Fraction(2**100)), _f(Fraction(1, 2**120))], dtype=np.uint64)
    want = [_f(Fraction(1, 2**100)), _f(Fraction(1, 2**149))]     # 2^-120 - 2^-120 + 2^-149
    rng = np.random.default_rng(11)
    ra, rb, rc = gd.random_dot_operands(rng, vector_count(16), 2, BF16, FP32, specials=0.05)
    a, b, c = np.concatenate([a, ra]), np.concatenate([b, rb]), np.concatenate([c, rc])
    expected = _golden(a, b, c, BF16, FP32, "exact", True)
    assert [int(x) for x in expected["d"][:2]] == want
    core = DotProductAdd(k=2, in_format=BF16, acc_format=FP32, semantics="exact", stages=2)
    inputs = dot_fields(a, b, c)
    check(run_stream(core, inputs, seed=11), expected, inputs, seed=11, label="exact bf16")


# -- parameter validation -----------------------------------------------------------------------
BAD = [
    (dict(k=0), ValueError, "k must be an integer between 1 and 64, not 0"),
    (dict(k=65), ValueError, "k must be an integer between 1 and 64, not 65"),
    (dict(k=True), ValueError, "k must be an integer between 1 and 64, not True"),
    (dict(in_format=FP32), ValueError, "in_format must be one of e5m10, e8m7, tf32, e4m3fn, e5m2, not e8m23"),
    (dict(in_format="fp16"), TypeError, "in_format must be a FloatFormat"),
    (dict(acc_format=BF16), ValueError, "acc_format must be one of e8m23, e5m10, not e8m7"),
    (dict(semantics="turing"), ValueError, "semantics must be one of chain, exact, volta"),
    (dict(semantics=3), TypeError, "semantics must be a name (chain, exact, volta, ampere, hopper, hopper_fp8)"),
    (dict(semantics="chain", in_format=BF16, acc_format=FP16), ValueError,
     "acc_format e5m10 must have at least the exponent and fraction bits of in_format e8m7"),
    (dict(semantics="hopper_fp8", acc_format=FP16), ValueError,
     "out_frac_bits of hopper_fp8 must be at most the 10 fraction bits of acc_format e5m10, not 13"),
    (dict(stages=8), ValueError, "stages must be an integer between 0 and 7 for k=4 volta semantics, not 8"),
    (dict(stages=-1), ValueError, "stages must be an integer between 0 and 7"),
    (dict(semantics="chain", stages=29), ValueError,
     "stages must be an integer between 0 and 28 for k=4 chain semantics, not 29"),
    (dict(k=8, stages=14), ValueError, "stages must be an integer between 0 and 13 for k=8 volta semantics"),
]


@pytest.mark.parametrize("override,exc,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_parameters_are_rejected(override, exc, message):
    params = dict(k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=3)
    params.update(override)
    with pytest.raises(exc) as info:
        DotProductAdd(**params)
    assert str(info.value).startswith(message), str(info.value)


def _unused(core):
    core._MustUse__silence = True        # built only to read its properties
    return core


def test_properties_and_fields():
    core = _unused(DotProductAdd(k=8, in_format=FP16, acc_format=FP32, semantics="volta", stages=13))
    assert core.max_stages == 13 and core.blocks == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert core.semantics == gd.VOLTA and not core.has_flags
    assert core.field_formats == {"i": {"a": FP16, "b": FP16, "c": FP32}, "o": {"d": FP32}}
    assert _unused(DotProductAdd(k=4, in_format=FP16, acc_format=FP16, semantics="volta",
                                 stages=1)).semantics == gd.VOLTA_FP16
    chain = _unused(DotProductAdd(k=4, in_format=FP16, semantics="chain", stages=6))
    assert chain.max_stages == 28 and chain.chain_stages() == [1, 1, 2, 2] and chain.has_flags
