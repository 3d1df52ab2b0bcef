"""DFP-16: dynamic fixed point (Das et al., "Mixed precision training of convolutional neural networks using
integer operations", ICLR 2018), NUMERICS.md section 4.

A DFP-16 tensor is a pair (I, E_s): int16 mantissas I sharing one exponent E_s, value ``I * 2**E_s`` -- the
same object as a flex tensor, so it is a :class:`~tensorforge.golden.flex.FlexTensor` of format
:data:`DFP16` = ``FlexFormat(16, 8)`` (P = 16 mantissa bits; an 8-bit shared exponent, the range of FP32's
exponent). The difference from flexpoint is *when* the exponent is chosen: DFP-16 derives it from the data
(after the fact), Autoflex predicts it (before the operation).

Recipe (P = ``fmt.man_bits``):

* **Conversion from float**: ``E_s = E(max|f|) - (P - 2)`` with E the floating-point exponent
  ``floor(log2 ·)``; ``I = sat(rne(f * 2**-E_s))`` (:func:`~tensorforge.golden.flex.flex_from_float`, whose
  automatic exponent is this rule; only a maximum that rounds up to 2**(P-1) saturates, flagged).
* **Products**: mantissas multiply exactly, shared exponents add; a dot product/GEMM accumulates the exact
  products in a wide integer accumulator (INT32 in the paper for short chains; the golden model is exact).
* **Sums**: align to the larger exponent by right shift (:func:`~tensorforge.golden.flex.flex_add_int`;
  ``guard_bits=None`` keeps the shifted-out bits so the sum is exact, ``guard_bits=0`` truncates as a bare
  ``>>``).
* **Down-conversion** of wide accumulators (:func:`dfp_down_convert_int`): the shift is derived from the
  leading-zero count of the block maximum: ``shift = bitlen(max|acc|) - (P - 1)`` where
  ``bitlen(m) = W - LZC(m)`` for a W-bit magnitude (``bitlen(0) = 0``, so an all-zero block gets
  ``shift = -(P - 1)``, no special case in hardware), then ``round_shift`` (RNE, saturation, overflow flag)
  and ``E_out = E_acc + shift``. Positive shifts are right shifts; a negative shift (small block) is an exact
  left shift, so the result always has ``E_s = E(max) - (P - 2)`` like a conversion. Only a block maximum
  that rounds up to 2**(P-1) can saturate (flagged). The output exponent is clamped to the format's range
  (then the shift follows from the clamped exponent).
"""

from __future__ import annotations

import numpy as np

from .flex import (FlexResult, FlexTensor, _as_int_array, _bitlen_max, _matmul_exact, flex_from_float,
                   round_shift)
from .formats import FlexFormat

__all__ = ["DFP16", "dfp_shift", "dfp_down_convert_int", "dfp_from_float", "dfp_gemm", "dfp_add",
           "DFP16Manager"]

#: DFP-16: 16-bit mantissas, 8-bit shared exponent.
DFP16 = FlexFormat(16, 8)


def dfp_shift(acc, man_bits: int = 16) -> int:
    """The down-conversion shift from the leading-zero count: ``bitlen(max|acc|) - (man_bits - 1)``."""
    return _bitlen_max(_as_int_array(acc, "acc")) - (man_bits - 1)


def dfp_down_convert_int(acc, man_bits: int = 16, *, rounding: str = "rne", rng=None):
    """Down-convert a block of wide accumulators to ``man_bits``-bit mantissas.

    Returns ``(out_man, shift, overflow)``: ``out_man = round_shift(acc, shift)`` with
    ``shift = dfp_shift(acc)``; the output exponent is the accumulator's exponent plus ``shift``.
    """
    acc = _as_int_array(acc, "acc")
    shift = dfp_shift(acc, man_bits)
    out, ovf = round_shift(acc, shift, man_bits, rounding=rounding, rng=rng)
    return out, shift, ovf


def _down_convert(acc, acc_exp, fmt, rounding, rng) -> FlexResult:
    exp = acc_exp + dfp_shift(acc, fmt.man_bits)
    exp = min(max(exp, fmt.exp_min), fmt.exp_max)
    out, ovf = round_shift(acc, exp - acc_exp, fmt.man_bits, rounding=rounding, rng=rng)
    return FlexResult(FlexTensor(out, exp, fmt), ovf)


def dfp_from_float(x, fmt: FlexFormat = DFP16, *, rounding: str = "rne", rng=None) -> FlexResult:
    """Float -> DFP tensor with ``E_s = E(max|f|) - (P - 2)``."""
    return flex_from_float(x, fmt, None, rounding=rounding, rng=rng)


def dfp_gemm(a: FlexTensor, b: FlexTensor, *, rounding: str = "rne", rng=None) -> FlexResult:
    """``a @ b``: exact integer accumulation at exponent ``a.exp + b.exp``, then the LZC down-conversion."""
    if not isinstance(a, FlexTensor) or not isinstance(b, FlexTensor):
        raise TypeError("operands must be FlexTensors")
    if a.fmt != b.fmt:
        raise ValueError(f"operands must share one FlexFormat, not {a.fmt} and {b.fmt}")
    acc = _matmul_exact(a.man, b.man, a.shape[-1])
    return _down_convert(acc, a.exp + b.exp, a.fmt, rounding, rng)


def dfp_add(a: FlexTensor, b: FlexTensor, *, subtract: bool = False, b_exp_offset: int = 0, guard_bits=None,
            rounding: str = "rne", rng=None) -> FlexResult:
    """``a +- b * 2**b_exp_offset``: alignment to the larger exponent by right shift, exact add, then the
    LZC down-conversion of the sum."""
    if not isinstance(a, FlexTensor) or not isinstance(b, FlexTensor):
        raise TypeError("operands must be FlexTensors")
    if a.fmt != b.fmt:
        raise ValueError(f"operands must share one FlexFormat, not {a.fmt} and {b.fmt}")
    fmt = a.fmt
    b_exp = b.exp + int(b_exp_offset)
    d = abs(a.exp - b_exp)
    g = d if guard_bits is None else min(int(guard_bits), d)
    e_sum = max(a.exp, b_exp) - g
    # the exact aligned sum at exponent e_sum (same alignment rule as flex_add_int)
    am, bm = a.man, b.man
    if fmt.man_bits + g + 2 > 61:
        am, bm = am.astype(object), bm.astype(object)
    if a.exp >= b_exp:
        a_al, b_al = am << g, (bm << g) >> d
    else:
        a_al, b_al = (am << g) >> d, bm << g
    total = a_al - b_al if subtract else a_al + b_al
    return _down_convert(total, e_sum, fmt, rounding, rng)


class DFP16Manager:
    """The DFP-16 recipe behind the same interface as :class:`~tensorforge.golden.autoflex.ExponentManager`
    (``gemm``, ``add``, ``convert``, ``trajectory``): every output exponent is derived from the data by the
    LZC rule instead of being predicted, so it never overflows except by rounding at the maximum.

    Parameters: ``fmt`` (default :data:`DFP16`), ``rounding`` ("rne" or "stochastic"), ``rng``.
    """

    def __init__(self, fmt: FlexFormat = DFP16, *, rounding: str = "rne", rng=None):
        if not isinstance(fmt, FlexFormat):
            raise TypeError(f"fmt must be a FlexFormat, not {fmt!r}")
        if rounding not in ("rne", "stochastic"):
            raise ValueError(f"rounding must be one of rne, stochastic, not {rounding!r}")
        if rounding == "stochastic" and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator for stochastic rounding, not {rng!r}")
        self._fmt, self._rounding, self._rng = fmt, rounding, rng
        self._exps: dict[str, list] = {}
        self._overflows: dict[str, int] = {}

    fmt = property(lambda self: self._fmt)

    def settings(self) -> dict:
        return {"algorithm": "dfp16", "format": str(self._fmt), "rounding": self._rounding}

    @property
    def names(self) -> list:
        return list(self._exps)

    def _record(self, name, res: FlexResult) -> FlexTensor:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {name!r}")
        self._exps.setdefault(name, []).append(res.tensor.exp)
        self._overflows[name] = self._overflows.get(name, 0) + int(res.any_overflow)
        return res.tensor

    def trajectory(self, name: str) -> list:
        return list(self._exps.get(name, []))

    def overflow_count(self, name: str) -> int:
        return self._overflows.get(name, 0)

    def clamp_count(self, name: str) -> int:
        return 0

    def gemm(self, name: str, a: FlexTensor, b: FlexTensor) -> FlexTensor:
        return self._record(name, dfp_gemm(a, b, rounding=self._rounding, rng=self._rng))

    def add(self, name: str, a: FlexTensor, b: FlexTensor, *, subtract: bool = False,
            b_exp_offset: int = 0) -> FlexTensor:
        return self._record(name, dfp_add(a, b, subtract=subtract, b_exp_offset=b_exp_offset,
                                          rounding=self._rounding, rng=self._rng))

    def convert(self, name: str, x) -> FlexTensor:
        return self._record(name, dfp_from_float(x, self._fmt, rounding=self._rounding, rng=self._rng))
