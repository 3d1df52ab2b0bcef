"""Tests of golden/dot.py: dot-product-add and MMA semantics (NUMERICS.md section 2).

Oracles, all independent of golden/dot.py and golden/fp.py:
- ``exact``: a scalar Python-Fraction reference (own decoder, own rounding).
- ``chain``: Berkeley SoftFloat (softfloatpy) sequential FMAs after exact conversion of the inputs.
- ``nvidia``: a scalar Fraction-based transcription of the 9 steps of NUMERICS.md, plus directed
  cases whose expected values are derived by hand in the comments.

Vector counts: ``TF_VECTORS`` (per configuration, default 1500); seeds are printed on failure.
"""

from __future__ import annotations

import functools
import os
import zlib
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
import softfloatpy as sf

from tensorforge.golden import dot
from tensorforge.golden.dot import (AMPERE, CHAIN, EXACT, HOPPER, HOPPER_FP8, VOLTA, VOLTA_FP16, Chain, Exact,
                                    Nvidia, dot_product_add, mma, parse_semantics, random_dot_operands)
from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32, FloatFormat

N_VECTORS = int(os.environ.get("TF_VECTORS", "1500"))


def _seed(key) -> int:
    """Stable per-configuration seed (Python's hash() is salted per process)."""
    return zlib.crc32(repr(key).encode()) % 10 ** 6


# =============================================================================================
# independent scalar references
# =============================================================================================
def ref_decode(bits, fmt):
    """-> (kind 'fin'|'inf'|'nan', sign, significand Fraction, exponent, is_snan); value of a
    finite input = (-1)^sign * sig * 2^exp with 1 <= sig < 2 (normal) or sig < 1 (subnormal,
    exp = emin)."""
    bits = (int(bits) & ((1 << fmt.storage_bits) - 1)) >> fmt.pad_bits
    m = bits & ((1 << fmt.man_bits) - 1)
    e = (bits >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    s = (bits >> (fmt.man_bits + fmt.exp_bits)) & 1
    top = (1 << fmt.exp_bits) - 1
    bias = (1 << (fmt.exp_bits - 1)) - 1
    if fmt.has_inf and e == top:
        if m == 0:
            return "inf", s, None, None, False
        return "nan", s, None, None, not (m >> (fmt.man_bits - 1)) & 1
    if not fmt.has_inf and e == top and m == (1 << fmt.man_bits) - 1:
        return "nan", s, None, None, False
    if e == 0:
        return "fin", s, Fraction(m, 1 << fmt.man_bits), 1 - bias, False
    return "fin", s, 1 + Fraction(m, 1 << fmt.man_bits), e - bias, False


@functools.lru_cache(maxsize=4096)
def pow2(e):
    return Fraction(2) ** e


def floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if pow2(e) > x:
        e -= 1
    if pow2(e + 1) <= x:
        e += 1
    return e


def ref_pack(fmt, sign, field_, man):
    return ((((sign << fmt.exp_bits) | field_) << fmt.man_bits) | man) << fmt.pad_bits


def ref_round(x: Fraction, fmt, mode, *, zero_sign=0, frac_bits=None):
    """Round a rational to ``fmt`` (mode 'rne' or 'rtz'); returns (bits, flags) with flags
    inexact=1, underflow=2 (tiny after rounding and inexact), overflow=4. RNE overflow -> inf,
    RTZ overflow -> max finite. ``frac_bits`` < man_bits keeps fewer fraction bits (quantum
    max(2^(e - frac_bits), smallest subnormal))."""
    neg = 1 if x < 0 else 0
    ax = abs(x)
    bias = (1 << (fmt.exp_bits - 1)) - 1
    emin = 1 - bias
    emax = ((1 << fmt.exp_bits) - 2) - bias
    if ax == 0:
        return ref_pack(fmt, zero_sign, 0, 0), 0
    p = fmt.man_bits if frac_bits is None else frac_bits

    def round_at(qexp):
        q = ax / pow2(qexp)
        n = q.numerator // q.denominator
        rem = q - n
        if mode == "rne" and (rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1)):
            n += 1
        return n, rem != 0

    e = floor_log2(ax)
    n, inexact = round_at(max(e - p, emin - fmt.man_bits))
    val = n * pow2(max(e - p, emin - fmt.man_bits))
    n_unb, _ = round_at(e - p)                      # unbounded exponent range, for tininess
    tiny = n_unb * pow2(e - p) < pow2(emin)
    flags = (1 if inexact else 0) | (2 if tiny and inexact else 0)
    if val >= pow2(emax + 1):
        if mode == "rne":
            return ref_pack(fmt, neg, (1 << fmt.exp_bits) - 1, 0), 1 | 4
        return ref_pack(fmt, neg, (1 << fmt.exp_bits) - 2, (1 << fmt.man_bits) - 1), 1 | 4
    if val == 0:
        return ref_pack(fmt, neg, 0, 0), flags
    e2 = floor_log2(val)
    if e2 < emin:
        man = val / pow2(emin - fmt.man_bits)
        assert man.denominator == 1
        return ref_pack(fmt, neg, 0, int(man)), flags
    man = val / pow2(e2 - fmt.man_bits) - (1 << fmt.man_bits)
    assert man.denominator == 1
    return ref_pack(fmt, neg, e2 + bias, int(man)), flags


def ref_specials(a_row, b_row, c, in_fmt, acc_fmt):
    """IEEE special-value analysis -> (kind 'nan'|'inf'|'fin', inf_sign, invalid, decoded)."""
    nan = False
    invalid = False
    any_nan = False
    infs = set()
    dec = []
    for x, y in zip(a_row, b_row):
        ka, sa, ma, ea, sna = ref_decode(x, in_fmt)
        kb, sb, mb, eb, snb = ref_decode(y, in_fmt)
        dec.append((ka, sa, ma, ea, kb, sb, mb, eb))
        invalid |= sna or snb
        if ka == "nan" or kb == "nan":
            nan = any_nan = True
        elif (ka == "inf" and kb == "fin" and mb == 0) or (kb == "inf" and ka == "fin" and ma == 0):
            nan = invalid = True
        elif ka == "inf" or kb == "inf":
            infs.add(sa ^ sb)
    kc, sc, mc, ec, snc = ref_decode(c, acc_fmt)
    invalid |= snc
    if kc == "nan":
        nan = any_nan = True
    elif kc == "inf":
        infs.add(sc)
    if len(infs) == 2:
        nan = True
        if not any_nan:
            invalid = True
    if nan:
        return "nan", 0, invalid, dec, (kc, sc, mc, ec)
    if infs:
        return "inf", infs.pop(), invalid, dec, (kc, sc, mc, ec)
    return "fin", 0, invalid, dec, (kc, sc, mc, ec)


def inf_bits(fmt, sign):
    return ref_pack(fmt, sign, (1 << fmt.exp_bits) - 1, 0)


def ref_exact(a_row, b_row, c, in_fmt, acc_fmt):
    """Correctly rounded (RNE) exact sum with IEEE special rules -> (bits, flags)."""
    kind, isign, invalid, dec, (kc, sc, mc, ec) = ref_specials(a_row, b_row, c, in_fmt, acc_fmt)
    inv = 16 if invalid else 0
    if kind == "nan":
        return acc_fmt.canonical_nan, inv
    if kind == "inf":
        return inf_bits(acc_fmt, isign), inv
    total = Fraction(0)
    all_neg_zero = True
    for (ka, sa, ma, ea, kb, sb, mb, eb) in dec:
        p = ma * mb * pow2(ea + eb)
        total += -p if sa ^ sb else p
        all_neg_zero &= p == 0 and (sa ^ sb) == 1
    cv = mc * pow2(ec)
    total += -cv if sc else cv
    all_neg_zero &= cv == 0 and sc == 1
    bits, flags = ref_round(total, acc_fmt, "rne", zero_sign=1 if all_neg_zero else 0)
    return bits, flags | inv


def ref_nvidia(a_row, b_row, c, in_fmt, acc_fmt, sem):
    """Scalar transcription of NUMERICS.md section 2 steps 1-9 (Fractions) -> bits."""
    nan_bits = ref_pack(acc_fmt, 0, (1 << acc_fmt.exp_bits) - 1, (1 << acc_fmt.man_bits) - 1)
    for start in range(0, len(a_row), sem.L):                        # step 9
        ab, bb = a_row[start:start + sem.L], b_row[start:start + sem.L]
        kind, isign, _, dec, (kc, sc, mc, ec) = ref_specials(ab, bb, c, in_fmt, acc_fmt)
        if kind == "nan":                                            # step 8
            c = nan_bits
            continue
        if kind == "inf":
            c = inf_bits(acc_fmt, isign)
            continue
        terms = []                                                   # (signed significand, exponent)
        for (ka, sa, ma, ea, kb, sb, mb, eb) in dec:                 # steps 1-2
            s = ma * mb
            terms.append((-s if sa ^ sb else s, ea + eb))
        terms.append((-mc if sc else mc, ec))
        if len(ab) < sem.L:                                          # unused lanes: zero products
            terms.append((Fraction(0), 0))                           # (one stands for all: same max)
        terms = [(s, sem.e_zero if s == 0 else e) for s, e in terms]  # step 3
        E = max(e for _, e in terms)                                 # step 4
        total = 0
        for s, e in terms:                                           # steps 5-6
            scaled = abs(s) * pow2(e - E + sem.F)
            t = scaled.numerator // scaled.denominator               # truncation of the magnitude
            total += -t if s < 0 else t
        value = Fraction(total) * pow2(E - sem.F)
        if value == 0:
            c = 0                                                    # +0
            continue
        if sem.out_rounding == "rtz":                                # step 7
            bits, flags = ref_round(value, acc_fmt, "rtz", frac_bits=sem.out_frac_bits)
            if flags & 4:
                bits = inf_bits(acc_fmt, 1 if value < 0 else 0)      # overflow -> inf, not max finite
        else:
            bits, _ = ref_round(value, acc_fmt, "rne")
        if (bits >> acc_fmt.pad_bits) & ((1 << (acc_fmt.exp_bits + acc_fmt.man_bits)) - 1) == 0:
            bits = 0                                                 # rounded to zero -> +0
        c = bits
    return c


# -- SoftFloat sequential FMAs ----------------------------------------------------------------
def _sf_from(fmt, bits):
    if fmt == FP16:
        return sf.Float16.from_bytes(int(bits).to_bytes(2, "big"))
    return sf.Float32.from_bytes(int(bits).to_bytes(4, "big"))


def _sf_in_as(acc_fmt, in_fmt, bits):
    """Input bits -> SoftFloat value of the accumulator type, converted exactly."""
    bits = int(bits)
    if acc_fmt == FP32:
        if in_fmt == FP16:
            return sf.f16_to_f32(sf.Float16.from_bytes(bits.to_bytes(2, "big")))
        if in_fmt == BF16:
            return sf.bf16_to_f32(sf.BFloat16.from_bytes(bits.to_bytes(2, "big")))
        if in_fmt == TF32:
            return sf.Float32.from_bytes((bits & 0xFFFFE000).to_bytes(4, "big"))
        if in_fmt == FP8_E5M2:   # e5m2 is the top byte of FP16 (keeps signaling NaNs signaling)
            return sf.f16_to_f32(sf.Float16.from_bytes((bits << 8).to_bytes(2, "big")))
        assert in_fmt == FP8_E4M3  # no infinities, no signaling NaN: ml_dtypes converts exactly
        f32_ = np.array([bits], dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32).view(np.uint32)[0]
        return sf.Float32.from_bytes(int(f32_).to_bytes(4, "big"))
    assert acc_fmt == FP16
    if in_fmt == FP16:
        return sf.Float16.from_bytes(bits.to_bytes(2, "big"))
    assert in_fmt == FP8_E5M2
    return sf.Float16.from_bytes((bits << 8).to_bytes(2, "big"))


def sf_chain(a_row, b_row, c, in_fmt, acc_fmt):
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)
    sf.set_tininess_mode(sf.TininessMode.AFTER_ROUNDING)
    sf.set_exception_flags(0)
    fma = sf.f32_mul_add if acc_fmt == FP32 else sf.f16_mul_add
    acc = _sf_from(acc_fmt, c)
    for x, y in zip(a_row, b_row):
        acc = fma(_sf_in_as(acc_fmt, in_fmt, x), _sf_in_as(acc_fmt, in_fmt, y), acc)
    return int.from_bytes(acc.to_bytes(), "big"), int(sf.get_exception_flags())


# =============================================================================================
# helpers
# =============================================================================================
def f32(x) -> int:
    """FP32 bits of an exactly representable rational (checked)."""
    v = np.float32(float(Fraction(x)))
    assert Fraction(float(v)) == Fraction(x), f"{x} is not an FP32 value"
    return int(v.view(np.uint32))


def f16(x) -> int:
    v = np.float16(float(Fraction(x)))
    assert Fraction(float(v)) == Fraction(x), f"{x} is not an FP16 value"
    return int(v.view(np.uint16))


def one(a, b, c, sem, in_format=FP16, acc_format=FP32):
    d, _ = dot_product_add(np.array([a], dtype=np.uint64), np.array([b], dtype=np.uint64),
                           np.array([c], dtype=np.uint64), in_format=in_format, acc_format=acc_format,
                           semantics=sem)
    return int(d[0])


def compare_rows(seed, got, want, a, b, c, what):
    bad = [i for i in range(len(want)) if int(got[i]) != int(want[i])]
    if bad:
        i = bad[0]
        pytest.fail(f"{what}: {len(bad)}/{len(want)} mismatches (seed {seed}); first row {i}: "
                    f"a={[hex(int(x)) for x in a[i]]} b={[hex(int(x)) for x in b[i]]} c={hex(int(c[i]))} "
                    f"got {int(got[i]):#x} want {int(want[i]):#x}")


U23, U24 = pow2(-23), pow2(-24)


# =============================================================================================
# semantics objects and parsing
# =============================================================================================
def test_presets_parameters():
    assert (VOLTA.L, VOLTA.F, VOLTA.e_zero, VOLTA.out_rounding) == (4, 23, -131, "rtz")
    assert (AMPERE.L, AMPERE.F, AMPERE.e_zero) == (8, 24, -132)
    assert (HOPPER.L, HOPPER.F, HOPPER.e_zero) == (16, 25, -133)
    assert (HOPPER_FP8.L, HOPPER_FP8.F, HOPPER_FP8.e_zero, HOPPER_FP8.out_frac_bits) == (32, 13, -133, 13)
    assert [dot.SEMANTICS_PRESETS[n].e_zero for n in ("volta_fp16", "ampere_fp16", "hopper_fp16")] == [-19, -20, -21]
    assert all(dot.SEMANTICS_PRESETS[n].out_rounding == "rne" for n in ("volta_fp16", "ampere_fp16", "hopper_fp16"))
    assert str(VOLTA) == "volta" and str(CHAIN) == "chain" and str(EXACT) == "exact"
    assert Nvidia(23, 4, -131) == VOLTA          # the name is not part of equality
    assert Nvidia(24, 4, -131).tag == "nvf24l4zm131rtz"


def test_parse_semantics():
    assert parse_semantics("chain") is CHAIN and parse_semantics("EXACT") is EXACT
    assert parse_semantics("volta") is VOLTA
    assert parse_semantics("volta", acc_format=FP16) is VOLTA_FP16
    assert parse_semantics("hopper", acc_format=FP16).e_zero == -21
    assert parse_semantics("ampere", acc_format=FP32) is AMPERE
    s = parse_semantics("volta", F=24)
    assert (s.F, s.L, s.e_zero, s.out_rounding, s.name) == (24, 4, -131, "rtz", None)
    assert parse_semantics("hopper_fp8", L=16) == Nvidia(13, 16, -133, "rtz", 13)
    assert parse_semantics(VOLTA) is VOLTA
    assert parse_semantics("volta", F=23, L=4) is VOLTA          # overrides equal to the preset keep its name


@pytest.mark.parametrize("kwargs, message", [
    (dict(F=0, L=4, e_zero=-131), "F must be an integer between 1 and 48, not 0"),
    (dict(F=49, L=4, e_zero=-131), "F must be an integer between 1 and 48, not 49"),
    (dict(F=23, L=0, e_zero=-131), "L must be an integer between 1 and 256, not 0"),
    (dict(F=23, L=4.0, e_zero=-131), "L must be an integer between 1 and 256, not 4.0"),
    (dict(F=23, L=4, e_zero="x"), "e_zero must be an integer between"),
    (dict(F=23, L=4, e_zero=-131, out_rounding="rdn"), "out_rounding must be one of rtz, rne, not 'rdn'"),
    (dict(F=23, L=4, e_zero=-131, out_rounding="rne", out_frac_bits=13), "out_frac_bits requires out_rounding 'rtz'"),
    (dict(F=23, L=4, e_zero=-131, out_frac_bits=0), "out_frac_bits must be an integer between 1 and 52, not 0"),
])
def test_nvidia_validation(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Nvidia(**kwargs)


def test_parse_semantics_errors():
    with pytest.raises(ValueError, match="semantics must be one of chain, exact, volta"):
        parse_semantics("turing")
    with pytest.raises(ValueError, match="F and L apply only to nvidia semantics, not to exact"):
        parse_semantics("exact", F=24)
    with pytest.raises(TypeError, match="semantics must be a name"):
        parse_semantics(3)
    with pytest.raises(ValueError, match="F must be an integer between 1 and 48, not 60"):
        parse_semantics("volta", F=60)


def test_operand_validation():
    z = np.zeros((2, 4), dtype=np.uint16)
    with pytest.raises(ValueError, match=r"a and b must have the same shape \(..., K\), not \(2, 4\) and \(2, 3\)"):
        dot_product_add(z, z[:, :3], np.zeros(2), in_format=FP16, semantics="exact")
    with pytest.raises(ValueError, match=r"c must have shape \(2,\)"):
        dot_product_add(z, z, np.zeros(3), in_format=FP16, semantics="exact")
    with pytest.raises(ValueError, match="K .* must be at least 1, not 0"):
        dot_product_add(z[:, :0], z[:, :0], np.zeros(2), in_format=FP16, semantics="exact")
    with pytest.raises(TypeError, match="in_format must be a FloatFormat"):
        dot_product_add(z, z, np.zeros(2), in_format="fp16", semantics="exact")
    with pytest.raises(ValueError, match="acc_format must have infinities for nvidia semantics, not e4m3fn"):
        dot_product_add(z, z, np.zeros(2), in_format=FP8_E4M3, acc_format=FP8_E4M3, semantics="volta")
    with pytest.raises(ValueError, match="out_frac_bits of hopper_fp8 must be at most the 10 fraction bits"):
        dot_product_add(z, z, np.zeros(2), in_format=FP16, acc_format=FP16, semantics=HOPPER_FP8)
    with pytest.raises(ValueError, match="acc_format e5m10 must have at least"):
        dot_product_add(z, z, np.zeros(2), in_format=BF16, acc_format=FP16, semantics="chain")


def test_output_dtypes_and_shapes():
    a = np.zeros((3, 2, 4), dtype=np.uint16)
    for acc, dt in ((FP32, np.uint32), (FP16, np.uint16)):
        for sem in ("chain", "exact", "volta"):
            d, fl = dot_product_add(a, a, np.zeros((3, 2), dtype=np.uint32), in_format=FP16, acc_format=acc,
                                    semantics=sem)
            assert d.shape == (3, 2) and d.dtype == dt and fl.dtype == np.uint8 and fl.shape == (3, 2)


# =============================================================================================
# nvidia: directed, hand-derived cases (NUMERICS.md "discriminating cases")
# =============================================================================================
def test_volta_c_loses_last_bit_at_alignment():
    # a0 = b0 = 1 (FP16 0x3C00), other lanes 0, c = -(1 - 2^-24) (FP32 0xBF7FFFFF).
    # Terms: product s=1, e=0; c: s = -(2 - 2^-23), e=-1; zero products get e_zero=-131.
    # E = 0. c scaled to 2^0 with F=23 fraction bits: (2 - 2^-23) * 2^(-1) * 2^23 = 2^23 - 1/2,
    # truncated to 2^23 - 1, i.e. c becomes -(1 - 2^-23): it lost its last bit.
    # Sum = 1 - (1 - 2^-23) = 2^-23 exactly -> FP32 0x34000000.
    # The exact answer is 2^-24 (0x33800000), which chain (one FMA) also gives.
    a, b, c = [0x3C00, 0, 0, 0], [0x3C00, 0, 0, 0], 0xBF7FFFFF
    assert one(a, b, c, VOLTA) == f32(U23) == 0x34000000
    assert one(a, b, c, EXACT) == f32(U24) == 0x33800000
    assert one(a, b, c, CHAIN) == f32(U24)


def test_volta_truncation_of_small_product():
    # a = [1,1,1,1], b = [2, 2^-23 + 2^-24, 0, 0], c = +0.
    # b1 = 3 * 2^-24 is the FP16 subnormal 0x0003: s = 3 * 2^-10, e = emin = -14.
    # Products: 1*2 -> s=1, e=1;  1*b1 -> s=3*2^-10, e=-14;  zeros and c -> e_zero.  E = 1.
    # Product 0 scaled: 1 * 2^(1-1+23) = 2^23 (kept).  Product 1: 3*2^-10 * 2^(-14-1+23) = 3/4,
    # truncated to 0.  Sum = 2^23 * 2^-23 * 2^1 = 2 exactly -> 0x40000000.
    # Exact: 2 + 3*2^-24 = 2 + 0.75 ulp(2) (ulp = 2^-22) -> RNE rounds up to 2 + 2^-22 (0x40000001),
    # and chain computes the same (the second FMA rounds 2 + 0.75 ulp up).
    a, b = [0x3C00] * 4, [0x4000, 0x0003, 0, 0]
    assert one(a, b, 0, VOLTA) == f32(2) == 0x40000000
    assert one(a, b, 0, EXACT) == 0x40000001
    assert one(a, b, 0, CHAIN) == 0x40000001


def test_volta_carry_headroom_exactly_eight():
    # a = b = [1.5]*4 (0x3E00): each product s = 2.25 (not renormalized, in [2,4)), e = 0.
    # c = -1 (e = 0). E = 0, all terms exact with 23 fraction bits.
    # Sum = 4 * 2.25 - 1 = 8 = 2^3 * 2^E: the adder needs integer bits up to 2^3 (a datapath that
    # kept only the 2 integer bits of one product would wrap). Result 8.0 = 0x41000000.
    a = b = [0x3E00] * 4
    assert one(a, b, f32(-1), VOLTA) == f32(8) == 0x41000000
    # Without c, the four products alone reach 9 = 2^3 + 1: also exact.
    assert one(a, b, 0, VOLTA) == f32(9)


def test_volta_maximum_carry_headroom():
    # a = b = [2 - 2^-10]*4 (0x3FFF): product = 4 - 2^-8 + 2^-20 (s in [2,4), e = 0, 20 fraction bits).
    # c = 2 - 2^-23 (0x3FFFFFFF, s = 2 - 2^-23, e = 0). E = 0, nothing truncated at alignment.
    # Sum = 16 - 2^-6 + 2^-18 + 2 - 2^-23 = 18 - 2^-6 + 2^-18 - 2^-23 (needs 5 integer bits).
    # Output FP32 in [16, 32): ulp 2^-19. Truncation drops 2^-19 - 2^-23:
    #   volta = 18 - 2^-6 + 2^-19.  Exact RNE: remainder 2^-19 - 2^-23 = 15/16 ulp -> rounds up,
    #   exact = 18 - 2^-6 + 2^-18.
    a = b = [0x3FFF] * 4
    c = f32(2 - U23)
    assert one(a, b, c, VOLTA) == f32(18 - pow2(-6) + pow2(-19))
    assert one(a, b, c, EXACT) == f32(18 - pow2(-6) + pow2(-18))


def test_volta_non_monotonic_in_c():
    # a = [1 + 2^-10]*4 (0x3C01), b = [(1 + 2^-10) * 2^-3]*4 (0x3001).
    # Each product = (1 + 2^-9 + 2^-20) * 2^-3 = 2^-3 + 2^-12 + 2^-23, e = -3.
    # c1 = 2 - 2^-23 (0x3FFFFFFF, e = 0): E = 0, every product keeps its 2^-23 bit.
    #   sum = 2 - 2^-23 + 4*(2^-3 + 2^-12 + 2^-23) = 2.5 + 2^-10 + 3*2^-23;
    #   FP32 ulp in [2,4) is 2^-22, truncation: 3*2^-23 -> 2^-22.  d1 = 2.5 + 2^-10 + 2^-22.
    # c2 = 2 (0x40000000, the next FP32 number, e = 1): E = 1, quantum 2^-22, each product
    #   loses its 2^-23 bit: sum = 2 + 4*(2^-3 + 2^-12) = 2.5 + 2^-10.  d2 = 2.5 + 2^-10 < d1.
    # Raising c by one ulp lowers d: the volta dot product is not monotonic.
    a, b = [0x3C01] * 4, [0x3001] * 4
    c1, c2 = f32(2 - U23), f32(2)
    assert c2 == c1 + 1
    d1, d2 = one(a, b, c1, VOLTA), one(a, b, c2, VOLTA)
    assert d1 == f32(Fraction(5, 2) + pow2(-10) + pow2(-22)) == 0x40201001
    assert d2 == f32(Fraction(5, 2) + pow2(-10)) == 0x40201000
    assert d2 < d1           # positive FP32 bit patterns order like their values
    # exact is monotonic here: exact(c2) >= exact(c1)
    assert one(a, b, c2, EXACT) >= one(a, b, c1, EXACT)


def test_volta_largest_exponent_not_largest_magnitude():
    # Step 4 takes the largest *exponent* of the unnormalized terms: a product s in [2,4) counts
    # with e, not with the binade e+1 of its value.
    # a0 = b0 = 1.75 (0x3F00): s = 3.0625, e = 0 (value in binade 2^1); a1 = -1.75, b1 = 1.75:
    # s = -3.0625, e = 0; c = 1 + 2^-23 (0x3F800001, s = 1 + 2^-23, e = 0).
    # E = 0, quantum 2^-23: c keeps its last bit; products cancel; d = 1 + 2^-23 = 0x3F800001.
    # (A model aligning to the largest normalized magnitude, E = 1, would truncate c to 1.)
    a, b = [0x3F00, 0xBF00, 0, 0], [0x3F00, 0x3F00, 0, 0]
    c = f32(1 + U23)
    assert one(a, b, c, VOLTA) == 0x3F800001
    assert one(a, b, c, Nvidia(23, 4, -131, "rne")) == 0x3F800001
    # Counter-check: with c = 1 + 2^-23 scaled next to a product of exponent 1 (a0 = 2, b0 = 1.75:
    # s = 1.75, e = 1; a1 = -2: cancels) E = 1, quantum 2^-22, and c does lose its last bit: d = 1.
    assert one([0x4000, 0xC000, 0, 0], b, c, VOLTA) == f32(1)


def test_volta_subnormal_c_and_zero_result_sign():
    # c = -(smallest FP32 subnormal) = 0x80000001 (s = 2^-23, e = -126); products all zero (e_zero).
    # E = max(-126, -131) = -126, quantum 2^(-126-23) = 2^-149: c is kept exactly -> 0x80000001.
    assert one([0] * 4, [0] * 4, 0x80000001, VOLTA) == 0x80000001
    # a zero result is +0, even when every term is -0 (IEEE would give -0).
    assert one([0x8000, 0, 0, 0], [0x3C00, 0, 0, 0], 0x80000000, VOLTA) == 0
    assert one([0x8000, 0x8000, 0x8000, 0x8000], [0x3C00] * 4, 0x80000000, EXACT) == 0x80000000
    assert one([0x8000, 0x8000, 0x8000, 0x8000], [0x3C00] * 4, 0x80000000, CHAIN) == 0x80000000
    # exact cancellation: 1*1 + (-1) = +0 everywhere
    assert one([0x3C00, 0, 0, 0], [0x3C00, 0, 0, 0], f32(-1), VOLTA) == 0
    assert one([0x3C00, 0, 0, 0], [0x3C00, 0, 0, 0], f32(-1), EXACT) == 0


def test_volta_tiny_negative_result_truncates_to_plus_zero():
    # BF16 inputs: a0 = -2^-100, b0 = 2^-60: product -2^-160, s = -1, e = -160.
    # c = +0 gets e_zero = -131, so E = -131 and the product is scaled to 2^(-160+131+23) = 2^-6:
    # truncated to 0 -> +0. (Exact: -2^-160 is below half the smallest subnormal -> -0.)
    a0 = int(np.array([-2.0 ** -100], dtype=ml_dtypes.bfloat16).view(np.uint16)[0])
    b0 = int(np.array([2.0 ** -60], dtype=ml_dtypes.bfloat16).view(np.uint16)[0])
    assert one([a0, 0, 0, 0], [b0, 0, 0, 0], 0, VOLTA, in_format=BF16) == 0
    assert one([a0, 0, 0, 0], [b0, 0, 0, 0], 0, EXACT, in_format=BF16) == 0x80000000
    # -2^-149 * (1 + 2^-7) truncates to -2^-149 (RTZ at the subnormal granularity):
    # a0 = -(1 + 2^-7) * 2^-75, b0 = 2^-74 -> product s = -(1 + 2^-7), e = -149; E = -131 (e_zero of c);
    # scaled magnitude (1 + 2^-7) * 2^(-149+131+23) = 2^5 + 2^-2 -> 32, value 32 * 2^-154 = 2^-149.
    a0 = int(np.array([-(1 + 2.0 ** -7) * 2.0 ** -75], dtype=ml_dtypes.bfloat16).view(np.uint16)[0])
    b0 = int(np.array([2.0 ** -74], dtype=ml_dtypes.bfloat16).view(np.uint16)[0])
    assert one([a0, 0, 0, 0], [b0, 0, 0, 0], 0, VOLTA, in_format=BF16) == 0x80000001


def test_volta_result_rounded_to_zero_is_plus_zero():
    # BF16 a0 = -2^-75, b0 = 2^-75: product -2^-150 (s = -1, e = -150); c = +0 -> E = e_zero = -131.
    # Scaled magnitude 2^(-150+131+23) = 16 (kept), sum = -16 * 2^-154 = -2^-150.
    # FP32 RTZ: below the smallest subnormal 2^-149 -> zero; the tensor core returns +0 (IEEE RTZ: -0).
    # Exact (RNE): -2^-150 is exactly half of 2^-149, a tie -> even -> -0.
    a0 = int(np.array([-2.0 ** -75], dtype=ml_dtypes.bfloat16).view(np.uint16)[0])
    b0 = a0 & 0x7FFF
    assert one([a0, 0, 0, 0], [b0, 0, 0, 0], 0, VOLTA, in_format=BF16) == 0
    assert one([a0, 0, 0, 0], [b0, 0, 0, 0], 0, EXACT, in_format=BF16) == 0x80000000
    # three such products: -3 * 2^-150 = -1.5 * 2^-149 -> RTZ -2^-149 = 0x80000001
    assert one([a0] * 3 + [0], [b0] * 3 + [0], 0, VOLTA, in_format=BF16) == 0x80000001


def test_volta_overflow_gives_inf_not_max_finite():
    # c = max FP32 (2^128 - 2^104: s = 2 - 2^-23, e = 127); BF16 a0 = b0 = 2^64 -> product 2^128,
    # s = 1, e = 128 = E. c scaled: (2 - 2^-23) * 2^(127-128+23)
    # = 2^23 - 2^-1 -> 2^23 - 1. Sum = 2^23 + 2^23 - 1 (units 2^(128-23)) ~ 2^129 > max: RTZ would
    # give max finite in IEEE, the tensor core gives +inf.
    a0 = int(np.array([2.0 ** 64], dtype=ml_dtypes.bfloat16).view(np.uint16)[0])
    assert one([a0, 0, 0, 0], [a0, 0, 0, 0], 0x7F7FFFFF, VOLTA, in_format=BF16) == 0x7F800000
    assert one([a0 | 0x8000, 0, 0, 0], [a0, 0, 0, 0], 0xFF7FFFFF, VOLTA, in_format=BF16) == 0xFF800000


@pytest.mark.parametrize("sem", [VOLTA, AMPERE, HOPPER])
def test_nvidia_special_values(sem):
    NANP = 0x7FFFFFFF
    inf, ninf, one_ = 0x7C00, 0xFC00, 0x3C00
    k = sem.L
    z = [0] * k

    def row(*vals):
        return list(vals) + [0] * (k - len(vals))
    assert one(row(0x7E00), row(one_), 0, sem) == NANP                      # NaN input
    assert one(row(0x7C01), row(one_), 0, sem) == NANP                      # sNaN input
    assert one(z, z, 0x7FC00000, sem) == NANP                               # NaN c
    assert one(row(inf), row(0), 0, sem) == NANP                            # inf * 0
    assert one(row(inf, one_), row(one_, ninf), 0, sem) == NANP             # inf - inf
    assert one(row(inf), row(one_), 0xFF800000, sem) == NANP                # inf + (-inf c)
    assert one(row(inf), row(one_), f32(-5), sem) == 0x7F800000             # inf propagates
    assert one(row(inf, inf), row(ninf, one_), 0, sem) == NANP
    assert one(row(inf), row(ninf), 0, sem) == 0xFF800000
    assert one(z, z, 0xFF800000, sem) == 0xFF800000
    # FP16 output NaN pattern
    s16 = Nvidia(sem.F, sem.L, -19, "rne")
    assert one(row(0x7E00), row(one_), 0, s16, acc_format=FP16) == 0x7FFF


def test_volta_fp16_e_zero_matters():
    # FP16 output (volta_fp16: e_zero = -19, RNE), c = +0.
    # a0 = 2^-14 (0x0400), b0 = 2^-11 (0x1000): product 2^-25, s = 1, e = -25.
    # a1 = b1 = 2^-24 (0x0001, subnormal): s = 2^-10 each, e = -14 each: product s = 2^-20, e = -28,
    # value 2^-48.  Zero terms (lanes 2, 3 and c) get e_zero = -19 > -25: E = -19, quantum
    # 2^(-19-23) = 2^-42, so the 2^-48 product truncates to 0.  Sum = 2^-25 = exactly half the
    # smallest FP16 subnormal 2^-24: RNE tie -> even -> 0 -> +0.
    # Same parameters with e_zero = -131: E = -25, quantum 2^-48, the product survives:
    # 2^-25 + 2^-48 is above the tie -> 2^-24 = 0x0001 (also the exact answer).
    a, b = [0x0400, 0x0001, 0, 0], [0x1000, 0x0001, 0, 0]
    assert one(a, b, 0, VOLTA_FP16, acc_format=FP16) == 0x0000
    assert one(a, b, 0, Nvidia(23, 4, -131, "rne"), acc_format=FP16) == 0x0001
    assert one(a, b, 0, EXACT, acc_format=FP16) == 0x0001
    assert one(a, b, 0, "volta", acc_format=FP16) == 0x0000               # name -> fp16 variant


def test_volta_fp16_output_rounds_to_nearest():
    # a0 = 1 + 3*2^-10 (0x3C03), b0 = 1.5 + 2^-10 (0x3E01), c = 0 (FP16).
    # Product = 1.5 + 5.5*2^-10 + 3*2^-20 (s in [1,2), e = 0, all bits kept with F = 23).
    # FP16 ulp at [1,2) = 2^-10: 1.5 + 5*2^-10 + (0.5*2^-10 + 3*2^-20) -> above half -> round up:
    # 1.5 + 6*2^-10 = 0x3E06 (truncation would give 0x3E05).
    assert one([0x3C03, 0, 0, 0], [0x3E01, 0, 0, 0], 0, VOLTA_FP16, acc_format=FP16) == 0x3E06
    assert one([0x3C03, 0, 0, 0], [0x3E01, 0, 0, 0], 0, Nvidia(23, 4, -19, "rtz"), acc_format=FP16) == 0x3E05
    # FP16 overflow -> inf: 4 * 256*256 = 2^18 > 65504
    assert one([0x5C00] * 4, [0x5C00] * 4, 0, VOLTA_FP16, acc_format=FP16) == 0x7C00


def test_hopper_fp8_sanity():
    e4 = FP8_E4M3
    one8 = 0x38                                   # e4m3fn 1.0 = 0 0111 000
    # 32 products 1*1 + c=0 -> 32 exactly (carry headroom for 32 terms).
    assert one([one8] * 32, [one8] * 32, 0, HOPPER_FP8, in_format=e4) == f32(32)
    # 1.875 * 1.875 (0x3F) = 3.515625 (s in [2,4), 6 fraction bits); 32 of them = 112.5.
    assert one([0x3F] * 32, [0x3F] * 32, 0, HOPPER_FP8, in_format=e4) == f32(Fraction(225, 2))
    # Output truncation to 13 fraction bits: 1*1 + c with c = 1 + 2^-13 (e = 0 = E, kept by F = 13).
    # Sum = 2 + 2^-13; normalized in [2,4) with 13 fraction bits the quantum is 2^-12: d = 2.
    # The same algorithm storing all 23 FP32 fraction bits gives 2 + 2^-13.
    row1 = [one8] + [0] * 31
    c = f32(1 + pow2(-13))
    assert one(row1, row1, c, HOPPER_FP8, in_format=e4) == f32(2)
    assert one(row1, row1, c, Nvidia(13, 32, -133, "rtz"), in_format=e4) == f32(2 + pow2(-13))
    # Alignment truncation F = 13: c = 1 + 2^-14 loses 2^-14: 1 + 1 -> 2 with either output width.
    c = f32(1 + pow2(-14))
    assert one(row1, row1, c, Nvidia(13, 32, -133, "rtz"), in_format=e4) == f32(2)
    # Result below 2 keeps 13 fraction bits: 1*1 + (-(1 - 2^-13)) = 2^-13 exactly.
    assert one(row1, row1, f32(-(1 - pow2(-13))), HOPPER_FP8, in_format=e4) == f32(pow2(-13))
    # e4m3fn NaN (0x7F) -> 0x7FFFFFFF; e4m3fn has no infinities.
    assert one([0x7F] + [0] * 31, row1, 0, HOPPER_FP8, in_format=e4) == 0x7FFFFFFF


def test_tf32_input_padding_ignored():
    # TF32 1.0 = 0x3F800000; the low 13 bits are ignored (truncation of the input):
    # 0x3F801FFF is still 1.0, so 1*1 + 0 = 1 with every semantics.
    for sem in (CHAIN, EXACT, VOLTA, AMPERE):
        assert one([0x3F801FFF, 0, 0, 0], [0x3F800000, 0, 0, 0], 0, sem, in_format=TF32) == f32(1)
        assert one([0x3F802000, 0, 0, 0], [0x3F800000, 0, 0, 0], 0, sem, in_format=TF32) == f32(1 + pow2(-10))


# =============================================================================================
# properties
# =============================================================================================
@pytest.mark.parametrize("sem, in_format", [(VOLTA, FP16), (AMPERE, BF16), (HOPPER, FP16), (EXACT, FP16)])
def test_order_within_block_does_not_matter(sem, in_format):
    seed = 11
    rng = np.random.default_rng(seed)
    k = sem.L if isinstance(sem, Nvidia) else 8
    a, b, c = random_dot_operands(rng, N_VECTORS, k, in_format)
    d0, _ = dot_product_add(a, b, c, in_format=in_format, semantics=sem)
    for _ in range(3):
        perm = rng.permutation(k)
        d1, _ = dot_product_add(a[:, perm], b[:, perm], c, in_format=in_format, semantics=sem)
        # NaN patterns are fixed and zero results are signed by value, so bits must agree
        compare_rows(seed, d1, d0, a, b, c, f"{sem} permuted {perm}")


def test_order_across_blocks_matters_for_volta():
    # Not a symmetry across blocks: [x, x, x, x | y...] vs interleaved differ for some vectors
    # (otherwise the block structure would be invisible). Blocks: d1 = dot(a[0:4]) + c, d = dot(a[4:8]) + d1.
    rng = np.random.default_rng(5)
    a, b, c = random_dot_operands(rng, 2000, 8, FP16, specials=0)
    d0, _ = dot_product_add(a, b, c, in_format=FP16, semantics=VOLTA)
    perm = np.array([0, 4, 1, 5, 2, 6, 3, 7])
    d1, _ = dot_product_add(a[:, perm], b[:, perm], c, in_format=FP16, semantics=VOLTA)
    assert np.any(d0 != d1)


@pytest.mark.parametrize("sem, k", [(VOLTA, 8), (VOLTA, 16), (VOLTA, 6), (AMPERE, 24), (HOPPER, 32),
                                    (Nvidia(23, 4, -131, "rne"), 12)])
def test_blocks_chain_through_rounded_d(sem, k):
    seed = 21 + k
    rng = np.random.default_rng(seed)
    a, b, c = random_dot_operands(rng, N_VECTORS, k, FP16)
    d, _ = dot_product_add(a, b, c, in_format=FP16, semantics=sem)
    acc = c
    for s in range(0, k, sem.L):
        blk = slice(s, s + sem.L)
        acc, _ = dot_product_add(a[:, blk], b[:, blk], acc, in_format=FP16, semantics=sem)
    compare_rows(seed, d, acc, a, b, c, f"{sem} k={k} vs manual blocks")


def test_nvidia_equals_exact_when_nothing_is_lost():
    # Small integers: every term exact at F = 23 and the sum exactly representable, so truncation,
    # RTZ and RNE all agree with the exact result.
    rng = np.random.default_rng(3)
    ints = rng.integers(-16, 17, size=(2000, 4)).astype(np.float16)
    ints2 = rng.integers(-16, 17, size=(2000, 4)).astype(np.float16)
    c = rng.integers(-1000, 1000, size=2000).astype(np.float32)
    a, b = ints.view(np.uint16), ints2.view(np.uint16)
    dv, _ = dot_product_add(a, b, c.view(np.uint32), in_format=FP16, semantics=VOLTA)
    de, _ = dot_product_add(a, b, c.view(np.uint32), in_format=FP16, semantics=EXACT)
    want = ((ints.astype(np.float64) * ints2).sum(axis=1) + c).astype(np.float32).view(np.uint32)
    want = np.where(want == 0x80000000, 0, want)
    de = np.where(de == 0x80000000, 0, de)
    assert np.array_equal(dv, want) and np.array_equal(de, want)


# =============================================================================================
# random vectors against the independent references
# =============================================================================================
NVIDIA_CONFIGS = [
    (VOLTA, FP16, FP32, 4), (VOLTA, BF16, FP32, 4), (VOLTA, FP16, FP32, 8), (VOLTA, TF32, FP32, 4),
    (VOLTA, FP16, FP32, 6),
    (AMPERE, FP16, FP32, 8), (AMPERE, BF16, FP32, 8), (AMPERE, TF32, FP32, 4),
    (HOPPER, FP16, FP32, 16), (HOPPER, BF16, FP32, 16),
    (HOPPER_FP8, FP8_E4M3, FP32, 32), (HOPPER_FP8, FP8_E5M2, FP32, 32), (HOPPER_FP8, FP8_E4M3, FP32, 8),
    (VOLTA_FP16, FP16, FP16, 4), (dot.AMPERE_FP16, FP16, FP16, 8), (dot.HOPPER_FP16, FP8_E5M2, FP16, 16),
    (Nvidia(23, 4, -10, "rtz"), FP16, FP32, 5),           # e_zero above emin: padding lanes matter
    (Nvidia(23, 4, -10, "rtz"), FP16, FP32, 4),           # e_zero above emin: zero products matter
    (Nvidia(3, 2, -131, "rtz", 5), BF16, FP32, 4),        # tiny F, output truncation, K = 2 blocks
]


@pytest.mark.parametrize("sem, in_format, acc_format, k", NVIDIA_CONFIGS,
                         ids=[f"{s.tag}-{i}-{o}-k{k}" for s, i, o, k in NVIDIA_CONFIGS])
def test_nvidia_against_fraction_reference(sem, in_format, acc_format, k):
    seed = _seed(((sem.tag, str(in_format), str(acc_format), k)))
    rng = np.random.default_rng(seed)
    n = max(N_VECTORS * 4 // k, 200)
    a, b, c = random_dot_operands(rng, n, k, in_format, acc_format)
    d, flags = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=sem)
    assert not flags.any()
    want = [ref_nvidia(list(a[i]), list(b[i]), int(c[i]), in_format, acc_format, sem) for i in range(n)]
    compare_rows(seed, d, want, a, b, c, f"nvidia {sem} {in_format}->{acc_format} k={k}")


EXACT_CONFIGS = [(FP16, FP32, 4), (BF16, FP32, 4), (TF32, FP32, 8), (FP8_E4M3, FP32, 16), (FP8_E5M2, FP32, 4),
                 (FP16, FP16, 4), (FP8_E5M2, FP16, 8), (BF16, FP32, 1)]


@pytest.mark.parametrize("in_format, acc_format, k", EXACT_CONFIGS,
                         ids=[f"{i}-{o}-k{k}" for i, o, k in EXACT_CONFIGS])
def test_exact_against_fraction_reference(in_format, acc_format, k):
    seed = _seed(((str(in_format), str(acc_format), k)))
    rng = np.random.default_rng(seed)
    n = max(N_VECTORS * 4 // k, 200)
    a, b, c = random_dot_operands(rng, n, k, in_format, acc_format)
    d, flags = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=EXACT)
    ref = [ref_exact(list(a[i]), list(b[i]), int(c[i]), in_format, acc_format) for i in range(n)]
    compare_rows(seed, d, [r[0] for r in ref], a, b, c, f"exact {in_format}->{acc_format} k={k}")
    compare_rows(seed, flags, [r[1] for r in ref], a, b, c, f"exact flags {in_format}->{acc_format} k={k}")


CHAIN_CONFIGS = [(FP16, FP32, 4), (BF16, FP32, 4), (TF32, FP32, 4), (FP8_E4M3, FP32, 8), (FP8_E5M2, FP32, 4),
                 (FP16, FP16, 4), (FP8_E5M2, FP16, 4)]


@pytest.mark.parametrize("in_format, acc_format, k", CHAIN_CONFIGS,
                         ids=[f"{i}-{o}-k{k}" for i, o, k in CHAIN_CONFIGS])
def test_chain_against_softfloat(in_format, acc_format, k):
    seed = _seed((("chain", str(in_format), str(acc_format), k)))
    rng = np.random.default_rng(seed)
    n = max(N_VECTORS * 2 // k, 200)
    a, b, c = random_dot_operands(rng, n, k, in_format, acc_format)
    d, flags = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=CHAIN)
    ref = [sf_chain(list(a[i]), list(b[i]), int(c[i]), in_format, acc_format) for i in range(n)]
    compare_rows(seed, d, [r[0] for r in ref], a, b, c, f"chain {in_format}->{acc_format} k={k}")
    compare_rows(seed, flags, [r[1] for r in ref], a, b, c, f"chain flags {in_format}->{acc_format} k={k}")


def test_exact_wide_spread_uses_big_integers():
    # a = [2^-24 (FP16 subnormal), 2^15], b = [2^-24, 2^15] -> products 2^-48 and 2^30;
    # c = -2^30: exact sum = 2^-48 -> FP32 0x27800000 (2^-48 is normal in FP32).
    # Spread 30 - (-48) = 78 bits exceeds the int64 fast path.
    d = one([0x0001, 0x7800, 0, 0], [0x0001, 0x7800, 0, 0], f32(-pow2(30)), EXACT)
    assert d == f32(pow2(-48))
    # volta loses the tiny product entirely (E = 30): +0.
    assert one([0x0001, 0x7800, 0, 0], [0x0001, 0x7800, 0, 0], f32(-pow2(30)), VOLTA) == 0


# =============================================================================================
# mma
# =============================================================================================
@pytest.mark.parametrize("sem", [VOLTA, EXACT, CHAIN])
def test_mma_is_a_grid_of_dot_products(sem):
    rng = np.random.default_rng(7)
    M, N, K = 4, 3, 8
    A = random_dot_operands(rng, M, K, FP16)[0]
    Bt = random_dot_operands(rng, N, K, FP16)[0]
    C = random_dot_operands(rng, M * N, 1, FP16)[2].reshape(M, N)
    D, fl = mma(A, Bt.T, C, in_format=FP16, semantics=sem)
    assert D.shape == (M, N) and D.dtype == np.uint32
    for i in range(M):
        for j in range(N):
            d, f = dot_product_add(A[i][None], Bt[j][None], C[i, j][None], in_format=FP16, semantics=sem)
            assert D[i, j] == d[0] and fl[i, j] == f[0]
    # batched
    Ab = np.stack([A, A[::-1]])
    Bb = np.stack([Bt.T, Bt.T])
    Cb = np.stack([C, C[::-1]])
    Db, _ = mma(Ab, Bb, Cb, in_format=FP16, semantics=sem)
    assert np.array_equal(Db[0], D)
    assert np.array_equal(Db[1], mma(A[::-1], Bt.T, C[::-1], in_format=FP16, semantics=sem)[0])


def test_mma_small_exact_example():
    # A = [[1,2],[3,4]], B = [[5,6],[7,8]], C = [[1,1],[1,1]] -> A@B + C = [[20,23],[44,51]]
    A = np.array([[1, 2], [3, 4]], dtype=np.float16).view(np.uint16)
    B = np.array([[5, 6], [7, 8]], dtype=np.float16).view(np.uint16)
    C = np.ones((2, 2), dtype=np.float32).view(np.uint32)
    for sem in ("volta", "exact", "chain", "hopper"):
        D, _ = mma(A, B, C, in_format=FP16, semantics=sem)
        assert np.array_equal(D.view(np.float32), np.array([[20, 23], [44, 51]], dtype=np.float32))


def test_mma_shape_errors():
    A = np.zeros((2, 3), dtype=np.uint16)
    with pytest.raises(ValueError, match="do not fit"):
        mma(A, np.zeros((2, 2), dtype=np.uint16), np.zeros((2, 2)), in_format=FP16, semantics="exact")
    with pytest.raises(ValueError, match=r"C must have shape \(2, 4\)"):
        mma(A, np.zeros((3, 4), dtype=np.uint16), np.zeros((2, 2)), in_format=FP16, semantics="exact")


def test_semantics_classes_exported():
    assert isinstance(CHAIN, Chain) and isinstance(EXACT, Exact) and isinstance(VOLTA, Nvidia)
    assert isinstance(FP32, FloatFormat)


@pytest.mark.parametrize("in_format, acc_format", [(FP16, FP32), (BF16, FP32), (FP8_E4M3, FP32), (FP16, FP16),
                                                   (TF32, FP32)])
def test_chain_with_one_term_is_exact(in_format, acc_format):
    # one FMA is one correctly rounded operation: chain(k=1) == exact(k=1), bits and flags
    seed = _seed(("k1", str(in_format), str(acc_format)))
    rng = np.random.default_rng(seed)
    a, b, c = random_dot_operands(rng, N_VECTORS * 2, 1, in_format, acc_format, specials=0.05)
    d1, f1 = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=CHAIN)
    d2, f2 = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=EXACT)
    compare_rows(seed, d1, d2, a, b, c, "chain k=1 vs exact")
    compare_rows(seed, f1, f2, a, b, c, "chain k=1 vs exact flags")


def test_mma_with_k_above_l_chains_blocks():
    # D = A @ B + C with K = 8 > L = 4 (volta): equals two K = 4 MMAs, the second accumulating on D1.
    rng = np.random.default_rng(9)
    A = random_dot_operands(rng, 4, 8, FP16)[0]
    B = random_dot_operands(rng, 4, 8, FP16)[0].T.copy()
    C = random_dot_operands(rng, 16, 1, FP16)[2].reshape(4, 4)
    D, _ = mma(A, B, C, in_format=FP16, semantics=VOLTA)
    D1, _ = mma(A[:, :4], B[:4], C, in_format=FP16, semantics=VOLTA)
    D2, _ = mma(A[:, 4:], B[4:], D1, in_format=FP16, semantics=VOLTA)
    assert np.array_equal(D, D2)


def test_inputs_accept_any_integer_dtype():
    # signed views and Python lists give the same result as unsigned arrays (low width bits used)
    a = np.array([[0x3C00, 0xBC00, 0x4000, 0x0001]], dtype=np.uint16)
    b = np.array([[0x3E00, 0x3E00, 0xC000, 0x7BFF]], dtype=np.uint16)
    c = np.array([0xBF7FFFFF], dtype=np.uint32)
    for sem in ("volta", "exact", "chain"):
        ref = dot_product_add(a, b, c, in_format=FP16, semantics=sem)[0]
        assert np.array_equal(dot_product_add(a.view(np.int16), b.view(np.int16), c.view(np.int32),
                                              in_format=FP16, semantics=sem)[0], ref)
        assert np.array_equal(dot_product_add(a.tolist(), b.tolist(), c.tolist(), in_format=FP16,
                                              semantics=sem)[0], ref)


def test_bit_length_helper():
    x = np.array([0, 1, 2, 3, 7, 8, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 1, 2 ** 62, 2 ** 63 - 1], dtype=np.int64)
    assert list(dot._bitlen64(x)) == [int(v).bit_length() for v in x]


# =============================================================================================
# FP8: all (a, b) pairs (strided subset in the default tier, every pair under -m slow)
# =============================================================================================
FP8_CS = [0, 0x80000000, f32(-Fraction(3, 2)), f32(pow2(-20) * 3), f32(-(1 + pow2(-20)) * pow2(-3)), 0x7F800000]


def _fp8_pairs(stride):
    x = np.arange(0, 65536, stride, dtype=np.uint64)
    return (x >> np.uint64(8))[:, None], (x & np.uint64(0xFF))[:, None]


def _check_fp8_pairs(fmt, sem, cs, stride):
    a, b = _fp8_pairs(stride)
    for cval in cs:
        c = np.full(a.shape[0], cval, dtype=np.uint64)
        d, _ = dot_product_add(a, b, c, in_format=fmt, semantics=sem)
        if isinstance(sem, Nvidia):
            want = [ref_nvidia([int(a[i, 0])], [int(b[i, 0])], cval, fmt, FP32, sem) for i in range(a.shape[0])]
        else:
            want = [ref_exact([int(a[i, 0])], [int(b[i, 0])], cval, fmt, FP32)[0] for i in range(a.shape[0])]
        compare_rows(f"pairs/{stride}", d, want, a, b, c, f"{sem} {fmt} all pairs, c={cval:#x}")


@pytest.mark.parametrize("fmt", [FP8_E4M3, FP8_E5M2], ids=str)
@pytest.mark.parametrize("sem", [HOPPER_FP8, EXACT], ids=lambda s: s.tag)
def test_fp8_pairs_strided(fmt, sem):
    _check_fp8_pairs(fmt, sem, FP8_CS[2:4], stride=53)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [FP8_E4M3, FP8_E5M2], ids=str)
@pytest.mark.parametrize("sem", [HOPPER_FP8, EXACT, Nvidia(3, 1, -133, "rtz", 2)], ids=lambda s: s.tag)
def test_fp8_all_pairs(fmt, sem):
    _check_fp8_pairs(fmt, sem, FP8_CS, stride=1)


@pytest.mark.slow
@pytest.mark.parametrize("sem, in_format, acc_format, k", NVIDIA_CONFIGS,
                         ids=[f"{s.tag}-{i}-{o}-k{k}" for s, i, o, k in NVIDIA_CONFIGS])
def test_nvidia_against_fraction_reference_deep(sem, in_format, acc_format, k):
    seed = _seed(("deep", sem.tag, str(in_format), str(acc_format), k))
    rng = np.random.default_rng(seed)
    n = max(N_VECTORS * 40 // k, 2000)
    a, b, c = random_dot_operands(rng, n, k, in_format, acc_format)
    d, _ = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=sem)
    want = [ref_nvidia(list(a[i]), list(b[i]), int(c[i]), in_format, acc_format, sem) for i in range(n)]
    compare_rows(seed, d, want, a, b, c, f"deep nvidia {sem} {in_format}->{acc_format} k={k}")


@pytest.mark.slow
@pytest.mark.parametrize("in_format, acc_format, k", EXACT_CONFIGS,
                         ids=[f"{i}-{o}-k{k}" for i, o, k in EXACT_CONFIGS])
def test_exact_against_fraction_reference_deep(in_format, acc_format, k):
    seed = _seed(("deep", str(in_format), str(acc_format), k))
    rng = np.random.default_rng(seed)
    n = max(N_VECTORS * 40 // k, 2000)
    a, b, c = random_dot_operands(rng, n, k, in_format, acc_format)
    d, flags = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=EXACT)
    ref = [ref_exact(list(a[i]), list(b[i]), int(c[i]), in_format, acc_format) for i in range(n)]
    compare_rows(seed, d, [r[0] for r in ref], a, b, c, f"deep exact {in_format}->{acc_format} k={k}")
    compare_rows(seed, flags, [r[1] for r in ref], a, b, c, f"deep exact flags {in_format}->{acc_format} k={k}")


@pytest.mark.slow
@pytest.mark.parametrize("in_format, acc_format, k", CHAIN_CONFIGS,
                         ids=[f"{i}-{o}-k{k}" for i, o, k in CHAIN_CONFIGS])
def test_chain_against_softfloat_deep(in_format, acc_format, k):
    seed = _seed(("deep chain", str(in_format), str(acc_format), k))
    rng = np.random.default_rng(seed)
    n = max(N_VECTORS * 40 // k, 2000)
    a, b, c = random_dot_operands(rng, n, k, in_format, acc_format)
    d, flags = dot_product_add(a, b, c, in_format=in_format, acc_format=acc_format, semantics=CHAIN)
    ref = [sf_chain(list(a[i]), list(b[i]), int(c[i]), in_format, acc_format) for i in range(n)]
    compare_rows(seed, d, [r[0] for r in ref], a, b, c, f"deep chain {in_format}->{acc_format} k={k}")
    compare_rows(seed, flags, [r[1] for r in ref], a, b, c, f"deep chain flags {in_format}->{acc_format} k={k}")
