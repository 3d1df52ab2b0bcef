"""DFP-16 recipe (Das et al. 2018): conversion, LZC down-conversion, GEMM and add, against exact oracles."""

from fractions import Fraction

import numpy as np
import pytest

from tensorforge.golden.dfp16 import (DFP16, DFP16Manager, dfp_add, dfp_down_convert_int, dfp_from_float,
                                      dfp_gemm, dfp_shift)
from tensorforge.golden.flex import FlexTensor


def oracle(acc: int, shift: int):
    r = round(Fraction(acc) / Fraction(2) ** shift)
    return min(max(r, -32768), 32767), not -32768 <= r <= 32767


def test_format_and_conversion_rule():
    assert str(DFP16) == "flex16+8" and DFP16.exp_min == -128
    res = dfp_from_float([3.0, 1.0])            # E(3) = 1 -> E_s = 1 - 14 = -13
    assert res.tensor.exp == -13 and res.tensor.man.tolist() == [24576, 8192] and res.tensor.fmt == DFP16
    res = dfp_from_float([1e-20])               # far below flex16+5's range, fine for DFP-16's 8-bit exponent
    assert res.tensor.exp == -67 - 14 and res.gamma >= 1 << 14


@pytest.mark.parametrize("acc, shift, out, overflow", [
    ([1000000, -5], 5, [31250, 0], [False, False]),        # bitlen(1e6) = 20 -> shift 20 - 15 = 5
    ([0, 0], -15, [0, 0], [False, False]),                 # all-zero block: LZC formula, no special case
    ([65535, -3], 1, [32767, -2], [True, False]),          # 32767.5 rounds up to 2**15: saturates
    ([16383], -1, [32766], [False]),                       # small block: exact left shift to full scale
    ([-32768], 1, [-16384], [False]),                      # bitlen(32768) = 16
    ([-(1 << 40) - 1], 26, [-16384], [False]),
])
def test_down_conversion_shift_from_leading_zeros(acc, shift, out, overflow):
    got, sh, ovf = dfp_down_convert_int(np.array(acc))
    assert sh == shift == dfp_shift(np.array(acc))
    assert got.tolist() == out and ovf.tolist() == overflow


def test_gemm_hand_case():
    a = dfp_from_float(np.array([[1.0, 2.0], [3.0, -4.0]])).tensor     # exp -12 (E(4) = 2)
    res = dfp_gemm(a, a)
    # [[1,2],[3,-4]]^2 = [[7,-6],[-9,22]]: max 22 -> E = 4 -> exponent 4 - 14 = -10, all exact
    assert res.tensor.exp == -10 and res.tensor.to_float().tolist() == [[7.0, -6.0], [-9.0, 22.0]]
    assert 1 << 14 <= res.gamma < 1 << 15


def test_gemm_random_against_oracle():
    seed = 61
    rng = np.random.default_rng(seed)
    for i in range(30):
        a = dfp_from_float(rng.normal(size=(4, 9)) * 10.0 ** rng.uniform(-5, 5)).tensor
        b = dfp_from_float(rng.normal(size=(9, 3)) * 10.0 ** rng.uniform(-5, 5)).tensor
        res = dfp_gemm(a, b)
        acc = [[sum(int(a.man[r, t]) * int(b.man[t, c]) for t in range(9)) for c in range(3)] for r in range(4)]
        m = max(abs(v) for row in acc for v in row)
        shift = m.bit_length() - 15
        assert res.tensor.exp == a.exp + b.exp + shift, (seed, i)
        got = [[(int(res.tensor.man[r, c]), bool(res.overflow[r, c])) for c in range(3)] for r in range(4)]
        assert got == [[oracle(v, shift) for v in row] for row in acc], (seed, i)


def test_add_aligns_to_the_larger_exponent():
    a = FlexTensor([16384, -100], -14, DFP16)        # [1.0, -0.006103515625]
    b = FlexTensor([16384, 3], -20, DFP16)           # [2**-6, 3 * 2**-20]
    res = dfp_add(a, b)
    # exact sums in units of 2**-20: [2**20 + 2**14, -6400 + 3]; max bitlen 21 -> shift 6 -> exponent -14
    assert res.tensor.exp == -14
    assert res.tensor.man.tolist() == [16384 + 256, round(Fraction(-6397, 64))]
    trunc = dfp_add(a, b, guard_bits=0)              # bare >>: 3 >> 6 = 0 and 16384 >> 6 = 256
    assert trunc.tensor.man.tolist() == [16640, -100]
    sub = dfp_add(a, a, subtract=True)               # zero block
    assert not sub.tensor.man.any()


def test_manager_interface_records_trajectories():
    m = DFP16Manager()
    x = m.convert("x", np.array([[0.5, -0.25]]))
    w = m.convert("w", np.array([[2.0], [1.0]]))
    y = m.gemm("y", x, w)                            # 0.5*2 - 0.25 = 0.75 -> E = -1 -> exponent -15
    assert y.exp == -15 and y.man.tolist() == [[24576]]
    w2 = m.add("w", w, w, subtract=True, b_exp_offset=-1)     # w - w/2 = [1, 0.5]
    assert w2.to_float().tolist() == [[1.0], [0.5]]
    assert m.trajectory("w") == [w.exp, w2.exp] and m.trajectory("y") == [-15]
    assert m.overflow_count("y") == 0 and m.clamp_count("y") == 0
    with pytest.raises(ValueError, match="rounding must be one of rne, stochastic, not 'up'"):
        DFP16Manager(rounding="up")
