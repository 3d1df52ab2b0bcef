"""Independent oracles for tests of tensorforge.golden.fp.

* Berkeley SoftFloat (``softfloatpy``), one scalar call per vector, tininess after rounding,
  rounding mode set per call batch. Formats SoftFloat lacks are reached exactly:
  - BF16 operations: the f32 operation in round-toward-zero with the inexact flag jammed
    into the LSB (round-to-odd; f32 has >= 2 more bits than bf16 everywhere, so one more
    rounding with ``f32_to_bf16`` in the target mode is a correct single rounding, Boldo &
    Melquiond), f32 overflow handled explicitly (see ``_odd_then``).
  - FP8 inputs of a mixed FMA: e5m2 is the top byte of binary16 (bit shift, keeps sNaNs);
    e4m3fn -> float16 with ml_dtypes (exact); then ``f16_to_f32``.
* ``round_by_table``: rounds exact float64 values to a small format (<= 2^20 finite values)
  by searching the sorted list of its representable values -- no bit manipulation shared
  with the model. Tininess and overflow are decided on the same tables extended with an
  unbounded exponent range.
"""

from __future__ import annotations

import numpy as np
import softfloatpy as sf

import ml_dtypes

from tensorforge.golden import fp
from tensorforge.golden.formats import FloatFormat

SF_MODE = {fp.RNE: sf.RoundingMode.NEAR_EVEN, fp.RTZ: sf.RoundingMode.MIN_MAG, fp.RDN: sf.RoundingMode.MIN,
           fp.RUP: sf.RoundingMode.MAX, fp.RMM: sf.RoundingMode.NEAR_MAX_MAG}
INEXACT, UNDERFLOW, OVERFLOW, INVALID = 1, 2, 4, 16

_F16, _F32, _F64, _BF16 = sf.Float16.from_bytes, sf.Float32.from_bytes, sf.Float64.from_bytes, sf.BFloat16.from_bytes


def _setup(mode):
    sf.set_tininess_mode(sf.TininessMode.AFTER_ROUNDING)
    sf.set_rounding_mode(SF_MODE[mode])


def _int(x) -> int:
    return int.from_bytes(x.to_bytes(), "big")


# loaders: python int bits -> softfloat object of the operation's format (may raise flags)
def _ld_f16(v):
    return _F16(v.to_bytes(2, "big"))


def _ld_f32(v):
    return _F32(v.to_bytes(4, "big"))


def _ld_f64(v):
    return _F64(v.to_bytes(8, "big"))


def _ld_f16_as_f32(v):
    return sf.f16_to_f32(_F16(v.to_bytes(2, "big")))


def _ld_bf16_as_f32(v):
    return sf.bf16_to_f32(_BF16(v.to_bytes(2, "big")))


def _ld_tf32_as_f32(v):
    return _F32((v & 0xFFFFE000).to_bytes(4, "big"))


def _ld_e5m2_as_f32(v):
    return sf.f16_to_f32(_F16((v << 8).to_bytes(2, "big")))


_E4M3_TO_F16 = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float16).view(np.uint16)


def _ld_e4m3_as_f32(v):
    return sf.f16_to_f32(_F16(int(_E4M3_TO_F16[v]).to_bytes(2, "big")))


LOADERS = {"f16": _ld_f16, "f32": _ld_f32, "f64": _ld_f64, "f16>f32": _ld_f16_as_f32,
           "bf16>f32": _ld_bf16_as_f32, "tf32>f32": _ld_tf32_as_f32, "e5m2>f32": _ld_e5m2_as_f32,
           "e4m3>f32": _ld_e4m3_as_f32}

OPS = {
    ("mul_add", "f16"): sf.f16_mul_add, ("mul_add", "f32"): sf.f32_mul_add, ("mul_add", "f64"): sf.f64_mul_add,
    ("mul", "f16"): sf.f16_mul, ("mul", "f32"): sf.f32_mul, ("mul", "f64"): sf.f64_mul,
    ("add", "f16"): sf.f16_add, ("add", "f32"): sf.f32_add, ("add", "f64"): sf.f64_add,
}


def softfloat(op: str, width: str, loaders, mode, *arrays):
    """Run SoftFloat ``op`` ('mul_add', 'mul', 'add') in ``width`` ('f16', 'f32', 'f64') over
    arrays of bits, one loader name per operand. Returns (bits uint64, flags uint8)."""
    _setup(mode)
    fn = OPS[(op, width)]
    lds = [LOADERS[name] for name in loaders]
    cols = [np.asarray(a).astype(np.uint64).tolist() for a in arrays]
    n = len(cols[0])
    out = np.empty(n, dtype=np.uint64)
    flg = np.empty(n, dtype=np.uint8)
    setf, getf = sf.set_exception_flags, sf.get_exception_flags
    if len(lds) == 3:
        la, lb, lc = lds
        for i, (x, y, z) in enumerate(zip(*cols)):
            setf(0)
            out[i] = _int(fn(la(x), lb(y), lc(z)))
            flg[i] = getf()
    else:
        la, lb = lds
        for i, (x, y) in enumerate(zip(*cols)):
            setf(0)
            out[i] = _int(fn(la(x), lb(y)))
            flg[i] = getf()
    return out, flg


def softfloat_bf16(op: str, mode, *arrays):
    """BF16 ``op`` with a single rounding to bf16: f32 op with round-to-odd, then f32_to_bf16.

    The f32 op runs in RTZ; if inexact, its LSB is forced to 1 (round to odd). Exact results
    are recomputed in the target mode (only the sign of an exact zero can differ). If the f32
    op overflowed, the exact value is >= 2^128, beyond every bf16 rounding threshold: the
    bf16 result is the target mode's overflow result, obtained by converting the f32 op's
    target-mode result (inf or max f32), with flags overflow|inexact."""
    fn = OPS[(op, "f32")]
    cols = [np.asarray(a).astype(np.uint64).tolist() for a in arrays]
    n = len(cols[0])
    out = np.empty(n, dtype=np.uint64)
    flg = np.empty(n, dtype=np.uint8)
    setf, getf = sf.set_exception_flags, sf.get_exception_flags
    sf.set_tininess_mode(sf.TininessMode.AFTER_ROUNDING)
    rtz, target = SF_MODE[fp.RTZ], SF_MODE[mode]
    for i, ops in enumerate(zip(*cols)):
        sf.set_rounding_mode(rtz)
        setf(0)
        args = [_ld_bf16_as_f32(v) for v in ops]   # an sNaN raises invalid here, as in the mixed case
        r = fn(*args)
        f = getf()
        sf.set_rounding_mode(target)
        if f & OVERFLOW:
            setf(0)
            r = fn(*args)
            out[i] = _int(sf.f32_to_bf16(r))
            flg[i] = OVERFLOW | INEXACT
            continue
        if f & INEXACT:
            r = _F32((_int(r) | 1).to_bytes(4, "big"))
        else:
            r = fn(*args)
        setf(0)
        out[i] = _int(sf.f32_to_bf16(r))
        flg[i] = (f & INVALID) | getf()
    return out, flg


_CONVERTERS = {
    ("f32", "f16"): (_ld_f32, sf.f32_to_f16), ("f32", "bf16"): (_ld_f32, sf.f32_to_bf16),
    ("f16", "f32"): (_ld_f16, sf.f16_to_f32), ("bf16", "f32"): (lambda v: _BF16(v.to_bytes(2, "big")), sf.bf16_to_f32),
    ("f64", "f32"): (_ld_f64, sf.f64_to_f32), ("f64", "f16"): (_ld_f64, sf.f64_to_f16),
    ("f32", "f64"): (_ld_f32, sf.f32_to_f64), ("f16", "f64"): (_ld_f16, sf.f16_to_f64),
    ("f16", "bf16"): (_ld_f16_as_f32, sf.f32_to_bf16),            # f16 -> f32 is exact
    ("bf16", "f16"): (_ld_bf16_as_f32, sf.f32_to_f16),            # bf16 -> f32 is exact
}


def softfloat_convert(src: str, dst: str, mode, bits):
    """SoftFloat conversion src -> dst ('f16', 'bf16', 'f32', 'f64'). Returns (bits, flags)."""
    _setup(mode)
    ld, cv = _CONVERTERS[(src, dst)]
    col = np.asarray(bits).astype(np.uint64).tolist()
    out = np.empty(len(col), dtype=np.uint64)
    flg = np.empty(len(col), dtype=np.uint8)
    setf, getf = sf.set_exception_flags, sf.get_exception_flags
    for i, x in enumerate(col):
        setf(0)
        out[i] = _int(cv(ld(x)))
        flg[i] = getf()
    return out, flg


# ---------------------------------------------------------------------------------------------
# table oracle for small formats
# ---------------------------------------------------------------------------------------------
def _field_value(fmt: FloatFormat, code: np.ndarray) -> np.ndarray:
    """Value of non-negative magnitude codes (exp|frac) by the textbook formula, *without*
    any finite/NaN interpretation: code = E*2^M + m -> 2^(max(E,1)-bias) * (int(E>0) + m/2^M).
    Codes past the format's end continue the grid (unbounded exponent above)."""
    M = fmt.man_bits
    E = code >> M
    m = code & ((1 << M) - 1)
    lead = (E > 0).astype(np.float64)
    return np.ldexp(lead + m / float(1 << M), (np.maximum(E, 1) - fmt.bias).astype(np.int32))


def value_of(bits, fmt: FloatFormat) -> np.ndarray:
    """Exact float64 value of bit patterns by the textbook formula (NaN -> quiet NaN with the
    quiet bit copied from the input so that sNaNs stay signaling in float64, inf -> +-inf)."""
    b = np.asarray(bits, dtype=np.uint64) >> np.uint64(fmt.pad_bits)
    M = fmt.man_bits
    mag = (b & np.uint64((1 << (fmt.exp_bits + M)) - 1)).astype(np.int64)
    neg = ((b >> np.uint64(fmt.exp_bits + M)) & np.uint64(1)).astype(bool)
    v = _field_value(fmt, mag)
    E = mag >> M
    m = mag & ((1 << M) - 1)
    if fmt.has_inf:
        inf = (E == fmt.exp_max_field) & (m == 0)
        nan = (E == fmt.exp_max_field) & (m != 0)
        quiet = (m >> (M - 1)) & 1 == 1
    else:
        inf = np.zeros(mag.shape, dtype=bool)
        nan = mag == (1 << (fmt.exp_bits + M)) - 1
        quiet = nan
    v = np.where(inf, np.inf, v)
    v = np.where(neg, -v, v)
    qnan = np.uint64(0x7FF8000000000000).view(np.float64)
    snan = np.uint64(0x7FF4000000000000).view(np.float64)
    return np.where(nan, np.where(quiet, qnan, snan), v)


class TableRounder:
    """Round exact float64 magnitudes to ``fmt`` by table search (independent of golden.fp)."""

    def __init__(self, fmt: FloatFormat):
        self.fmt = fmt
        M = fmt.man_bits
        top_field = fmt.exp_max_field if not fmt.has_inf else fmt.exp_max_field - 1
        self.max_code = (top_field << M) | ((1 << M) - 1 - (0 if fmt.has_inf else 1))
        n_codes = (top_field + 3) << M                     # two binades beyond the top: unbounded
        self.codes = np.arange(n_codes, dtype=np.int64)
        self.values = _field_value(fmt, self.codes)          # strictly increasing
        assert np.all(np.diff(self.values) > 0)
        # unbounded-below grid of the binade just under 2^emin (for tininess after rounding)
        self.emin_val = 2.0 ** fmt.emin
        k = np.arange((1 << M) + 1, dtype=np.float64)
        self.tiny_grid = np.ldexp(1.0 + k / (1 << M), fmt.emin - 1)   # last entry = 2^emin

    @staticmethod
    def _pick(values, mag, neg, mode, parity):
        """Index of the rounded value of mag (>= 0) in the sorted table ``values``."""
        hi = np.searchsorted(values, mag, side="left")
        hi = np.minimum(hi, len(values) - 1)
        exact = values[hi] == mag
        lo = np.where(exact, hi, hi - 1)
        lo_v, hi_v = values[lo], values[hi]
        mid = (lo_v + hi_v) / 2                                  # exact for <= 52-bit significands
        if mode == fp.RTZ:
            up = np.zeros(mag.shape, dtype=bool)
        elif mode == fp.RDN:
            up = neg
        elif mode == fp.RUP:
            up = ~neg
        elif mode == fp.RMM:
            up = mag >= mid
        else:
            up = (mag > mid) | ((mag == mid) & (parity(hi) == 0))
        return np.where(exact, hi, np.where(up, hi, lo)), ~exact

    def round(self, x: np.ndarray, mode):
        """float64 values (finite) -> (bits of fmt as uint64, flags)."""
        fmt = self.fmt
        x = np.asarray(x, dtype=np.float64)
        neg = np.signbit(x)
        mag = np.abs(x)
        idx, inexact = self._pick(self.values, mag, neg, mode, lambda i: i & 1)
        overflow = idx > self.max_code
        code = idx.astype(np.uint64)
        if fmt.has_inf:
            to_inf = {fp.RNE: True, fp.RMM: True, fp.RTZ: False}.get(mode, None)
            if to_inf is None:
                to_inf = neg if mode == fp.RDN else ~neg
            ov_code = np.where(to_inf, np.uint64(fmt.exp_max_field << fmt.man_bits), np.uint64(self.max_code))
        else:
            ov_code = np.uint64(self.max_code)
        code = np.where(overflow, ov_code, code)
        bits = (neg.astype(np.uint64) << np.uint64(fmt.storage_bits - 1)) | (code << np.uint64(fmt.pad_bits))
        if not fmt.has_inf and mode in (fp.RNE, fp.RMM):
            bits = np.where(overflow, np.uint64(fmt.canonical_nan), bits)
        # tininess after rounding (unbounded exponent range)
        tiny = (mag > 0) & (mag < self.emin_val / 2)
        edge = (mag >= self.emin_val / 2) & (mag < self.emin_val)
        if np.any(edge):
            j, _ = self._pick(self.tiny_grid, mag[edge], neg[edge], mode, lambda i: i & 1)
            tiny[edge] = j < len(self.tiny_grid) - 1
        flags = (inexact | overflow).astype(np.uint8) * INEXACT | (tiny & inexact).astype(np.uint8) * UNDERFLOW \
            | overflow.astype(np.uint8) * OVERFLOW
        return bits, flags


# ---------------------------------------------------------------------------------------------
# operand generators
# ---------------------------------------------------------------------------------------------
def special_values(fmt: FloatFormat) -> list[int]:
    """Special bit patterns of ``fmt``: zeros, subnormal and normal extremes, ones, inf, NaNs."""
    M = fmt.man_bits
    mfull = (1 << M) - 1
    pk = fmt.pack
    v = [pk(0, 0, 0), pk(0, 0, 1), pk(0, 0, mfull), pk(0, 0, 1 << (M - 1)), fmt.min_normal,
         pk(0, 1, 1), fmt.max_finite, fmt.max_finite - (1 << fmt.pad_bits),
         pk(0, fmt.bias, 0), pk(0, fmt.bias, 1), pk(0, fmt.bias - 1, mfull), pk(0, fmt.bias + 1, 0),
         pk(0, fmt.bias, 1 << (M - 1)), pk(0, 2, 0), pk(0, fmt.exp_max_field - 1, 0), fmt.canonical_nan]
    if fmt.has_inf:
        v += [fmt.inf, pk(0, fmt.exp_max_field, mfull)]                   # inf, qNaN with payload
        if M >= 2:
            v += [pk(0, fmt.exp_max_field, 1), pk(0, fmt.exp_max_field, (1 << (M - 1)) - 1)]  # sNaNs
    return sorted({x | s for x in v for s in (0, fmt.sign_mask)})


def _special_mantissas(M: int) -> np.ndarray:
    mfull = (1 << M) - 1
    half = 1 << (M - 1)
    return np.array(sorted(v for v in {0, 1, 2, mfull, mfull - 1, half, half - 1, half + 1} if 0 <= v <= mfull),
                    dtype=np.uint64)


def operands(fmt: FloatFormat, n: int, rng) -> np.ndarray:
    """n bit patterns of ``fmt``: uniform bits, specials, exponents near 1, near the subnormal
    range and near overflow, with random or special (0, 1, ulp-around-half, all-ones) mantissas."""
    M, Ef = fmt.man_bits, fmt.exp_max_field
    kind = rng.integers(0, 100, n)
    sign = rng.integers(0, 2, n, dtype=np.uint64)
    man = rng.integers(0, 1 << M, n, dtype=np.uint64)
    sm = _special_mantissas(M)
    man = np.where(rng.integers(0, 10, n) < 3, sm[rng.integers(0, len(sm), n)], man)
    e = np.where(kind < 55, rng.integers(fmt.bias - 4, fmt.bias + 5, n),
                 np.where(kind < 75, rng.integers(0, 5, n), rng.integers(max(Ef - 4, 0), Ef + 1, n)))
    bits = ((sign << np.uint64(fmt.exp_bits) | e.astype(np.uint64)) << np.uint64(M) | man) << np.uint64(fmt.pad_bits)
    uniform = rng.integers(0, 1 << fmt.width, n, dtype=np.uint64) & ~np.uint64((1 << fmt.pad_bits) - 1)
    bits = np.where(kind < 35, uniform, bits)
    spec = np.array(special_values(fmt), dtype=np.uint64)
    bits = np.where(kind >= 92, spec[rng.integers(0, len(spec), n)], bits)
    if not fmt.has_inf:   # keep the mix meaningful: the all-ones binade is finite except S.1111.111
        pass
    return bits


def with_exponent(fmt: FloatFormat, ref_exp_field: np.ndarray, delta: np.ndarray, rng) -> np.ndarray:
    """Operands whose exponent field is ref + delta (clipped to the finite/subnormal range),
    random sign, special-or-random mantissa: aligns addends around the rounding position."""
    n = len(ref_exp_field)
    M = fmt.man_bits
    e = np.clip(ref_exp_field.astype(np.int64) + delta, 0, fmt.exp_max_field - 1).astype(np.uint64)
    sm = _special_mantissas(M)
    man = np.where(rng.integers(0, 2, n) == 0, sm[rng.integers(0, len(sm), n)],
                   rng.integers(0, 1 << M, n, dtype=np.uint64))
    sign = rng.integers(0, 2, n, dtype=np.uint64)
    return ((sign << np.uint64(fmt.exp_bits) | e) << np.uint64(M) | man) << np.uint64(fmt.pad_bits)


def exp_field(bits, fmt: FloatFormat) -> np.ndarray:
    return ((np.asarray(bits, dtype=np.uint64) >> np.uint64(fmt.pad_bits + fmt.man_bits))
            & np.uint64(fmt.exp_max_field)).astype(np.int64)
