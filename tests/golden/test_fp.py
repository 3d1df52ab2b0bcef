"""tensorforge.golden.fp against independent oracles (Berkeley SoftFloat, ml_dtypes, table search).

Default tier: TF_VECTORS (default 100,000) vectors per operation, split over the five
rounding modes. ``-m slow``: TF_VECTORS (default 10,000,000) per operation. Seeds derive from
the case name (override with TF_SEED) and are printed in every failure message.
"""

from __future__ import annotations

import os
import zlib

import ml_dtypes
import numpy as np
import pytest

import fp_oracle as orc
from tensorforge.golden import fp
from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32, FloatFormat

FP64 = FloatFormat(11, 52)
MODES = fp.ROUNDING_MODES
CHUNK = 100_000


def _vectors(default: int) -> int:
    return int(os.environ.get("TF_VECTORS", default))


def _seed(name: str) -> int:
    if "TF_SEED" in os.environ:
        return int(os.environ["TF_SEED"])
    return zlib.crc32(name.encode())


@np.errstate(invalid="ignore")
def _f64(bits, fmt):
    """Exact float64 values of bit patterns, by numpy/ml_dtypes (independent of fp.to_float64)."""
    b = np.asarray(bits, dtype=np.uint64)
    if fmt == FP32:
        return b.astype(np.uint32).view(np.float32).astype(np.float64)
    if fmt == TF32:
        return (b.astype(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)
    if fmt == FP16:
        return b.astype(np.uint16).view(np.float16).astype(np.float64)
    if fmt == BF16:
        return b.astype(np.uint16).view(ml_dtypes.bfloat16).astype(np.float64)
    if fmt == FP8_E4M3:
        return b.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    if fmt == FP8_E5M2:
        return b.astype(np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    if fmt == FP64:
        return b.view(np.float64)
    raise AssertionError(fmt)


# ---------------------------------------------------------------------------------------------
# operand generators per operation shape
# ---------------------------------------------------------------------------------------------
def gen_fma(in_fmt, acc_fmt):
    p = acc_fmt.man_bits + 1

    def gen(rng, n):
        a = orc.operands(in_fmt, n, rng)
        b = orc.operands(in_fmt, n, rng)
        c = orc.operands(acc_fmt, n, rng)
        kind = rng.integers(0, 11, n)
        # products whose exponent lands around acc's smallest normal (tininess, subnormal sums)
        target = acc_fmt.emin + rng.integers(-(p + 2), 2, n)
        b_low = orc.with_exponent(in_fmt, target - (orc.exp_field(a, in_fmt) - in_fmt.bias),
                                  np.full(n, in_fmt.bias), rng)
        b = np.where(kind == 6, b_low, b)
        # tininess-after-rounding edge: a*b ~ 2^(emin - p + d), c = -(min normal + k ulp)
        t = acc_fmt.emin - p + rng.integers(-3, 2, n)
        b_edge = orc.with_exponent(in_fmt, t - (orc.exp_field(a, in_fmt) - in_fmt.bias),
                                   np.full(n, in_fmt.bias), rng)
        b = np.where(kind == 7, b_edge, b)
        with np.errstate(all="ignore"):
            prod = fp.to_float64(a, in_fmt) * fp.to_float64(b, in_fmt)
        pbits, _ = fp.from_float64(prod, acc_fmt)
        pbits = pbits.astype(np.uint64)
        ok = np.isfinite(prod)
        # cancellation: c = -(round(a*b)) +- k ulp
        k = rng.integers(-3, 4, n).astype(np.int64) << acc_fmt.pad_bits
        cancel = (pbits ^ np.uint64(acc_fmt.sign_mask)).astype(np.int64) + k
        cancel = (cancel.astype(np.uint64) & np.uint64(acc_fmt.mask))
        c = np.where(ok & (kind < 3), cancel, c)
        # alignment around the rounding position: exponent of c = exponent of a*b +- (p + 4)
        delta = np.where(kind == 6, rng.integers(-2, 3, n), rng.integers(-(p + 4), p + 5, n))
        aligned = orc.with_exponent(acc_fmt, orc.exp_field(pbits, acc_fmt), delta, rng)
        c = np.where(ok & (kind >= 3) & (kind < 7), aligned, c)
        psign = (pbits >> np.uint64(acc_fmt.storage_bits - 1)) ^ (rng.integers(0, 8, n) == 0).astype(np.uint64)
        edge_c = (np.uint64(acc_fmt.min_normal) + (rng.integers(0, 3, n).astype(np.uint64) << np.uint64(acc_fmt.pad_bits))) \
            | ((psign ^ np.uint64(1)) << np.uint64(acc_fmt.storage_bits - 1))
        c = np.where(kind == 7, edge_c, c)
        return a, b, c
    return gen


def gen_add(fmt):
    p = fmt.man_bits + 1

    def gen(rng, n):
        a = orc.operands(fmt, n, rng)
        b = orc.operands(fmt, n, rng)
        kind = rng.integers(0, 10, n)
        k = rng.integers(-3, 4, n).astype(np.int64) << fmt.pad_bits
        cancel = ((a ^ np.uint64(fmt.sign_mask)).astype(np.int64) + k).astype(np.uint64) & np.uint64(fmt.mask)
        fin = ~(fp.classify(a, fmt).nan | fp.classify(a, fmt).inf)
        b = np.where(fin & (kind < 3), cancel, b)
        delta = rng.integers(-(p + 4), p + 5, n)
        aligned = orc.with_exponent(fmt, orc.exp_field(a, fmt), delta, rng)
        b = np.where(fin & (kind >= 3) & (kind < 6), aligned, b)
        return a, b
    return gen


def gen_mul(fmt):
    p = fmt.man_bits + 1

    def gen(rng, n):
        a = orc.operands(fmt, n, rng)
        b = orc.operands(fmt, n, rng)
        kind = rng.integers(0, 10, n)
        # product exponent near the subnormal range / near overflow
        low = orc.with_exponent(fmt, fmt.bias - orc.exp_field(a, fmt), rng.integers(-p - 2, 4, n), rng)
        high = orc.with_exponent(fmt, fmt.bias + fmt.emax - orc.exp_field(a, fmt), rng.integers(-2, 3, n), rng)
        b = np.where(kind < 2, low, np.where(kind < 3, high, b))
        return a, b
    return gen


def gen_unary(fmt):
    def gen(rng, n):
        return (orc.operands(fmt, n, rng),)
    return gen


def gen_convert_narrowing(src, dst):
    """Source values concentrated around the destination's subnormal, normal and overflow ranges."""
    def gen(rng, n):
        x = orc.operands(src, n, rng)
        kind = rng.integers(0, 10, n)
        sm = orc._special_mantissas(src.man_bits)
        # exponent (unbiased) uniformly over the destination range +- a margin
        e = np.clip(rng.integers(dst.emin - dst.man_bits - 3, dst.emax + 3, n) + src.bias, 0, src.exp_max_field)
        man = np.where(rng.integers(0, 2, n) == 0, sm[rng.integers(0, len(sm), n)],
                       rng.integers(0, 1 << src.man_bits, n, dtype=np.uint64))
        # mantissas one ulp around destination ties: bit pattern 1000.. / 0111.. / 1000..1 below dst LSB
        shift = src.man_bits - dst.man_bits
        if shift > 0:
            hi = rng.integers(0, 1 << dst.man_bits, n, dtype=np.uint64) << np.uint64(shift)
            tie = np.uint64(1 << (shift - 1))
            low = np.array([0, 1, tie - np.uint64(1), tie, tie + np.uint64(1), (tie << np.uint64(1)) - np.uint64(1)],
                           dtype=np.uint64)
            man = np.where(rng.integers(0, 2, n) == 0, hi | low[rng.integers(0, len(low), n)], man)
        sign = rng.integers(0, 2, n, dtype=np.uint64)
        y = ((sign << np.uint64(src.exp_bits) | e.astype(np.uint64)) << np.uint64(src.man_bits) | man) \
            << np.uint64(src.pad_bits)
        return (np.where(kind < 6, y, x),)
    return gen


# ---------------------------------------------------------------------------------------------
# oracles for table-rounded conversions (small destinations)
# ---------------------------------------------------------------------------------------------
def table_convert_oracle(src, dst):
    rounder = orc.TableRounder(dst)

    def oracle(mode, x):
        v = _f64(x, src)
        fin = np.isfinite(v)
        bits, flags = rounder.round(np.where(fin, v, 0.0), mode)
        cls = fp.classify(x, src)   # NaN signaling-ness is part of the policy under test
        nan_bits = np.uint64(dst.canonical_nan)
        inf_bits = np.uint64(dst.inf) if dst.has_inf else nan_bits
        sign = np.signbit(v).astype(np.uint64) << np.uint64(dst.storage_bits - 1)
        bits = np.where(np.isnan(v), nan_bits, np.where(np.isinf(v), (inf_bits | sign) if dst.has_inf else nan_bits,
                                                         bits))
        inv = (np.isnan(v) & cls.snan) | (np.isinf(v) & (not dst.has_inf))
        flags = np.where(fin, flags, 0).astype(np.uint8) | inv.astype(np.uint8) * orc.INVALID
        return bits, flags
    return oracle


def table_fma_oracle(in_fmt, acc_fmt):
    """fma into a small generic acc format: f64 fma with round-to-odd, then table rounding."""
    rounder = orc.TableRounder(acc_fmt)

    def oracle(mode, a, b, c):
        to64 = lambda x, f: orc.value_of(x, f).view(np.uint64)   # noqa: E731  (exact, textbook decode)
        ra, fa = orc.softfloat("mul_add", "f64", ("f64",) * 3, fp.RTZ, to64(a, in_fmt), to64(b, in_fmt),
                               to64(c, acc_fmt))
        inexact = (fa & orc.INEXACT) != 0
        odd = np.where(inexact, ra | np.uint64(1), ra)
        v = odd.view(np.float64)
        # exact results: recompute in the target mode for the sign of zero
        rt, _ = orc.softfloat("mul_add", "f64", ("f64",) * 3, mode, to64(a, in_fmt), to64(b, in_fmt),
                              to64(c, acc_fmt))
        v = np.where(inexact, v, rt.view(np.float64))
        fin = np.isfinite(v)
        bits, flags = rounder.round(np.where(fin, v, 0.0), mode)
        sign = np.signbit(v).astype(np.uint64) << np.uint64(acc_fmt.storage_bits - 1)
        bits = np.where(np.isnan(v), np.uint64(acc_fmt.canonical_nan),
                        np.where(np.isinf(v), np.uint64(acc_fmt.inf or 0) | sign, bits))
        flags = np.where(fin, flags, 0).astype(np.uint8) | (fa & orc.INVALID)
        return bits, flags
    return oracle


# ---------------------------------------------------------------------------------------------
# the case table: name -> (generator, model(mode, *ops), oracle(mode, *ops))
# ---------------------------------------------------------------------------------------------
def _sf_fma(width, loaders):
    return lambda mode, a, b, c: orc.softfloat("mul_add", width, loaders, mode, a, b, c)


def _sf_bin(op, width, loaders):
    return lambda mode, a, b: orc.softfloat(op, width, loaders, mode, a, b)


def _sf_cvt(src, dst):
    return lambda mode, x: orc.softfloat_convert(src, dst, mode, x)


CASES = {
    # fused multiply-add, same format
    "fma_fp16": (gen_fma(FP16, FP16), lambda m, a, b, c: fp.fma(a, b, c, FP16, rounding=m),
                 _sf_fma("f16", ("f16",) * 3)),
    "fma_fp32": (gen_fma(FP32, FP32), lambda m, a, b, c: fp.fma(a, b, c, FP32, rounding=m),
                 _sf_fma("f32", ("f32",) * 3)),
    "fma_bf16": (gen_fma(BF16, BF16), lambda m, a, b, c: fp.fma(a, b, c, BF16, rounding=m),
                 lambda m, a, b, c: orc.softfloat_bf16("mul_add", m, a, b, c)),
    # mixed precision (tensor-core style): inputs converted exactly by SoftFloat, then f32 FMA
    "fma_fp16_fp32": (gen_fma(FP16, FP32), lambda m, a, b, c: fp.fma(a, b, c, FP16, FP32, m),
                      _sf_fma("f32", ("f16>f32", "f16>f32", "f32"))),
    "fma_bf16_fp32": (gen_fma(BF16, FP32), lambda m, a, b, c: fp.fma(a, b, c, BF16, FP32, m),
                      _sf_fma("f32", ("bf16>f32", "bf16>f32", "f32"))),
    "fma_tf32_fp32": (gen_fma(TF32, FP32), lambda m, a, b, c: fp.fma(a, b, c, TF32, FP32, m),
                      _sf_fma("f32", ("tf32>f32", "tf32>f32", "f32"))),
    "fma_e5m2_fp32": (gen_fma(FP8_E5M2, FP32), lambda m, a, b, c: fp.fma(a, b, c, FP8_E5M2, FP32, m),
                      _sf_fma("f32", ("e5m2>f32", "e5m2>f32", "f32"))),
    "fma_e4m3_fp32": (gen_fma(FP8_E4M3, FP32), lambda m, a, b, c: fp.fma(a, b, c, FP8_E4M3, FP32, m),
                      _sf_fma("f32", ("e4m3>f32", "e4m3>f32", "f32"))),
    "fma_fp16_e6m12": (gen_fma(FP16, FloatFormat(6, 12)),
                       lambda m, a, b, c: fp.fma(a, b, c, FP16, FloatFormat(6, 12), m),
                       table_fma_oracle(FP16, FloatFormat(6, 12))),
    # multiply
    "mul_fp16": (gen_mul(FP16), lambda m, a, b: fp.mul(a, b, FP16, m), _sf_bin("mul", "f16", ("f16", "f16"))),
    "mul_fp32": (gen_mul(FP32), lambda m, a, b: fp.mul(a, b, FP32, m), _sf_bin("mul", "f32", ("f32", "f32"))),
    "mul_bf16": (gen_mul(BF16), lambda m, a, b: fp.mul(a, b, BF16, m),
                 lambda m, a, b: orc.softfloat_bf16("mul", m, a, b)),
    "mul_fp16_to_fp32": (gen_mul(FP16), lambda m, a, b: fp.mul(a, b, FP16, m, out_format=FP32),
                         _sf_bin("mul", "f32", ("f16>f32", "f16>f32"))),
    # add
    "add_fp16": (gen_add(FP16), lambda m, a, b: fp.add(a, b, FP16, m), _sf_bin("add", "f16", ("f16", "f16"))),
    "add_fp32": (gen_add(FP32), lambda m, a, b: fp.add(a, b, FP32, m), _sf_bin("add", "f32", ("f32", "f32"))),
    "add_bf16": (gen_add(BF16), lambda m, a, b: fp.add(a, b, BF16, m),
                 lambda m, a, b: orc.softfloat_bf16("add", m, a, b)),
    # conversions (SoftFloat)
    "cvt_fp32_fp16": (gen_convert_narrowing(FP32, FP16), lambda m, x: fp.convert(x, FP32, FP16, m),
                      _sf_cvt("f32", "f16")),
    "cvt_fp32_bf16": (gen_convert_narrowing(FP32, BF16), lambda m, x: fp.convert(x, FP32, BF16, m),
                      _sf_cvt("f32", "bf16")),
    "cvt_fp16_fp32": (gen_unary(FP16), lambda m, x: fp.convert(x, FP16, FP32, m), _sf_cvt("f16", "f32")),
    "cvt_bf16_fp32": (gen_unary(BF16), lambda m, x: fp.convert(x, BF16, FP32, m), _sf_cvt("bf16", "f32")),
    "cvt_fp32_fp64": (gen_unary(FP32), lambda m, x: fp.convert(x, FP32, FP64, m), _sf_cvt("f32", "f64")),
    "cvt_fp16_bf16": (gen_convert_narrowing(FP16, BF16), lambda m, x: fp.convert(x, FP16, BF16, m),
                      _sf_cvt("f16", "bf16")),
    "cvt_bf16_fp16": (gen_convert_narrowing(BF16, FP16), lambda m, x: fp.convert(x, BF16, FP16, m),
                      _sf_cvt("bf16", "f16")),
    "from_float64_fp32": (gen_convert_narrowing(FP64, FP32),
                          lambda m, x: fp.from_float64(x.view(np.float64), FP32, m), _sf_cvt("f64", "f32")),
    "from_float64_fp16": (gen_convert_narrowing(FP64, FP16),
                          lambda m, x: fp.from_float64(x.view(np.float64), FP16, m), _sf_cvt("f64", "f16")),
    # conversions to formats SoftFloat lacks (table oracle)
    "cvt_fp32_e4m3": (gen_convert_narrowing(FP32, FP8_E4M3), lambda m, x: fp.convert(x, FP32, FP8_E4M3, m),
                      table_convert_oracle(FP32, FP8_E4M3)),
    "cvt_fp32_e5m2": (gen_convert_narrowing(FP32, FP8_E5M2), lambda m, x: fp.convert(x, FP32, FP8_E5M2, m),
                      table_convert_oracle(FP32, FP8_E5M2)),
    "cvt_fp16_e5m2": (gen_convert_narrowing(FP16, FP8_E5M2), lambda m, x: fp.convert(x, FP16, FP8_E5M2, m),
                      table_convert_oracle(FP16, FP8_E5M2)),
    "cvt_fp32_tf32": (gen_convert_narrowing(FP32, TF32), lambda m, x: fp.convert(x, FP32, TF32, m),
                      table_convert_oracle(FP32, TF32)),
}


def _hex(v, width):
    return f"0x{int(v):0{(width + 3) // 4}x}"


def run_case(name: str, mode: str, n: int):
    gen, model, oracle = CASES[name]
    seed = _seed(f"{name}/{mode}")
    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        ops = gen(rng, k)
        got, gf = model(mode, *ops)
        exp, ef = oracle(mode, *ops)
        bad = np.nonzero((got.astype(np.uint64) != exp.astype(np.uint64)) | (gf != ef))[0]
        if bad.size:
            rows = []
            for i in bad[:8]:
                args = " ".join(hex(int(o[i])) for o in ops)
                rows.append(f"  ops {args}: model {hex(int(got[i]))} flags {int(gf[i]):05b}, "
                            f"oracle {hex(int(exp[i]))} flags {int(ef[i]):05b}")
            pytest.fail(f"{name} [{mode}] seed={seed} (TF_SEED to reproduce): {bad.size} mismatches in a chunk of "
                        f"{k} after {done} vectors\n" + "\n".join(rows))
        done += k
    return done


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_against_oracle(name, mode):
    per_mode = -(-_vectors(100_000) // len(MODES))
    assert run_case(name, mode, per_mode) == per_mode


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(CASES))
def test_against_oracle_deep(name, mode):
    per_mode = -(-_vectors(10_000_000) // len(MODES))
    assert run_case(name, mode, per_mode) == per_mode


# ---------------------------------------------------------------------------------------------
# FP8: every input pair of mul, all rounding modes
# ---------------------------------------------------------------------------------------------
_ML = {FP8_E4M3: ml_dtypes.float8_e4m3fn, FP8_E5M2: ml_dtypes.float8_e5m2}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", [FP8_E4M3, FP8_E5M2], ids=str)
def test_fp8_mul_all_pairs(fmt, mode):
    """All 65,536 pairs. Oracle: exact product in float64, rounded by table search (every mode,
    flags) and, for RNE, also by ml_dtypes (float32 -> float8 cast; the product is exact in
    float32). Special operands follow the stated policy: NaN -> canonical NaN, invalid for
    sNaN or 0*inf, inf*x -> signed inf."""
    a, b = (x.ravel().astype(np.uint64) for x in np.meshgrid(np.arange(256), np.arange(256)))
    va, vb = _f64(a, fmt), _f64(b, fmt)
    with np.errstate(all="ignore"):
        prod = va * vb
    fin = np.isfinite(va) & np.isfinite(vb)
    exp_bits, exp_flags = orc.TableRounder(fmt).round(np.where(fin, prod, 0.0), mode)
    if mode == fp.RNE:
        with np.errstate(all="ignore"):
            ml = prod.astype(np.float32).astype(_ML[fmt])
        ml_bits = np.where(np.isnan(ml.astype(np.float32)), np.uint64(fmt.canonical_nan),
                           ml.view(np.uint8).astype(np.uint64))
        assert np.array_equal(ml_bits[fin], exp_bits[fin]), "table oracle disagrees with ml_dtypes"
    cls_a, cls_b = fp.classify(a, fmt), fp.classify(b, fmt)
    snan = ((a & 0x7F) > 0x7C) & ((a & 0x7F) < 0x7E) if fmt.has_inf else np.zeros(a.shape, bool)
    snan_b = ((b & 0x7F) > 0x7C) & ((b & 0x7F) < 0x7E) if fmt.has_inf else np.zeros(b.shape, bool)
    assert np.array_equal(snan, cls_a.snan) and np.array_equal(snan_b, cls_b.snan)
    zero_inf = (np.isinf(va) & (vb == 0)) | ((va == 0) & np.isinf(vb))
    nan = np.isnan(va) | np.isnan(vb) | zero_inf
    sign = np.uint64(0x80) * (np.signbit(va) ^ np.signbit(vb))
    exp_bits = np.where(nan, np.uint64(fmt.canonical_nan),
                        np.where(fin, exp_bits, np.uint64(fmt.inf or 0) | sign))
    exp_flags = np.where(fin, exp_flags, 0) | ((snan | snan_b | zero_inf) * orc.INVALID).astype(np.uint8)
    got, flags = fp.mul(a, b, fmt, mode)
    assert got.dtype == np.uint16
    bad = np.nonzero((got != exp_bits) | (flags != exp_flags))[0]
    assert bad.size == 0, (f"{bad.size} mismatches, first: " + ", ".join(
        f"{int(a[i]):#04x}*{int(b[i]):#04x}: {int(got[i]):#04x}/{int(flags[i]):05b} "
        f"expected {int(exp_bits[i]):#04x}/{int(exp_flags[i]):05b}" for i in bad[:6]))


# ---------------------------------------------------------------------------------------------
# decode / classify / to_float64 / from_float64 against numpy and ml_dtypes
# ---------------------------------------------------------------------------------------------
SMALL = [FP16, BF16, FP8_E4M3, FP8_E5M2]


@pytest.mark.parametrize("fmt", SMALL, ids=str)
def test_classify_decode_to_float64_exhaustive(fmt):
    bits = np.arange(1 << fmt.width, dtype=np.uint64)
    v = _f64(bits, fmt)
    cls = fp.classify(bits, fmt)
    assert np.array_equal(cls.nan, np.isnan(v))
    assert np.array_equal(cls.inf, np.isinf(v))
    assert np.array_equal(cls.zero, v == 0)
    tiny = (np.abs(v) < 2.0 ** fmt.emin) & (v != 0)
    assert np.array_equal(cls.subnormal, tiny)
    assert np.array_equal(cls.normal, np.isfinite(v) & (v != 0) & ~tiny)
    quiet_bit = ((bits >> np.uint64(fmt.man_bits - 1)) & np.uint64(1)) == 1
    assert np.array_equal(cls.snan, np.isnan(v) & ~quiet_bit if fmt.has_inf else np.zeros(v.shape, bool))
    assert np.array_equal(cls.qnan, cls.nan & ~cls.snan)
    assert np.all(np.sum([cls.zero, cls.subnormal, cls.normal, cls.inf, cls.nan], axis=0) == 1)
    sign, sig, exp = fp.decode(bits, fmt)
    assert sign.dtype == np.uint8 and sig.dtype == np.int64 and exp.dtype == np.int64
    fin = np.isfinite(v)
    val = np.where(sign == 1, -1.0, 1.0) * np.ldexp(sig.astype(np.float64), exp.astype(np.int32))
    assert np.array_equal(val[fin], v[fin])
    assert np.array_equal(np.signbit(val[fin]), np.signbit(v[fin]))
    assert np.all(exp[cls.subnormal | cls.zero] == fmt.emin - fmt.man_bits)
    assert np.all((sig[cls.normal] >> fmt.man_bits) == 1) and np.all(sig[cls.subnormal] < (1 << fmt.man_bits))
    t = fp.to_float64(bits, fmt)
    assert np.array_equal(t, v, equal_nan=True) and np.array_equal(np.signbit(t[fin]), np.signbit(v[fin]))


def test_to_float64_fp32_tf32():
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 1 << 32, 200_000, dtype=np.uint64)
    bits[:16] = orc.special_values(FP32)[:16]
    assert np.array_equal(fp.to_float64(bits, FP32), _f64(bits, FP32), equal_nan=True)
    assert np.array_equal(fp.to_float64(bits, TF32), _f64(bits, TF32), equal_nan=True)


@pytest.mark.parametrize("fmt", [FP16, BF16, FP8_E4M3, FP8_E5M2], ids=str)
def test_rne_conversion_matches_ml_dtypes(fmt):
    """float32 -> fmt, RNE, by fp.convert and fp.from_float64 against ml_dtypes/numpy casts
    (NaN outputs must be the canonical NaN; ml_dtypes keeps signs/payloads)."""
    rng = np.random.default_rng(11)
    bits = np.concatenate([rng.integers(0, 1 << 32, 300_000, dtype=np.uint64),
                           orc.operands(FP32, 100_000, rng),
                           gen_convert_narrowing(FP32, fmt)(rng, 200_000)[0]])
    x32 = bits.astype(np.uint32).view(np.float32)
    dt = np.float16 if fmt == FP16 else (ml_dtypes.bfloat16 if fmt == BF16 else _ML[fmt])
    with np.errstate(all="ignore"):
        ref = x32.astype(dt)
    ref_bits = ref.view(np.uint16 if fmt.width == 16 else np.uint8).astype(np.uint64)
    ref_bits = np.where(np.isnan(ref.astype(np.float32)), np.uint64(fmt.canonical_nan), ref_bits)
    got, _ = fp.convert(bits, FP32, fmt)
    assert np.array_equal(got.astype(np.uint64), ref_bits)
    with np.errstate(invalid="ignore"):
        got64, _ = fp.from_float64(x32.astype(np.float64), fmt)
    assert np.array_equal(got64.astype(np.uint64), ref_bits)


@pytest.mark.parametrize("fmt", [FP16, BF16, FP8_E4M3, FP8_E5M2], ids=str)
def test_widening_conversion_is_exact(fmt):
    bits = np.arange(1 << fmt.width, dtype=np.uint64)
    got, flags = fp.convert(bits, fmt, FP32)
    v = _f64(bits, fmt)
    fin = ~np.isnan(v)
    assert np.array_equal(got.view(np.float32)[fin].astype(np.float64), v[fin])
    assert np.all(got[~fin] == FP32.canonical_nan)
    assert np.array_equal(flags != 0, fp.classify(bits, fmt).snan)


# ---------------------------------------------------------------------------------------------
# directed cases that pin the documented policies
# ---------------------------------------------------------------------------------------------
def _enc(sign, sig, exp, fmt, mode=fp.RNE, sticky=None):
    b, f = fp.encode([sign], np.array([sig], dtype=object) if sig >= 1 << 63 else [sig], [exp], fmt, mode,
                     sticky=None if sticky is None else [sticky])
    return int(b[0]), int(f[0])


def test_encode_tininess_after_rounding():
    # 2^-126 - 2^-151: rounds to 2^-126 with unbounded exponent -> not tiny: no underflow
    assert _enc(0, (1 << 25) - 1, -151, FP32) == (0x00800000, fp.FLAG_INEXACT)
    # 2^-126 - 2^-150: rounds to min normal on the subnormal grid, but is tiny after rounding
    assert _enc(0, (1 << 24) - 1, -150, FP32) == (0x00800000, fp.FLAG_INEXACT | fp.FLAG_UNDERFLOW)
    assert _enc(0, (1 << 25) - 1, -151, FP32, fp.RTZ) == (0x007FFFFF, fp.FLAG_INEXACT | fp.FLAG_UNDERFLOW)
    # exact subnormal: no flags; exact zero keeps its sign
    assert _enc(1, 3, -149, FP32) == (0x80000003, 0)
    assert _enc(1, 0, 0, FP16) == (0x8000, 0)
    # below half the smallest subnormal
    assert _enc(0, 1, -151, FP32) == (0, fp.FLAG_INEXACT | fp.FLAG_UNDERFLOW)
    assert _enc(0, 1, -151, FP32, fp.RUP) == (1, fp.FLAG_INEXACT | fp.FLAG_UNDERFLOW)


def test_encode_overflow_policies():
    ov = fp.FLAG_OVERFLOW | fp.FLAG_INEXACT
    assert _enc(0, 65520, 0, FP16) == (0x7C00, ov)              # tie above max rounds to inf
    assert _enc(0, 65519, 0, FP16) == (0x7BFF, fp.FLAG_INEXACT)
    assert _enc(0, 10 ** 6, 0, FP16, fp.RTZ) == (0x7BFF, ov)
    assert _enc(1, 10 ** 6, 0, FP16, fp.RDN) == (0xFC00, ov)
    assert _enc(1, 10 ** 6, 0, FP16, fp.RUP) == (0xFBFF, ov)
    assert _enc(0, 10 ** 6, 0, FP16, fp.RDN) == (0x7BFF, ov)
    # e4m3fn: no infinities; RNE/RMM overflow -> canonical NaN 0x7F, directed -> max finite 448
    assert _enc(0, 464, 0, FP8_E4M3) == (0x7E, fp.FLAG_INEXACT)      # tie -> even (448)
    assert _enc(0, 465, 0, FP8_E4M3) == (0x7F, ov)
    assert _enc(1, 480, 0, FP8_E4M3) == (0x7F, ov)
    assert _enc(1, 480, 0, FP8_E4M3, fp.RMM) == (0x7F, ov)
    assert _enc(0, 480, 0, FP8_E4M3, fp.RUP) == (0x7E, ov)
    assert _enc(1, 480, 0, FP8_E4M3, fp.RDN) == (0xFE, ov)
    assert _enc(0, 480, 0, FP8_E4M3, fp.RTZ) == (0x7E, ov)
    assert _enc(0, 448, 0, FP8_E4M3, fp.RUP) == (0x7E, 0)


def test_encode_sticky_tf32_and_wide_significands():
    assert _enc(0, 4098, -1, FP16) == (0x6800, fp.FLAG_INEXACT)           # 2049: tie -> even 2048
    assert _enc(0, 4098, -1, FP16, sticky=True) == (0x6801, fp.FLAG_INEXACT)   # 2049 + tiny -> 2050
    assert _enc(0, 4096, -1, FP16, fp.RUP, sticky=True) == (0x6801, fp.FLAG_INEXACT)
    with pytest.raises(ValueError, match="at least two bits below"):
        _enc(0, 2049, 0, FP16, sticky=True)
    assert _enc(0, (1 << 200) + 1, -200, FP32) == (0x3F800000, fp.FLAG_INEXACT)
    assert _enc(0, (1 << 200) + 1, -200, FP32, fp.RUP) == (0x3F800001, fp.FLAG_INEXACT)
    assert _enc(0, 1, 0, TF32) == (0x3F800000, 0)
    assert _enc(0, (1 << 11) - 1, -11, TF32) == (0x3F7FE000, 0)
    assert _enc(0, (1 << 12) - 1, -12, TF32, fp.RTZ) == (0x3F7FE000, fp.FLAG_INEXACT)
    assert _enc(0, (1 << 12) - 1, -12, TF32) == (0x3F800000, fp.FLAG_INEXACT)
    assert fp.decode(0x3F801FFF, TF32)[1] == fp.decode(0x3F800000, TF32)[1]
    # object path == uint64 path on random 62..64-bit values
    rng = np.random.default_rng(3)
    sig = rng.integers(0, 1 << 63, 5000, dtype=np.uint64) >> rng.integers(0, 40, 5000).astype(np.uint64)
    exp = rng.integers(-200, 60, 5000)
    for mode in MODES:
        a = fp.encode(np.zeros(5000, np.uint8), sig, exp, FP32, mode)
        b = fp.encode(np.zeros(5000, np.uint8), sig.astype(object) << 70, exp - 70, FP32, mode)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("mode", MODES)
def test_fma_zero_signs_and_specials(mode):
    one, neg0, pos0 = 0x3F800000, 0x80000000, 0
    rdn_sign = 0x80000000 if mode == fp.RDN else 0
    cases = [
        ((pos0, one, neg0), rdn_sign, 0),            # +0 + -0
        ((neg0, one, neg0), 0x80000000, 0),          # -0 + -0
        ((one, one, 0xBF800000), rdn_sign, 0),       # 1*1 - 1: exact cancellation
        ((0x7F800000, pos0, 0x7FC00000), 0x7FC00000, fp.FLAG_INVALID),   # inf*0 + qNaN
        ((0x7F800000, one, 0xFF800000), 0x7FC00000, fp.FLAG_INVALID),    # inf - inf
        ((0x7F800000, one, 0x7F800000), 0x7F800000, 0),
        ((0xFFC12345, one, one), 0x7FC00000, 0),                         # payload not propagated
        ((0x7F800001, one, one), 0x7FC00000, fp.FLAG_INVALID),          # sNaN
        ((0x7F7FFFFF, 0x40000000, 0xFF7FFFFF), 0x7F7FFFFF, 0),           # 2*max - max, exact
    ]
    for (a, b, c), d, f in cases:
        got, flags = fp.fma(a, b, c, FP32, rounding=mode)
        assert (int(got), int(flags)) == (d, f), (mode, hex(a), hex(b), hex(c))
    # mixed formats: an sNaN FP16 input raises invalid (as SoftFloat's f16_to_f32 would)
    assert [int(x) for x in fp.fma(0x7C01, 0x3C00, 0, FP16, FP32, mode)] == [0x7FC00000, fp.FLAG_INVALID]
    assert [int(x) for x in fp.fma(0x7E00, 0x3C00, 0, FP16, FP32, mode)] == [0x7FC00000, 0]
    # mul keeps the sign of a zero product, add follows the sum-of-zeros rule
    assert [int(x) for x in fp.mul(0x8000, 0x3C00, FP16, mode)] == [0x8000, 0]
    assert [int(x) for x in fp.add(0x8000, 0x0000, FP16, mode)] == [rdn_sign >> 16, 0]


@pytest.mark.parametrize("mode", MODES)
def test_wide_formats_take_exact_path(mode):
    """binary64 inputs (products beyond 62 bits) against SoftFloat's f64 operations."""
    rng = np.random.default_rng(zlib.crc32(f"fp64/{mode}".encode()))
    n = 3000
    a, b, c = gen_fma(FP64, FP64)(rng, n)
    got = fp.fma(a, b, c, FP64, rounding=mode)
    exp = orc.softfloat("mul_add", "f64", ("f64",) * 3, mode, a, b, c)
    assert np.array_equal(got[0], exp[0]) and np.array_equal(got[1], exp[1])
    a, b = gen_mul(FP64)(rng, n)
    got = fp.mul(a, b, FP64, mode)
    exp = orc.softfloat("mul", "f64", ("f64", "f64"), mode, a, b)
    assert np.array_equal(got[0], exp[0]) and np.array_equal(got[1], exp[1])
    a, b = gen_add(FP64)(rng, n)
    got = fp.add(a, b, FP64, mode)
    exp = orc.softfloat("add", "f64", ("f64", "f64"), mode, a, b)
    assert np.array_equal(got[0], exp[0]) and np.array_equal(got[1], exp[1])


def test_shapes_dtypes_and_scalars():
    d, f = fp.fma(0x3C00, 0x3C00, 0x3F800000, FP16, FP32)
    assert d.shape == () and d.dtype == np.uint32 and f.dtype == np.uint8 and int(d) == 0x40000000
    a = np.full((3, 4), 0x3C00, dtype=np.uint16)
    d, f = fp.fma(a, [0x4000] * 4, 0, FP16, FP32)
    assert d.shape == (3, 4) and np.all(d == 0x40000000)
    assert fp.mul([0x38], [0x38], FP8_E4M3)[0].dtype == np.uint16
    assert fp.convert([0], FP32, FP64)[0].dtype == np.uint64
    assert fp.add(np.uint8(0x38), 0x38, FP8_E4M3)[0] == 0x40


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"acc_format e5m10 must have at least the exponent and fraction bits "
                                         r"of in_format e8m23"):
        fp.fma(0, 0, 0, FP32, FP16)
    with pytest.raises(ValueError, match=r"acc_format e5m10fn has no infinities but in_format e5m10 has"):
        fp.fma(0, 0, 0, FP16, FloatFormat(5, 10, has_inf=False))
    with pytest.raises(ValueError, match=r"rounding must be one of rne, rtz, rdn, rup, rmm, not 'nearest'"):
        fp.add(0, 0, FP16, "nearest")
    with pytest.raises(TypeError, match=r"fmt must be a FloatFormat .* not 'fp16'"):
        fp.mul(0, 0, "fp16")
    with pytest.raises(TypeError, match=r"acc_format must be a FloatFormat"):
        fp.fma(0, 0, 0, FP16, "fp32")
    with pytest.raises(TypeError, match=r"bit patterns must be integers, not an array of dtype float64"):
        fp.classify([1.5], FP16)
    assert fp.add(0x3C00, 0x3C00, FP16, "RNE")[0] == 0x4000


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("src,dst", [(FP16, FP8_E4M3), (FP16, FP8_E5M2), (BF16, FP8_E4M3), (BF16, FP8_E5M2),
                                     (BF16, FP16)], ids=str)
def test_16bit_conversions_exhaustive(src, dst, mode):
    """Every 16-bit pattern converted to a narrower format, against the table-search oracle."""
    bits = np.arange(1 << 16, dtype=np.uint64)
    got, flags = fp.convert(bits, src, dst, mode)
    exp, exp_flags = table_convert_oracle(src, dst)(mode, bits)
    bad = np.nonzero((got != exp) | (flags != exp_flags))[0]
    assert bad.size == 0, [(hex(int(bits[i])), hex(int(got[i])), int(flags[i]), hex(int(exp[i])), int(exp_flags[i]))
                           for i in bad[:6]]
