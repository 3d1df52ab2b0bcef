"""Flexpoint golden model: hand-checked cases, a Fraction/big-int oracle, exhaustive small formats, properties.

Seeds are fixed and printed in assertion messages; TF_VECTORS scales the random sweeps.
"""

import os
from fractions import Fraction

import numpy as np
import pytest

from tensorforge.golden.flex import (FlexResult, FlexTensor, accumulator_bits, auto_exponent, flex_add,
                                     flex_add_int, flex_dot, flex_dot_int, flex_from_float, flex_gemm,
                                     flex_gemm_int, max_abs, round_shift)
from tensorforge.golden.formats import FLEX16_5, FlexFormat

VECTORS = int(os.environ.get("TF_VECTORS", "2000"))


# ---------------------------------------------------------------------------------------------------------
# independent oracle: exact rationals and Python's round-half-even on Fractions
# ---------------------------------------------------------------------------------------------------------
def oracle_round(value: Fraction, man_bits: int):
    """(saturated mantissa, overflow) of an exact rational value in mantissa units."""
    r = round(value)                      # Fraction.__round__: ties to even
    lo, hi = -(1 << (man_bits - 1)), (1 << (man_bits - 1)) - 1
    return min(max(r, lo), hi), not lo <= r <= hi


def oracle_shift(acc: int, shift: int, man_bits: int):
    return oracle_round(Fraction(acc) / Fraction(2) ** shift, man_bits)


# ---------------------------------------------------------------------------------------------------------
# round_shift: the shared output conversion
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("acc, shift, expected", [
    (5, 1, 2),        # 2.5 -> 2 (tie to even)
    (7, 1, 4),        # 3.5 -> 4 (tie to even)
    (-5, 1, -2),      # -2.5 -> -2
    (-7, 1, -4),      # -3.5 -> -4
    (6, 2, 2),        # 1.5 -> 2
    (10, 2, 2),       # 2.5 -> 2
    (11, 2, 3),       # 2.75 -> 3
    (9, 2, 2),        # 2.25 -> 2
    (-3, 2, -1),      # -0.75 -> -1
    (-2, 2, 0),       # -0.5 -> 0 (tie to even)
    (-6, 2, -2),      # -1.5 -> -2
    (3, 0, 3),
    (3, -2, 12),      # left shift is exact
    (-3, -2, -12),
    (1, 100, 0),      # huge shift: 2**-100 -> 0
    (-1, 100, 0),
    ((1 << 99) + (1 << 98), 99, 2),   # 1.5 -> 2 with a 100-bit accumulator
])
def test_round_shift_hand_cases(acc, shift, expected):
    out, ovf = round_shift([acc], shift, 16)
    assert out.tolist() == [expected] and ovf.tolist() == [False]


@pytest.mark.parametrize("acc, shift, expected, overflow", [
    (32767, 0, 32767, False),     # the bounds themselves are not overflows
    (-32768, 0, -32768, False),
    (32768, 0, 32767, True),
    (-32769, 0, -32768, True),
    (65533, 1, 32766, False),     # 32766.5 -> 32766 (even)
    (65535, 1, 32767, True),      # 32767.5 rounds to 32768: saturates, flagged
    (-65537, 1, -32768, False),   # -32768.5 -> -32768 (even): fits
    (-65539, 1, -32768, True),    # -32769.5 -> -32770: saturates
    (16384, -1, 32767, True),     # 32768 after the left shift
    (-16384, -1, -32768, False),
    (1, -40, 32767, True),
    (-1, -40, -32768, True),
    (0, -40, 0, False),
])
def test_round_shift_saturation_and_flag(acc, shift, expected, overflow):
    out, ovf = round_shift(np.array([acc]), shift, 16)
    assert out.tolist() == [expected] and ovf.tolist() == [overflow]


@pytest.mark.parametrize("man_bits", [2, 4, 6])
def test_round_shift_exhaustive_small_formats(man_bits):
    accs = np.arange(-300, 301)
    for shift in range(-8, 12):
        exp = [oracle_shift(int(a), shift, man_bits) for a in accs]
        for sh in (shift, np.full(accs.shape, shift)):       # one shift per block, or one per element
            out, ovf = round_shift(accs, sh, man_bits)
            assert out.tolist() == [e[0] for e in exp], (man_bits, shift)
            assert ovf.tolist() == [e[1] for e in exp], (man_bits, shift)


def test_round_shift_random_wide_against_oracle():
    seed = 11
    rng = np.random.default_rng(seed)
    for i in range(max(VECTORS // 10, 50)):
        bits = int(rng.integers(1, 100))
        acc = int(rng.integers(0, 1 << min(bits, 62))) << max(bits - 62, 0)
        acc = -acc if rng.random() < 0.5 else acc
        shift = int(rng.integers(-20, bits + 5))
        man_bits = int(rng.choice([8, 16, 24, 32]))
        arr = np.array([acc], dtype=object)
        out, ovf = round_shift(arr, shift, man_bits)
        assert (int(out[0]), bool(ovf[0])) == oracle_shift(acc, shift, man_bits), (seed, i, acc, shift, man_bits)


def test_no_overflow_flag_means_no_saturation():
    """Property: wherever the flag is clear the result equals the unsaturated rounding; where it is set the
    unsaturated rounding lies outside the range and the result sits at the bound."""
    seed = 5
    rng = np.random.default_rng(seed)
    accs = rng.integers(-(1 << 40), 1 << 40, size=VECTORS)
    shifts = rng.integers(-4, 30, size=VECTORS)
    out, ovf = round_shift(accs, shifts, 16)
    for a, s, o, f in zip(accs.tolist(), shifts.tolist(), out.tolist(), ovf.tolist()):
        r = round(Fraction(a) / Fraction(2) ** s)
        if not f:
            assert o == r, (seed, a, s)
        else:
            assert not -32768 <= r <= 32767 and o == (32767 if r > 0 else -32768), (seed, a, s)


def test_stochastic_rounding_protocol_and_reproducibility():
    acc = np.array([5, -5, 8, -8, 13, 0, 1 << 40, -(1 << 40) - 3])
    shift = np.array([2, 2, 2, 2, 3, 5, 30, 30])
    out1, _ = round_shift(acc, shift, 16, rounding="stochastic", rng=np.random.default_rng(3))
    out2, _ = round_shift(acc, shift, 16, rounding="stochastic", rng=np.random.default_rng(3))
    assert np.array_equal(out1, out2)
    # the documented protocol: one rng.integers(0, 2**s) draw per element, round up iff u < remainder
    u = np.random.default_rng(3).integers(0, np.int64(1) << shift, dtype=np.int64)
    q = acc >> shift
    r = acc - (q << shift)
    assert out1.tolist() == (q + (u < r)).tolist()
    # exact multiples never move; results are always floor or floor + 1
    assert out1[2] == 2 and out1[3] == -2 and out1[5] == 0


def test_stochastic_rounding_is_unbiased_in_distribution():
    rng = np.random.default_rng(7)
    acc = np.full(20000, 5)          # 5 / 4 = 1.25: P(2) = 1/4
    out, _ = round_shift(acc, 2, 16, rounding="stochastic", rng=rng)
    assert set(out.tolist()) == {1, 2}
    frac = float(np.mean(out == 2))
    assert 0.23 < frac < 0.27        # binomial sd 0.003: a 6-sigma band


def test_round_shift_parameter_errors():
    with pytest.raises(ValueError, match="man_bits must be an integer between 2 and 32, not 33"):
        round_shift([1], 0, 33)
    with pytest.raises(ValueError, match="rounding must be one of rne, stochastic, not 'rtz'"):
        round_shift([1], 0, 16, rounding="rtz")
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        round_shift([1], 1, 16, rounding="stochastic", rng=3)
    with pytest.raises(ValueError, match="shift must be at most 62 for stochastic rounding, not 63"):
        round_shift([1], 63, 16, rounding="stochastic", rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="acc must be an integer array"):
        round_shift([1.5], 0, 16)


# ---------------------------------------------------------------------------------------------------------
# dot / GEMM
# ---------------------------------------------------------------------------------------------------------
def test_accumulator_bits():
    assert [accumulator_bits(16, k) for k in (1, 2, 3, 4, 5, 64, 65)] == [32, 33, 34, 34, 35, 38, 39]
    assert accumulator_bits(8, 16) == 20
    # the worst case fits: K products of (-2**15)**2 = 2**30 in a signed acc of accumulator_bits(16, K) bits
    for k in (1, 2, 3, 4, 64, 1000):
        assert k * (1 << 30) < 1 << (accumulator_bits(16, k) - 1)
    with pytest.raises(ValueError, match="k must be a positive integer, not 0"):
        accumulator_bits(16, 0)


@pytest.mark.parametrize("shift, expected", [(0, 32), (1, 16), (3, 4), (5, 1), (6, 0), (-1, 64), (7, 0)])
def test_flex_dot_int_hand_cases(shift, expected):
    # 1*4 + 2*5 + 3*6 = 32; 32/32 = 1, 32/64 = 0.5 -> 0 (even), 32/128 = 0.25 -> 0
    out, ovf = flex_dot_int([1, 2, 3], [4, 5, 6], shift)
    assert int(out) == expected and not bool(ovf)


def test_flex_dot_int_extremes():
    k = 4
    a = np.full(k, -32768)
    out, ovf = flex_dot_int(a, a, 17)          # 4 * 2**30 / 2**17 = 2**15: saturates
    assert int(out) == 32767 and bool(ovf)
    out, ovf = flex_dot_int(a, a, 18)          # 2**14: fits
    assert int(out) == 16384 and not bool(ovf)
    out, ovf = flex_dot_int(a, np.full(k, 32767), 17)   # -4 * 32768 * 32767 / 2**17 = -32767
    assert int(out) == -32767 and not bool(ovf)
    out, ovf = flex_dot_int(np.zeros(8, dtype=np.int64), np.full(8, 5), -20)
    assert int(out) == 0 and not bool(ovf)


def test_flex_gemm_int_against_big_int_oracle():
    seed = 21
    rng = np.random.default_rng(seed)
    n_cases = max(VECTORS // 200, 8)
    for case in range(n_cases):
        m, k, n = (int(v) for v in rng.integers(1, 9, size=3))
        k = int(rng.choice([1, 2, 7, 64, 300]))
        scale = int(rng.integers(1, 17))
        a = rng.integers(-(1 << (scale - 1)), 1 << (scale - 1), size=(m, k)) if scale > 1 else rng.integers(-1, 1, size=(m, k))
        b = rng.integers(-32768, 32768, size=(k, n))
        shift = int(rng.integers(-4, 40))
        out, ovf = flex_gemm_int(a, b, shift)
        for i in range(m):
            for j in range(n):
                acc = sum(int(a[i, t]) * int(b[t, j]) for t in range(k))
                assert (int(out[i, j]), bool(ovf[i, j])) == oracle_shift(acc, shift, 16), (seed, case, i, j)


def test_flex_gemm_int_per_element_shift_and_wide_formats():
    a = np.array([[3, -3], [1, 1]])
    b = np.array([[1, 0], [0, 1]])
    out, ovf = flex_gemm_int(a, b, np.array([[1, 1], [0, -14]]), man_bits=16)
    assert out.tolist() == [[2, -2], [1, 16384]] and not ovf.any()   # 1.5 -> 2, -1.5 -> -2
    # 32-bit mantissas: products reach 2**62 and the sum leaves int64; the result stays exact
    big = -(1 << 31)
    out, ovf = flex_gemm_int(np.array([[big, big]]), np.array([[big], [big]]), 32, man_bits=32)
    assert out.tolist() == [[(1 << 31) - 1]] and ovf.tolist() == [[True]]   # 2**63 / 2**32 = 2**31 saturates
    out, ovf = flex_gemm_int(np.array([[big, big]]), np.array([[big], [big]]), 33, man_bits=32)
    assert out.tolist() == [[1 << 30]] and not ovf.any()


def test_flex_dot_int_errors():
    with pytest.raises(ValueError, match=r"a_man must hold 16-bit two's-complement mantissas in \[-32768, 32767\], found 32768"):
        flex_dot_int([32768], [1], 0)
    with pytest.raises(ValueError, match="a_man and b_man must have the same K"):
        flex_dot_int([1, 2], [1, 2, 3], 0)
    with pytest.raises(ValueError, match="inner dimensions must agree"):
        flex_gemm_int(np.ones((2, 3), dtype=int), np.ones((2, 3), dtype=int), 0)


def test_max_abs_gamma():
    assert max_abs([3, -7, 5]) == 7
    assert max_abs([-32768, 1]) == 32768
    assert max_abs(np.zeros((0,), dtype=np.int64)) == 0
    assert max_abs([[0, 0], [0, 0]]) == 0


# ---------------------------------------------------------------------------------------------------------
# add with alignment
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, ae, be, oe, sub, guard, expected", [
    (100, 3, 0, -2, 0, False, None, 101),     # 100 + 0.75 -> 100.75 -> 101
    (100, 3, 0, -2, 0, False, 0, 100),        # truncating alignment: 3 >> 2 = 0
    (100, -3, 0, -2, 0, False, 0, 99),        # floor(-0.75) = -1
    (100, -3, 0, -2, 0, False, None, 99),     # 99.25 -> 99
    (100, 2, 0, -2, 0, False, None, 100),     # 100.5 -> 100 (even)
    (101, 2, 0, -2, 0, False, None, 102),     # 101.5 -> 102
    (3, 100, -2, 0, -2, False, None, 403),    # a has the smaller exponent; output at -2: 3 + 400
    (100, 50, 0, 0, 1, True, None, 25),       # (100 - 50) / 2
    (100, 50, 0, 0, 1, False, None, 75),
    (101, 50, 0, 0, 1, False, None, 76),      # 151 / 2 = 75.5 -> 76
    (5, 7, 3, 3, 3, False, 0, 12),            # equal exponents: nothing shifted
    (20000, 20000, 0, 0, 0, False, None, 32767),   # 40000 saturates (flag checked below)
])
def test_flex_add_int_hand_cases(a, b, ae, be, oe, sub, guard, expected):
    out, ovf = flex_add_int([a], [b], ae, be, oe, subtract=sub, guard_bits=guard)
    assert out.tolist() == [expected]
    assert ovf.tolist() == [a + b == 40000]


def test_flex_add_int_against_oracle():
    seed = 31
    rng = np.random.default_rng(seed)
    for i in range(max(VECTORS // 10, 40)):
        av = rng.integers(-32768, 32768, size=10)
        bv = rng.integers(-32768, 32768, size=10)
        ae, be = (int(v) for v in rng.integers(-16, 16, size=2))
        oe = int(rng.integers(-18, 18))
        sub = bool(rng.random() < 0.5)
        guard = [None, 0, 2, 40][int(rng.integers(0, 4))]
        out, ovf = flex_add_int(av, bv, ae, be, oe, subtract=sub, guard_bits=guard)
        d = abs(ae - be)
        g = d if guard is None else min(guard, d)
        hi_e = max(ae, be)
        for j, (a, b) in enumerate(zip(av.tolist(), bv.tolist())):
            # the documented alignment with Python ints (>> floors): operands in units of 2**(hi_e - g)
            a_al, b_al = (a << g, (b << g) >> d) if ae >= be else ((a << g) >> d, b << g)
            total = a_al - b_al if sub else a_al + b_al
            got = (int(out[j]), bool(ovf[j]))
            assert got == oracle_shift(total, oe - (hi_e - g), 16), (seed, i, a, b, ae, be, oe, sub, guard)
            if g == d:     # exact alignment: the rational sum, rounded once
                exact = Fraction(a) * Fraction(2) ** ae + (-1 if sub else 1) * Fraction(b) * Fraction(2) ** be
                assert got == oracle_round(exact / Fraction(2) ** oe, 16), (seed, i, a, b)


def test_flex_add_int_errors():
    with pytest.raises(ValueError, match="guard_bits must be None or a non-negative integer, not -1"):
        flex_add_int([1], [1], 0, 0, 0, guard_bits=-1)
    with pytest.raises(TypeError, match="out_exp must be an integer, not 1.0"):
        flex_add_int([1], [1], 0, 0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# FlexTensor and conversion
# ---------------------------------------------------------------------------------------------------------
def test_flex_tensor_validation_messages():
    with pytest.raises(ValueError, match="exp must be an integer between -16 and 15 for flex16\\+5, not 16"):
        FlexTensor([1], 16)
    with pytest.raises(TypeError, match="exp must be an integer, not 1.5"):
        FlexTensor([1], 1.5)
    with pytest.raises(ValueError, match=r"man must hold 16-bit two's-complement mantissas in \[-32768, 32767\], found -32769"):
        FlexTensor([-32769], 0)
    with pytest.raises(TypeError, match="fmt must be a FlexFormat"):
        FlexTensor([1], 0, fmt="flex16+5")
    with pytest.raises(TypeError, match="man must be an integer array, not float64"):
        FlexTensor([1.0], 0)
    t = FlexTensor([[1, -2], [3, 4]], -3)
    assert t.gamma == 4 and t.shape == (2, 2) and t.ulp == 0.125
    assert t.to_float().tolist() == [[0.125, -0.25], [0.375, 0.5]]
    assert t.T.man.tolist() == [[1, 3], [-2, 4]]
    with pytest.raises(ValueError):
        t.man[0, 0] = 5          # read-only


def test_from_float_hand_cases():
    res = flex_from_float([0.1, -0.5, 0.25])
    # max 0.5 = 2**-1 -> exponent -1 - 14 = -15; 0.1 * 2**15 = 3276.8 -> 3277
    assert res.tensor.exp == -15 and res.tensor.man.tolist() == [3277, -16384, 8192] and not res.any_overflow
    assert res.gamma == 16384
    # the largest magnitude lands in [2**14, 2**15)
    res = flex_from_float([3.0, 1.0])
    assert res.tensor.exp == 1 - 14 and res.tensor.man.tolist() == [24576, 8192]
    # ties to even at the given exponent
    res = flex_from_float(np.array([2.5, 3.5, -2.5, 0.5]) * 2.0 ** -10, exp=-10)
    assert res.tensor.man.tolist() == [2, 4, -2, 0]
    # the max rounds up to 2**15: saturates with the flag
    res = flex_from_float([0.99999])
    assert res.tensor.exp == -15 and res.tensor.man.tolist() == [32767] and res.overflow.tolist() == [True]
    res = flex_from_float([-0.99999])
    assert res.tensor.man.tolist() == [-32768] and not res.any_overflow   # -32768 is representable
    # a given exponent that is too small saturates
    res = flex_from_float([1000.0, -1000.0, 1.0], exp=-10)
    assert res.tensor.man.tolist() == [32767, -32768, 1024] and res.overflow.tolist() == [True, True, False]
    # all-zero tensor: exponent 0; tiny values clamp the exponent at the bottom of the range (underflow, no flag)
    assert flex_from_float(np.zeros(3)).tensor.exp == 0
    res = flex_from_float([1e-9, 3 * 2.0 ** -16])
    assert res.tensor.exp == -16 and res.tensor.man.tolist() == [0, 3] and not res.any_overflow
    assert auto_exponent([1e30]) == 15       # clamped at the top; values then saturate
    with pytest.raises(ValueError, match="x must be finite"):
        flex_from_float([np.nan])
    with pytest.raises(ValueError, match="exp must be an integer between -16 and 15 for flex16\\+5, not -17"):
        flex_from_float([1.0], exp=-17)


@pytest.mark.parametrize("fmt", [FLEX16_5, FlexFormat(8, 5), FlexFormat(24, 8)])
def test_from_float_round_trip_within_half_ulp(fmt):
    seed = 41
    rng = np.random.default_rng(seed)
    for i in range(max(VECTORS // 20, 20)):
        scale = 2.0 ** float(rng.uniform(-8, 8))
        x = rng.normal(size=int(rng.integers(1, 50))) * scale
        exp = None if i % 2 == 0 else int(rng.integers(fmt.exp_min, fmt.exp_max + 1))
        res = flex_from_float(x, fmt, exp)
        back = res.tensor.to_float()
        half = 2.0 ** (res.tensor.exp - 1)
        ok = ~res.overflow
        assert np.all(np.abs(back[ok] - x[ok]) <= half), (seed, i)
        # saturated elements sit at the bounds, beyond which the value lay
        assert np.all(np.isin(res.tensor.man[res.overflow], [fmt.man_min, fmt.man_max])), (seed, i)
        if exp is None and auto_exponent(x, fmt) == res.tensor.exp and fmt.exp_min < res.tensor.exp < fmt.exp_max:
            assert 1 << (fmt.man_bits - 2) <= res.gamma <= 1 << (fmt.man_bits - 1), (seed, i)


def test_from_float_stochastic():
    x = np.full(4000, 0.3 * 2.0 ** -10)       # 0.3 units at exponent -10
    res = flex_from_float(x, exp=-10, rounding="stochastic", rng=np.random.default_rng(2))
    assert set(res.tensor.man.tolist()) == {0, 1}
    assert 0.26 < float(np.mean(res.tensor.man)) < 0.34
    res2 = flex_from_float(x, exp=-10, rounding="stochastic", rng=np.random.default_rng(2))
    assert res2.tensor == res.tensor


# ---------------------------------------------------------------------------------------------------------
# tensor-level ops agree with the integer layer and with the real-valued result
# ---------------------------------------------------------------------------------------------------------
def test_flex_gemm_and_dot_tensor_level():
    a = FlexTensor([[1, 2], [3, 4]], -2)       # [[0.25, 0.5], [0.75, 1]]
    b = FlexTensor([[4, 0], [0, 8]], -3)       # [[0.5, 0], [0, 1]]
    res = flex_gemm(a, b, -4)
    assert isinstance(res, FlexResult) and res.tensor.exp == -4
    # exact product [[0.125, 0.5], [0.375, 1]] in units of 2**-4: [[2, 8], [6, 16]]
    assert res.tensor.man.tolist() == [[2, 8], [6, 16]] and not res.any_overflow and res.gamma == 16
    res = flex_gemm(a, b, 0)                   # units of 1: [[0.125, 0.5], [0.375, 1]] -> [[0, 0], [0, 1]]
    assert res.tensor.man.tolist() == [[0, 0], [0, 1]]
    d = flex_dot(FlexTensor([1, 2, 3], 0), FlexTensor([4, 5, 6], 2), 3)   # 32 * 4 / 8 = 16
    assert int(d.tensor.man) == 16
    with pytest.raises(ValueError, match="operands must share one FlexFormat, not flex16\\+5 and flex8\\+5"):
        flex_gemm(a, FlexTensor([[1]], 0, FlexFormat(8, 5)), 0)
    with pytest.raises(ValueError, match="out_exp must be an integer between -16 and 15"):
        flex_gemm(a, b, 99)


def test_flex_gemm_random_matches_exact_real_product():
    seed = 51
    rng = np.random.default_rng(seed)
    for i in range(max(VECTORS // 100, 10)):
        a = flex_from_float(rng.normal(size=(5, 7))).tensor
        b = flex_from_float(rng.normal(size=(7, 3)) * 0.01).tensor
        out_exp = int(rng.integers(-16, 16))
        res = flex_gemm(a, b, out_exp)
        exact = [[sum(Fraction(int(a.man[r, t]) * int(b.man[t, c])) for t in range(7))
                  * Fraction(2) ** (a.exp + b.exp - out_exp) for c in range(3)] for r in range(5)]
        got = [[(int(res.tensor.man[r, c]), bool(res.overflow[r, c])) for c in range(3)] for r in range(5)]
        assert got == [[oracle_round(v, 16) for v in row] for row in exact], (seed, i)


def test_flex_add_tensor_level_with_broadcast_and_offset():
    w = FlexTensor([[100, -100], [7, 0]], -4)
    g = FlexTensor([[16, 16], [-16, 3]], -4)
    # w - g * 2**-3 at exponent -4: [[98, -102], [9, -0.375 -> 0]]
    res = flex_add(w, g, -4, subtract=True, b_exp_offset=-3)
    assert res.tensor.man.tolist() == [[98, -102], [9, 0]]
    bias = FlexTensor([1, 2], -2)              # broadcast over rows: + [4, 8] units of 2**-4
    res = flex_add(w, bias, -4)
    assert res.tensor.man.tolist() == [[104, -92], [11, 8]]


def test_rne_equals_round_sticky_lsb_hardware_form():
    """The RTL form of the rule: increment the floor iff round & (sticky | lsb), from the two's-complement
    bits of the accumulator (round = bit s-1, sticky = OR of bits s-2..0, lsb = bit s)."""
    seed = 71
    rng = np.random.default_rng(seed)
    acc = rng.integers(-(1 << 45), 1 << 45, size=VECTORS)
    for s in (1, 2, 3, 7, 16, 31):
        out, _ = round_shift(acc, s, 32)
        for a, o in zip(acc.tolist(), out.tolist()):
            bits = a & ((1 << 64) - 1)                      # two's-complement bit pattern
            rnd = (bits >> (s - 1)) & 1
            sticky = (bits & ((1 << (s - 1)) - 1)) != 0
            lsb = (bits >> s) & 1
            expect = (a >> s) + (rnd & (sticky | lsb))
            expect = min(max(expect, -(1 << 31)), (1 << 31) - 1)
            assert o == expect, (seed, a, s)
