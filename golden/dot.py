"""Bit-exact golden models of fused dot-product-add and tensor-core MMA (NUMERICS.md section 2).

``d = sum_{i<K} a_i * b_i + c`` with ``a_i, b_i`` in an input format (FP16, BF16, TF32, FP8
e4m3fn / e5m2, ...) and ``c, d`` in an accumulator format (FP32 by default). Three families of
semantics, each a small frozen dataclass:

:class:`Chain` (``"chain"``)
    K sequential IEEE fused multiply-adds in index order, ``acc <- c; acc <- round(a_i*b_i + acc)``
    (RNE), using :func:`tensorforge.golden.fp.fma`. What a systolic array of FMA PEs computes.
    Flags: the OR of the K FMAs' flags.

:class:`Exact` (``"exact"``)
    The exact real value of the whole sum, rounded once (RNE) to the accumulator format.
    IEEE special values: any NaN operand, 0*inf or inf - inf gives the canonical NaN; an exact
    zero is -0 only when every term (each product and c) is -0, else +0. Flags: invalid (sNaN
    operand, 0*inf in any lane, or inf - inf without a NaN operand), and inexact / underflow
    (tininess after rounding) / overflow of the single rounding.

:class:`Nvidia` (``Nvidia(F, L, e_zero, out_rounding, out_frac_bits)``)
    The truncating fused dot-product-add of NVIDIA tensor cores, the 9-step algorithm of
    NUMERICS.md section 2 (Fasi et al. 2021; Khattak & Mikaitis 2025; MMA-Sim):

    1. decode every input into a signed significand and exponent; normals have ``1 <= |s| < 2``,
       subnormals keep their exact value with the format's minimum exponent (no flush to zero);
    2. products exact and not renormalized: ``s_i = s_a*s_b`` (``|s_i| < 4``), ``e_i = e_a + e_b``;
       c is term K;
    3. a term whose significand is zero gets exponent ``e_zero``;
    4. ``E`` = max of all exponents of the block (largest exponent, not largest magnitude);
    5. each term is truncated toward zero (sign-magnitude) to ``F`` fraction bits at scale ``2^E``;
    6. the truncated terms are added exactly (enough carry bits that nothing can overflow);
    7. the sum ``* 2^E`` is normalized once and rounded: ``out_rounding="rtz"`` truncates (FP32
       output on real GPUs; subnormal results at the format's granularity, 2^-149 for FP32;
       overflow gives +-inf, *not* max finite), ``"rne"`` rounds to nearest even (FP16 output;
       overflow gives +-inf). ``out_frac_bits`` (RTZ only) first truncates the normalized sum to
       that many fraction bits (13 for Hopper FP8, see below);
    8. a NaN result is the all-ones positive pattern (0x7FFFFFFF FP32, 0x7FFF FP16); any zero
       result (exact or rounded to zero) is +0; NaN / inf inputs propagate as in IEEE (NaN in,
       inf - inf or 0*inf -> NaN; otherwise an infinite term gives that infinity);
    9. ``K > L``: blocks of ``L`` terms in index order, the rounded ``d`` of a block being the
       ``c`` of the next. A block with fewer than ``L`` products (``K < L`` or the last block
       when ``L`` does not divide ``K``) behaves as an ``L``-lane unit whose unused lanes hold
       zero products: ``e_zero`` takes part in the max of step 4. (With every preset ``e_zero``
       is below the accumulator's minimum exponent, so this changes nothing unless ``c`` is
       zero, and then ``c`` already contributes ``e_zero``.)

    Flags: the tensor-core hardware raises none; the returned flags are all zero.

    Hopper FP8 (``hopper_fp8``): the measured FP32 output keeps only 13 fraction bits. This
    model truncates the normalized exact block sum toward zero to 13 fraction bits, then to
    FP32 (RTZ): the result quantum is ``max(2^(e-13), 2^-149)`` for a result in binade
    ``2^e``, i.e. FP32's exponent range and subnormal floor with a 14-bit significand. Blocks
    chain through this truncated value.

Presets (the first four: FP16/BF16 inputs (FP8 for hopper_fp8), FP32 output, RTZ; the ``_fp16``
variants: FP16 output, RNE):

============  ====  ====  ======  =================================================
preset         L     F    e_zero  note
============  ====  ====  ======  =================================================
volta          4    23    -131    V100 ``mma.m8n8k4``
ampere         8    24    -132    A100, also Turing for k=8 shapes
hopper        16    25    -133    H100
hopper_fp8    32    13    -133    FP8 inputs; FP32 output truncated to 13 fraction bits
volta_fp16     4    23     -19    FP16 output, RNE
ampere_fp16    8    24     -20    FP16 output, RNE
hopper_fp16   16    25     -21    FP16 output, RNE
============  ====  ====  ======  =================================================

:func:`parse_semantics` picks the ``_fp16`` variant automatically when the accumulator is FP16.

Bit arrays follow :mod:`tensorforge.golden.fp`: any integer array-like, only the container's
``width`` low bits are used (TF32: the 13 low bits are ignored); results are ``uint32`` for
32-bit containers, ``uint16`` for 16-bit ones; flags ``uint8`` (TestFloat bit order).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from . import fp
from .formats import FP16, FP32, FloatFormat

__all__ = [
    "Chain", "Exact", "Nvidia", "Semantics",
    "CHAIN", "EXACT", "VOLTA", "AMPERE", "HOPPER", "HOPPER_FP8", "VOLTA_FP16", "AMPERE_FP16", "HOPPER_FP16",
    "SEMANTICS_PRESETS", "SEMANTICS_CHOICES", "parse_semantics",
    "dot_product_add", "mma", "nvidia_nan", "random_dot_operands",
]

_OUT_ROUNDINGS = ("rtz", "rne")
_F_MAX = 48          # int64 datapath: terms < 2^(F+2), L+1 of them
_L_MAX = 256
_E_ZERO_LIMIT = 1 << 20
_IN_MAN_MAX = 30     # exact products of significands must fit int64


def _check_int(name, value, lo, hi, what=None):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= hi:
        what = what or f"an integer between {lo} and {hi}"
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------------
# semantics objects
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chain:
    """K sequential IEEE FMAs in index order, RNE (``acc <- round(a_i*b_i + acc)``)."""

    family = "chain"

    def __str__(self):
        return "chain"

    @property
    def tag(self) -> str:
        """Short identifier for file and module names."""
        return "chain"


@dataclass(frozen=True)
class Exact:
    """One correctly rounded (RNE) result of the exact sum, IEEE special-value rules."""

    family = "exact"

    def __str__(self):
        return "exact"

    @property
    def tag(self) -> str:
        return "exact"


@dataclass(frozen=True)
class Nvidia:
    """NVIDIA tensor-core truncating fused dot-product-add (NUMERICS.md section 2, steps 1-9).

    Parameters
    ----------
    F : int
        Fraction bits kept after alignment to the block's maximum exponent, 1..48.
    L : int
        Products fused per block (K > L chains blocks), 1..256.
    e_zero : int
        Exponent given to zero terms (takes part in the block maximum).
    out_rounding : str
        ``"rtz"`` (FP32 output on the GPUs: truncation, overflow -> inf) or ``"rne"``.
    out_frac_bits : int or None
        RTZ only: truncate the normalized result to this many fraction bits before storing it
        in the accumulator format (13 for Hopper FP8). None = the accumulator's own width.
    name : str or None
        Preset name (printing only; not part of equality).
    """

    F: int
    L: int
    e_zero: int
    out_rounding: str = "rtz"
    out_frac_bits: int | None = None
    name: str | None = field(default=None, compare=False)

    family = "nvidia"

    def __post_init__(self):
        _check_int("F", self.F, 1, _F_MAX)
        _check_int("L", self.L, 1, _L_MAX)
        _check_int("e_zero", self.e_zero, -_E_ZERO_LIMIT, _E_ZERO_LIMIT)
        if self.out_rounding not in _OUT_ROUNDINGS:
            raise ValueError(f"out_rounding must be one of {', '.join(_OUT_ROUNDINGS)}, not {self.out_rounding!r}")
        if self.out_frac_bits is not None:
            _check_int("out_frac_bits", self.out_frac_bits, 1, 52)
            if self.out_rounding != "rtz":
                raise ValueError(f"out_frac_bits requires out_rounding 'rtz', not {self.out_rounding!r} "
                                 f"(double rounding to nearest is not modelled)")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a str or None, not {self.name!r}")

    def __str__(self):
        if self.name is not None:
            return self.name
        extra = "" if self.out_frac_bits is None else f", out_frac_bits={self.out_frac_bits}"
        return f"nvidia(F={self.F}, L={self.L}, e_zero={self.e_zero}, {self.out_rounding}{extra})"

    @property
    def tag(self) -> str:
        """Short identifier for file and module names: the preset name, else the parameters."""
        if self.name is not None:
            return self.name
        ez = f"m{-self.e_zero}" if self.e_zero < 0 else str(self.e_zero)
        out = "" if self.out_frac_bits is None else f"o{self.out_frac_bits}"
        return f"nvf{self.F}l{self.L}z{ez}{self.out_rounding}{out}"


Semantics = Chain | Exact | Nvidia

CHAIN = Chain()
EXACT = Exact()
VOLTA = Nvidia(F=23, L=4, e_zero=-131, out_rounding="rtz", name="volta")
AMPERE = Nvidia(F=24, L=8, e_zero=-132, out_rounding="rtz", name="ampere")
HOPPER = Nvidia(F=25, L=16, e_zero=-133, out_rounding="rtz", name="hopper")
HOPPER_FP8 = Nvidia(F=13, L=32, e_zero=-133, out_rounding="rtz", out_frac_bits=13, name="hopper_fp8")
VOLTA_FP16 = Nvidia(F=23, L=4, e_zero=-19, out_rounding="rne", name="volta_fp16")
AMPERE_FP16 = Nvidia(F=24, L=8, e_zero=-20, out_rounding="rne", name="ampere_fp16")
HOPPER_FP16 = Nvidia(F=25, L=16, e_zero=-21, out_rounding="rne", name="hopper_fp16")

#: name -> semantics object
SEMANTICS_PRESETS = {
    "chain": CHAIN, "exact": EXACT,
    "volta": VOLTA, "ampere": AMPERE, "hopper": HOPPER, "hopper_fp8": HOPPER_FP8,
    "volta_fp16": VOLTA_FP16, "ampere_fp16": AMPERE_FP16, "hopper_fp16": HOPPER_FP16,
}
#: the names a CLI offers (``_fp16`` variants are chosen from the accumulator format)
SEMANTICS_CHOICES = ("chain", "exact", "volta", "ampere", "hopper", "hopper_fp8")
_FP16_VARIANT = {"volta": "volta_fp16", "ampere": "ampere_fp16", "hopper": "hopper_fp16"}


def parse_semantics(name, F=None, L=None, *, acc_format=None):
    """Semantics object from a CLI name with optional ``F`` / ``L`` overrides.

    ``name``: ``chain``, ``exact``, ``volta``, ``ampere``, ``hopper``, ``hopper_fp8`` (or a
    ``*_fp16`` variant, or an existing semantics object, returned as is when no override is
    given). With ``acc_format`` FP16 (e5m10) the nvidia presets ``volta/ampere/hopper`` become
    their FP16-output variants (e_zero -19/-20/-21, RNE). Overrides that change F or L make a
    custom :class:`Nvidia` (no preset name); they are a ValueError for ``chain``/``exact``.
    """
    if isinstance(name, (Chain, Exact, Nvidia)):
        sem = name
    elif isinstance(name, str):
        key = name.strip().lower()
        if key not in SEMANTICS_PRESETS:
            raise ValueError(f"semantics must be one of {', '.join(SEMANTICS_PRESETS)}, not {name!r}")
        if acc_format is not None and acc_format == FP16 and key in _FP16_VARIANT:
            key = _FP16_VARIANT[key]
        sem = SEMANTICS_PRESETS[key]
    else:
        raise TypeError(f"semantics must be a name ({', '.join(SEMANTICS_CHOICES)}) or a Chain/Exact/Nvidia "
                        f"object, not {name!r}")
    if F is None and L is None:
        return sem
    if not isinstance(sem, Nvidia):
        raise ValueError(f"F and L apply only to nvidia semantics, not to {sem}")
    F = sem.F if F is None else F
    L = sem.L if L is None else L
    custom = Nvidia(F=F, L=L, e_zero=sem.e_zero, out_rounding=sem.out_rounding, out_frac_bits=sem.out_frac_bits)
    return sem if custom == sem else custom


def nvidia_nan(acc_format: FloatFormat) -> int:
    """NaN pattern of the nvidia family: positive, all-ones exponent and fraction
    (0x7FFFFFFF FP32, 0x7FFF FP16)."""
    return acc_format.pack(0, acc_format.exp_max_field, (1 << acc_format.man_bits) - 1)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _bitlen64(x):
    """Bit length of non-negative int64 values (0 for 0), exact."""
    x = np.asarray(x, dtype=np.int64)
    e = np.frexp(x.astype(np.float64))[1].astype(np.int64)    # one too big if the conversion rounded up
    over = (x >> np.maximum(e - 1, 0)) == 0
    return e - (over & (x != 0))


def _shift(x, s):
    """x * 2**s truncated toward zero, for non-negative int64 x and int64 s; callers guarantee
    that left shifts keep the value below 2^63."""
    left = np.clip(s, 0, 62)
    right = np.clip(-s, 0, 63)
    return np.where(s >= 0, x << left, x >> right)


@functools.lru_cache(maxsize=16)
def _decode_table(fmt: FloatFormat):
    """classify + decode of every bit pattern of a format of at most 16 bits (a lookup table)."""
    allbits = np.arange(1 << fmt.width, dtype=np.uint64)
    return fp.classify(allbits, fmt), fp.decode(allbits, fmt)


def _classify_decode(bits, fmt: FloatFormat):
    """(Classes, (sign, sig, exp)) of bit patterns, via a lookup table for narrow formats."""
    if fmt.width <= 16:
        cls, (s, m, e) = _decode_table(fmt)
        idx = np.asarray(bits).astype(np.int64) & fmt.mask
        return fp.Classes(*(x[idx] for x in cls)), (s[idx], m[idx], e[idx])
    return fp.classify(bits, fmt), fp.decode(bits, fmt)


class _Terms:
    """Decoded products and addend of a batch: arrays of shape (n, k) and (n,)."""

    def __init__(self, a, b, c, in_format, acc_format):
        ca, (sa, ma, ea) = _classify_decode(a, in_format)
        cb, (sb, mb, eb) = _classify_decode(b, in_format)
        cc, (sc, mc, ec) = _classify_decode(c, acc_format)
        lane_nan = ca.nan | cb.nan | (ca.inf & cb.zero) | (ca.zero & cb.inf)
        lane_inf = (ca.inf | cb.inf) & ~lane_nan
        self.prod_sign = (sa ^ sb).astype(np.uint8)
        finite_lane = ~(lane_nan | lane_inf)
        self.prod_sig = np.where(finite_lane, ma * mb, 0).astype(np.int64)
        self.prod_lsb = np.where(finite_lane, ea + eb, 0).astype(np.int64)
        c_finite = ~(cc.nan | cc.inf)
        self.c_sign = sc.astype(np.uint8)
        self.c_sig = np.where(c_finite, mc, 0).astype(np.int64)
        self.c_lsb = np.where(c_finite, ec, 0).astype(np.int64)
        # special values
        self.any_nan_operand = ca.nan.any(axis=1) | cb.nan.any(axis=1) | cc.nan
        self.any_snan = ca.snan.any(axis=1) | cb.snan.any(axis=1) | cc.snan
        self.zero_times_inf = ((ca.inf & cb.zero) | (ca.zero & cb.inf)).any(axis=1)
        pos_inf = (lane_inf & (self.prod_sign == 0)).any(axis=1) | (cc.inf & (sc == 0))
        neg_inf = (lane_inf & (self.prod_sign == 1)).any(axis=1) | (cc.inf & (sc == 1))
        self.inf_minus_inf = pos_inf & neg_inf
        self.is_nan = self.any_nan_operand | self.zero_times_inf | self.inf_minus_inf
        self.is_inf = ~self.is_nan & (pos_inf | neg_inf)
        self.inf_sign = np.where(pos_inf, 0, 1).astype(np.uint8)
        # zero-sign rule of an exact sum: -0 only if every term is -0
        prod_zero = ca.zero | cb.zero
        self.all_terms_neg_zero = (prod_zero & (self.prod_sign == 1)).all(axis=1) & cc.zero & (sc == 1)


def _inf_bits(sign, acc_format):
    dt = fp.bits_dtype(acc_format)
    return np.where(sign == 1, dt(acc_format.inf | acc_format.sign_mask), dt(acc_format.inf)).astype(dt)


def _check_operands(a, b, c):
    a = np.asarray(a)
    b = np.asarray(b)
    c = np.asarray(c)
    if a.ndim < 1:
        raise ValueError(f"a must have shape (..., K), not {a.shape}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (..., K), not {a.shape} and {b.shape}")
    if c.shape != a.shape[:-1]:
        raise ValueError(f"c must have shape {a.shape[:-1]} (the batch shape of a), not {c.shape}")
    if a.shape[-1] < 1:
        raise ValueError("K (the last axis of a and b) must be at least 1, not 0")
    return a, b, c


def _check_formats(in_format, acc_format, sem):
    if not isinstance(in_format, FloatFormat):
        raise TypeError(f"in_format must be a FloatFormat (e.g. FP16), not {in_format!r}")
    if not isinstance(acc_format, FloatFormat):
        raise TypeError(f"acc_format must be a FloatFormat (e.g. FP32), not {acc_format!r}")
    if in_format.man_bits > _IN_MAN_MAX:
        raise ValueError(f"in_format must have at most {_IN_MAN_MAX} fraction bits, not {in_format} "
                         f"({in_format.man_bits})")
    if isinstance(sem, (Exact, Nvidia)) and not acc_format.has_inf:
        raise ValueError(f"acc_format must have infinities for {sem.family} semantics, not {acc_format}")
    if isinstance(sem, Nvidia) and sem.out_frac_bits is not None and sem.out_frac_bits > acc_format.man_bits:
        raise ValueError(f"out_frac_bits of {sem} must be at most the {acc_format.man_bits} fraction bits of "
                         f"acc_format {acc_format}, not {sem.out_frac_bits}")


# ---------------------------------------------------------------------------------------------
# the three families (flat batch: a, b (n, k) uint64, c (n,))
# ---------------------------------------------------------------------------------------------
def _chain(a, b, c, in_format, acc_format):
    acc = c
    flags = np.zeros(c.shape, dtype=np.uint8)
    for i in range(a.shape[1]):
        acc, fl = fp.fma(a[:, i], b[:, i], acc, in_format, acc_format, fp.RNE)
        flags |= fl
    return acc.astype(fp.bits_dtype(acc_format)), flags


def _exact(a, b, c, in_format, acc_format):
    n, k = a.shape
    t = _Terms(a, b, c, in_format, acc_format)
    sig = np.concatenate([t.prod_sig, t.c_sig[:, None]], axis=1)
    lsb = np.concatenate([t.prod_lsb, t.c_lsb[:, None]], axis=1)
    sgn = np.concatenate([t.prod_sign, t.c_sign[:, None]], axis=1)
    nonzero = sig != 0
    top = np.where(nonzero, lsb + _bitlen64(sig), np.iinfo(np.int64).min // 4)
    lo = np.where(nonzero, lsb, np.iinfo(np.int64).max // 4)
    min_lsb = lo.min(axis=1)
    spread = top.max(axis=1) - min_lsb
    any_nz = nonzero.any(axis=1)
    min_lsb = np.where(any_nz, min_lsb, 0)
    headroom = 62 - math.ceil(math.log2(k + 1))
    fast = ~any_nz | (spread <= headroom)

    out_sign = np.zeros(n, dtype=np.uint8)
    out_bits = np.zeros(n, dtype=fp.bits_dtype(acc_format))
    out_flags = np.zeros(n, dtype=np.uint8)

    idx = np.nonzero(fast)[0]
    if idx.size:
        sh = np.clip(lsb[idx] - min_lsb[idx, None], 0, 62)
        v = np.where(sgn[idx] == 1, -(sig[idx] << sh), sig[idx] << sh)
        total = v.sum(axis=1)
        sign = (total < 0).astype(np.uint8)
        mag = np.abs(total)
        sign = np.where(total == 0, t.all_terms_neg_zero[idx].astype(np.uint8), sign)
        bits, fl = fp.encode(sign, mag, min_lsb[idx], acc_format, fp.RNE)
        out_bits[idx], out_flags[idx] = bits, fl
        out_sign[idx] = sign
    idx = np.nonzero(~fast)[0]
    if idx.size:   # wide exponent spread: exact Python big integers
        sh = np.maximum(lsb[idx] - min_lsb[idx, None], 0).astype(object)
        v = sig[idx].astype(object) << sh
        v = np.where(sgn[idx] == 1, -v, v)
        total = v.sum(axis=1)
        neg = np.array([int(x) < 0 for x in total], dtype=bool)
        zero = np.array([int(x) == 0 for x in total], dtype=bool)
        mag = np.where(neg, -total, total)
        sign = np.where(zero, t.all_terms_neg_zero[idx], neg).astype(np.uint8)
        bits, fl = fp.encode(sign, mag, min_lsb[idx], acc_format, fp.RNE)
        out_bits[idx], out_flags[idx] = bits, fl

    special = t.is_nan | t.is_inf
    out_bits = np.where(t.is_inf, _inf_bits(t.inf_sign, acc_format), out_bits)
    out_bits = np.where(t.is_nan, out_bits.dtype.type(acc_format.canonical_nan), out_bits)
    invalid = t.any_snan | t.zero_times_inf | (t.inf_minus_inf & ~t.any_nan_operand)
    out_flags = np.where(special, 0, out_flags) | invalid.astype(np.uint8) * fp.FLAG_INVALID
    return out_bits.astype(fp.bits_dtype(acc_format)), out_flags.astype(np.uint8)


def _nvidia_block(a, b, c, in_format, acc_format, sem):
    """One block (k <= L products) of the nvidia algorithm; returns d bits."""
    n, k = a.shape
    t = _Terms(a, b, c, in_format, acc_format)
    F = sem.F
    # step 2/3: exponents of the (unnormalized) significands' units place; zero terms -> e_zero
    prod_exp = np.where(t.prod_sig != 0, t.prod_lsb + 2 * in_format.man_bits, sem.e_zero)
    c_exp = np.where(t.c_sig != 0, t.c_lsb + acc_format.man_bits, sem.e_zero)
    # step 4: block maximum (unused lanes of an L-lane unit hold zero products)
    E = np.maximum(prod_exp.max(axis=1), c_exp)
    if k < sem.L:
        E = np.maximum(E, sem.e_zero)
    # step 5: truncate magnitudes to F fraction bits at scale 2^E
    tp = _shift(t.prod_sig, t.prod_lsb - E[:, None] + F)
    tc = _shift(t.c_sig, t.c_lsb - E + F)
    # step 6: exact signed sum (|term| < 2^(F+2), at most 257 terms: fits int64)
    total = np.where(t.prod_sign == 1, -tp, tp).sum(axis=1) + np.where(t.c_sign == 1, -tc, tc)
    sign = (total < 0).astype(np.uint8)
    mag = np.abs(total)
    lsb = E - F
    # step 7: normalize once and round
    if sem.out_rounding == "rtz":
        if sem.out_frac_bits is not None and sem.out_frac_bits < acc_format.man_bits:
            drop = np.maximum(_bitlen64(mag) - (sem.out_frac_bits + 1), 0)
            mag = mag >> drop
            lsb = lsb + drop
        overflow = (mag != 0) & (_bitlen64(mag) - 1 + lsb > acc_format.emax)
        bits, _ = fp.encode(sign, mag, lsb, acc_format, fp.RTZ)
        bits = np.where(overflow, _inf_bits(sign, acc_format), bits)
    else:
        bits, _ = fp.encode(sign, mag, lsb, acc_format, fp.RNE)
    # step 8: any zero result is +0; NaN pattern all ones; infinities propagate
    dt = fp.bits_dtype(acc_format)
    is_zero = (bits & dt(acc_format.mask ^ acc_format.sign_mask)) == 0
    bits = np.where(is_zero, dt(0), bits)
    bits = np.where(t.is_inf, _inf_bits(t.inf_sign, acc_format), bits)
    bits = np.where(t.is_nan, dt(nvidia_nan(acc_format)), bits)
    return bits.astype(dt)


def _nvidia(a, b, c, in_format, acc_format, sem):
    acc = c
    for start in range(0, a.shape[1], sem.L):
        acc = _nvidia_block(a[:, start:start + sem.L], b[:, start:start + sem.L], acc, in_format, acc_format, sem)
    return acc, np.zeros(c.shape, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def dot_product_add(a, b, c, *, in_format: FloatFormat, acc_format: FloatFormat = FP32, semantics):
    """Fused dot-product-add ``d = sum_i a[..., i] * b[..., i] + c`` per batch element.

    Parameters
    ----------
    a, b : integer arrays of shape (..., K)
        Bit patterns of ``in_format`` (K >= 1).
    c : integer array of shape (...)
        Bit patterns of ``acc_format``.
    in_format, acc_format : FloatFormat
        Input and accumulator formats (acc default FP32). ``chain`` needs an ``acc_format`` at
        least as wide as ``in_format`` (see :func:`fp.fma`); ``exact`` and ``nvidia`` need an
        ``acc_format`` with infinities. ``in_format`` at most 30 fraction bits.
    semantics : Chain, Exact, Nvidia or a name accepted by :func:`parse_semantics`
        (a name is resolved with ``acc_format``, so ``"volta"`` with FP16 output is
        ``volta_fp16``).

    Returns
    -------
    (d, flags)
        ``d``: result bits, shape (...), dtype per ``acc_format`` (uint32 FP32, uint16 FP16).
        ``flags``: uint8 TestFloat-order exception flags: ``chain`` = OR of the K FMAs' flags,
        ``exact`` = flags of the single rounding plus invalid, ``nvidia`` = all zero (the
        hardware has none).

    Numerics: see the module docstring (NUMERICS.md section 2).
    """
    sem = parse_semantics(semantics, acc_format=acc_format if isinstance(acc_format, FloatFormat) else None)
    _check_formats(in_format, acc_format, sem)
    a, b, c = _check_operands(a, b, c)
    batch = c.shape
    k = a.shape[-1]
    n = int(np.prod(batch, dtype=np.int64))
    ua = np.asarray(a).reshape(n, k)
    ub = np.asarray(b).reshape(n, k)
    uc = np.asarray(c).reshape(n)
    if isinstance(sem, Chain):
        d, flags = _chain(ua, ub, uc, in_format, acc_format)
    elif isinstance(sem, Exact):
        d, flags = _exact(ua, ub, uc, in_format, acc_format)
    else:
        d, flags = _nvidia(ua, ub, uc, in_format, acc_format, sem)
    return d.reshape(batch), flags.reshape(batch)


def mma(A, B, C, *, in_format: FloatFormat, acc_format: FloatFormat = FP32, semantics):
    """Matrix multiply-accumulate ``D = A @ B + C`` on bit patterns.

    ``A`` (..., M, K) and ``B`` (..., K, N) in ``in_format``, ``C`` (..., M, N) in
    ``acc_format``; leading batch axes must match exactly. Every ``D[..., i, j]`` is one
    :func:`dot_product_add` of row ``A[..., i, :]``, column ``B[..., :, j]`` and ``C[..., i, j]``
    (so K > L chains blocks as specified). Returns ``(D, flags)`` of shape (..., M, N).
    """
    A = np.asarray(A)
    B = np.asarray(B)
    C = np.asarray(C)
    if A.ndim < 2 or B.ndim < 2:
        raise ValueError(f"A and B must be matrices (..., M, K) and (..., K, N), not shapes {A.shape} and {B.shape}")
    *bA, M, K = A.shape
    *bB, K2, N = B.shape
    if K != K2 or tuple(bA) != tuple(bB):
        raise ValueError(f"A (..., M, K) and B (..., K, N) do not fit: shapes {A.shape} and {B.shape}")
    if C.shape != (*bA, M, N):
        raise ValueError(f"C must have shape {(*bA, M, N)}, not {C.shape}")
    a = np.broadcast_to(A[..., :, None, :], (*bA, M, N, K))
    b = np.broadcast_to(np.swapaxes(B, -1, -2)[..., None, :, :], (*bA, M, N, K))
    return dot_product_add(a, b, C, in_format=in_format, acc_format=acc_format, semantics=semantics)


# ---------------------------------------------------------------------------------------------
# random operands for tests, benches and numerics
# ---------------------------------------------------------------------------------------------
def _special_pool(fmt: FloatFormat):
    """Interesting bit patterns of ``fmt`` (both signs): zeros, smallest/largest subnormal,
    smallest normal, one, largest finite, infinities and NaNs (quiet and signaling)."""
    m = (1 << fmt.man_bits) - 1
    pos = [0, fmt.min_subnormal, fmt.pack(0, 0, m), fmt.min_normal, fmt.pack(0, fmt.bias, 0),
           fmt.pack(0, fmt.bias, m), fmt.max_finite, fmt.canonical_nan]
    if fmt.has_inf:
        pos += [fmt.inf, fmt.pack(0, fmt.exp_max_field, 1)]      # +inf, a signaling NaN
    return np.array(pos + [p | fmt.sign_mask for p in pos], dtype=np.uint64)


def _clustered(rng, fmt: FloatFormat, exp_unbiased, spread, shape):
    """Finite values with unbiased exponents near ``exp_unbiased`` (broadcast), random fraction
    and sign; exponents clip into the format's range (subnormals when below emin)."""
    top = fmt.exp_max_field - (1 if fmt.has_inf else 0)
    field_ = np.clip(np.asarray(exp_unbiased) + fmt.bias + rng.integers(-spread, spread + 1, size=shape), 0, top)
    man = rng.integers(0, 1 << fmt.man_bits, size=shape, dtype=np.uint64)
    if not fmt.has_inf:   # avoid the NaN pattern S.1111.111
        man = np.where((field_ == top) & (man == (1 << fmt.man_bits) - 1), man - 1, man)
    sign = rng.integers(0, 2, size=shape, dtype=np.uint64)
    v = (((sign << fmt.exp_bits) | field_.astype(np.uint64)) << fmt.man_bits) | man
    return v << fmt.pad_bits


def random_dot_operands(rng, n, k, in_format: FloatFormat, acc_format: FloatFormat = FP32, *, specials=0.02):
    """Random ``(a, b, c)`` bit arrays of shapes (n, k), (n, k), (n,) that stress dot products.

    Each row is drawn by one of these recipes (roughly equal shares): uniform random bit
    patterns (every class, TF32 padding bits random too); exponent-clustered values (alignment
    with partial overlap); clustered products with ``c`` close to minus their sum (massive
    cancellation); pairwise cancelling products (a[i+1] ~ a[i], b[i+1] = -b[i]); values near
    the bottom of the range (subnormal inputs and products, subnormal c); independent random
    exponents (wide alignment shifts). In all but the uniform rows, 8% of the a and b
    elements become +-0. Then each element is replaced with probability ``specials`` by a
    special value (zeros, subnormal/normal/max extremes, inf, NaN, sNaN).
    ``rng`` is a numpy Generator; results are uint64 arrays.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {rng!r}")
    _check_int("n", n, 0, 1 << 40)
    _check_int("k", k, 1, 1 << 16)
    fi, fa = in_format, acc_format
    recipe = rng.integers(0, 6, size=n)
    a = np.zeros((n, k), dtype=np.uint64)
    b = np.zeros((n, k), dtype=np.uint64)
    c = np.zeros(n, dtype=np.uint64)

    def rows(r):
        return np.nonzero(recipe == r)[0]

    # 0: uniform bit patterns
    i = rows(0)
    a[i] = rng.integers(0, 1 << fi.width, size=(i.size, k), dtype=np.uint64)
    b[i] = rng.integers(0, 1 << fi.width, size=(i.size, k), dtype=np.uint64)
    c[i] = rng.integers(0, 1 << fa.width, size=i.size, dtype=np.uint64)
    # 1, 2, 3: clustered around a per-row centre (the product centre is twice the input centre)
    lo_in, hi_in = fi.emin - 2, fi.emax - 1
    for r in (1, 2, 3):
        i = rows(r)
        cen = rng.integers(lo_in, hi_in + 1, size=(i.size, 1))
        a[i] = _clustered(rng, fi, cen, 2, (i.size, k))
        b[i] = _clustered(rng, fi, cen // 2 if r == 1 else 0, 2, (i.size, k))
        if r == 3:   # pairwise cancellation
            for j in range(0, k - 1, 2):
                a[i, j + 1] = a[i, j] ^ rng.integers(0, 4, size=i.size, dtype=np.uint64) << fi.pad_bits
                b[i, j + 1] = b[i, j] ^ np.uint64(fi.sign_mask)
        prod_c = cen[:, 0] + (cen[:, 0] // 2 if r == 1 else 0)
        c[i] = _clustered(rng, fa, prod_c, 3, i.size)
        if r == 2 and i.size:   # c ~ -(sum of products), then jitter its last bits
            s = (fp.to_float64(a[i], fi) * fp.to_float64(b[i], fi)).sum(axis=1)
            with np.errstate(invalid="ignore", over="ignore"):
                cb_, _ = fp.from_float64(-np.nan_to_num(s, nan=0.0), fa, fp.RTZ)
            jitter = rng.integers(0, 8, size=i.size, dtype=np.uint64) << fa.pad_bits
            cb_ = cb_.astype(np.uint64)
            c[i] = np.where((cb_ & np.uint64(fa.mask ^ fa.sign_mask)) >= jitter, cb_ - jitter, cb_)
    # 4: bottom of the range
    i = rows(4)
    a[i] = _clustered(rng, fi, fi.emin, 2, (i.size, k))
    b[i] = _clustered(rng, fi, np.where(rng.random((i.size, 1)) < 0.5, fi.emin, 0), 2, (i.size, k))
    c[i] = _clustered(rng, fa, np.where(rng.random(i.size) < 0.5, fa.emin, 2 * fi.emin), 2, i.size)
    # 5: independent random exponents
    i = rows(5)
    a[i] = _clustered(rng, fi, rng.integers(fi.emin - 1, fi.emax + 1, size=(i.size, k)), 0, (i.size, k))
    b[i] = _clustered(rng, fi, rng.integers(fi.emin - 1, fi.emax + 1, size=(i.size, k)), 0, (i.size, k))
    c[i] = _clustered(rng, fa, rng.integers(fa.emin - 1, fa.emax + 1, size=i.size), 0, i.size)
    # zeros inside structured rows (zero terms take exponent e_zero in the nvidia family)
    structured = (recipe != 0)[:, None]
    for arr in (a, b):
        hit = structured & (rng.random(arr.shape) < 0.08)
        arr[hit] = rng.integers(0, 2, size=int(hit.sum()), dtype=np.uint64) * np.uint64(fi.sign_mask)
    # special values
    if specials > 0:
        pi, pa = _special_pool(fi), _special_pool(fa)
        for arr, pool in ((a, pi), (b, pi), (c, pa)):
            hit = rng.random(arr.shape) < specials
            arr[hit] = pool[rng.integers(0, pool.size, size=int(hit.sum()))]
    return a, b, c
