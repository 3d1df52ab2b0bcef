"""Flexpoint golden model: flexN+M tensors and their integer arithmetic (NUMERICS.md section 4).

A flexN+M tensor (Köster et al., "Flexpoint", NeurIPS 2017) is an array of N-bit two's-complement integer
mantissas ``man`` sharing one M-bit signed exponent ``exp``: ``value = man * 2**exp``. The exponent lives with
the host; the datapath only sees integers and *shift amounts*. This module has two layers:

**Integer layer -- what the RTL (FlexDot, MaxAbs) mirrors bit for bit.** All functions are vectorized numpy
over int64 arrays (dtype=object Python ints when a width would not fit in int64) and return
``(out_man, overflow)`` with a per-element boolean overflow flag.

- :func:`round_shift` -- ``out = sat(round(acc / 2**shift))``: the output conversion shared by every op.
- :func:`flex_dot_int` / :func:`flex_gemm_int` -- exact products and exact wide accumulation, then
  :func:`round_shift`.
- :func:`flex_add_int` -- exponent alignment, exact add, then :func:`round_shift`.
- :func:`max_abs` -- the statistic Γ.

Exact integer semantics (N = ``man_bits``):

* **Mantissa range** (inputs and outputs): full two's complement, ``[-2**(N-1), 2**(N-1) - 1]``
  (``[-32768, 32767]`` for flex16), as in Nervana's flexsim (``pclip = 2**15 - 1``, ``nclip = -2**15``).
* **Products and accumulator**: each product ``a_i * b_i`` is exact (2N-bit signed; the largest magnitude is
  ``(-2**(N-1))**2 = 2**(2N-2)``). A K-term sum is exact in a two's-complement accumulator of
  :func:`accumulator_bits` ``= 2N + ceil(log2 K)`` bits (2N for K = 1), which can never overflow; the golden
  model computes the exact sum.
* **Shift** ``s = exp_out - (exp_a + exp_b)`` (a signed integer, one per operation or per output):
  ``s > 0`` is an arithmetic right shift with rounding, ``s <= 0`` a left shift by ``-s`` (exact before
  saturation).
* **RNE rule** (``rounding="rne"``, for ``s > 0``): with ``q = acc >> s`` (floor) and
  ``r = acc - (q << s)`` (``0 <= r < 2**s``) the result is ``q + 1`` when ``r > 2**(s-1)`` or
  (``r == 2**(s-1)`` and ``q`` is odd), else ``q``. This is round-half-to-even of the exact quotient, for
  negative values too (e.g. -5 >> 1 gives -2, -7 >> 1 gives -4, -3 >> 2 gives -1).
* **Stochastic rounding** (``rounding="stochastic"``, for ``s > 0``): one integer ``u`` is drawn per output
  element (C order, one ``rng.integers(0, 2**s_e)`` call over the whole output, ``s_e = clip(s, 1, 62)``) and
  the result is ``q + 1`` iff ``u < r`` -- i.e. round up with probability exactly ``r / 2**s``. Needs a seeded
  ``numpy.random.Generator`` and ``s <= 62``. Elements with ``s <= 0`` are exact and ignore their draw.
* **Saturation**: the rounded value is clamped to the mantissa range above.
* **Overflow flag**: per element, ``True`` iff the rounded value lay outside the mantissa range (i.e. iff
  saturation changed it). A value that rounds to exactly ``2**(N-1) - 1`` or ``-2**(N-1)`` is *not* an
  overflow. Operation-level flag = ``overflow.any()``.
* **Γ** (:func:`max_abs`) = ``max |out_man|`` over the whole tensor (0 for an empty tensor), an unsigned
  integer ``<= 2**(N-1)`` (the value ``2**(N-1)`` occurs only for a mantissa of ``-2**(N-1)``).

**Tensor layer -- host-side convenience.** :class:`FlexTensor` (mantissas + exponent + :class:`FlexFormat`),
conversion from/to float (:func:`flex_from_float`, :meth:`FlexTensor.to_float`), :func:`flex_dot`,
:func:`flex_gemm` and :func:`flex_add` with a given output exponent. They return a :class:`FlexResult`
``(tensor, overflow)`` whose ``.gamma`` is Γ and ``.any_overflow`` the operation flag. The output exponent
is chosen *before* the operation by an exponent manager (:mod:`tensorforge.golden.autoflex`).

**Conversion from float** (:func:`flex_from_float`): the exponent is ``floor(log2 max|x|) - (N - 2)``, which
puts the largest magnitude in ``[2**(N-2), 2**(N-1))`` (one bit below full scale, as DFP-16's
``E_s = E(max|f|) - (P - 2)``), clamped to the format's exponent range; an all-zero tensor gets exponent 0.
Mantissas are ``x * 2**-exp`` rounded RNE (or stochastically) and saturated with the overflow flag as above:
with the automatic exponent only a magnitude that rounds up to ``2**(N-1)`` can overflow (it saturates to
``2**(N-1) - 1``, an error of at most one unit). NaN and infinity raise ValueError (flexpoint has no special
values). Without overflow, every element round-trips within half a unit of ``2**exp`` (RNE).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .formats import FLEX16_5, FlexFormat

__all__ = [
    "FlexTensor", "FlexResult",
    "accumulator_bits", "round_shift", "max_abs",
    "flex_dot_int", "flex_gemm_int", "flex_add_int",
    "auto_exponent", "flex_from_float", "flex_dot", "flex_gemm", "flex_add",
    "ROUNDING_MODES",
]

#: Rounding modes of every flex operation.
ROUNDING_MODES = ("rne", "stochastic")

_INT64_SAFE_BITS = 62      # |values| < 2**61 keep every intermediate of round_shift inside int64


# ---------------------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------------------
def _check_man_bits(man_bits):
    if not isinstance(man_bits, (int, np.integer)) or isinstance(man_bits, bool) or not 2 <= man_bits <= 32:
        raise ValueError(f"man_bits must be an integer between 2 and 32, not {man_bits!r}")
    return int(man_bits)


def _check_rounding(rounding, rng):
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")
    if rounding == "stochastic" and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator for stochastic rounding, not {rng!r}")


def _as_int_array(x, name):
    """Integer array (int64, or object for Python ints beyond int64); rejects floats and bools."""
    arr = np.asarray(x)
    if arr.dtype == object:
        flat = arr.ravel()
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in flat):
            raise TypeError(f"{name} must hold integers, not {arr.dtype}")
        if all(-(1 << 63) <= int(v) < (1 << 63) for v in flat):
            return arr.astype(np.int64)
        return arr
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, not {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) >= (1 << 63):
        return arr.astype(object)
    return arr.astype(np.int64)


def _check_range(man, man_bits, name):
    lo, hi = -(1 << (man_bits - 1)), (1 << (man_bits - 1)) - 1
    if man.size and (int(man.min()) < lo or int(man.max()) > hi):
        bad = int(man.min()) if int(man.min()) < lo else int(man.max())
        raise ValueError(f"{name} must hold {man_bits}-bit two's-complement mantissas in [{lo}, {hi}], "
                         f"found {bad}")


def _bitlen_max(arr) -> int:
    """Bit length of max |arr| (0 for an empty or all-zero array)."""
    if arr.size == 0:
        return 0
    return max(abs(int(arr.max())), abs(int(arr.min()))).bit_length()


def accumulator_bits(man_bits: int, k: int) -> int:
    """Two's-complement accumulator width that holds any sum of ``k`` products of ``man_bits``-bit mantissas
    exactly: ``2*man_bits + ceil(log2 k)`` (``2*man_bits`` for k = 1)."""
    man_bits = _check_man_bits(man_bits)
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    return 2 * man_bits + (int(k) - 1).bit_length()


# ---------------------------------------------------------------------------------------------------------
# integer layer (mirrored by the RTL)
# ---------------------------------------------------------------------------------------------------------
def round_shift(acc, shift, man_bits: int = 16, *, rounding: str = "rne", rng=None):
    """Output conversion: ``sat(round(acc / 2**shift))`` to ``man_bits``-bit two's complement.

    Parameters
    ----------
    acc : int array
        Exact wide values (accumulators or aligned sums), any width.
    shift : int or int array
        Signed shift amount, broadcast against ``acc``: ``> 0`` arithmetic right shift with rounding,
        ``<= 0`` exact left shift.
    man_bits : int
        Output mantissa width N (2..32).
    rounding : "rne" or "stochastic"
        See the module docstring for the exact integer rules.
    rng : numpy.random.Generator
        Required for stochastic rounding.

    Returns
    -------
    (out_man, overflow) : int64 array, bool array (broadcast shape)
        ``overflow`` is True exactly where saturation changed the rounded value.
    """
    man_bits = _check_man_bits(man_bits)
    _check_rounding(rounding, rng)
    acc = _as_int_array(acc, "acc")
    shift = _as_int_array(shift, "shift")
    scalar_shift = shift.ndim == 0
    acc, shift = np.broadcast_arrays(acc, shift)
    lo, hi = -(1 << (man_bits - 1)), (1 << (man_bits - 1)) - 1

    width = _bitlen_max(acc)                       # |acc| < 2**width
    if acc.dtype != object and width > _INT64_SAFE_BITS - 1:
        acc = acc.astype(object)
    if acc.dtype != object and man_bits > 30:
        acc = acc.astype(object)               # left shifts by N + 1 of 2**N would leave int64
    wide = acc.dtype == object
    if wide and rounding == "stochastic":
        raise ValueError(f"stochastic rounding needs values below 2**{_INT64_SAFE_BITS - 1}, "
                         f"not a {width}-bit accumulator")

    # Right shifts: beyond width + 1 every result is 0 (|acc| < 2**width <= half), so cap there.
    cap = width + 1
    if scalar_shift and not wide and rounding == "rne":      # fast path: one shift for the whole block
        val = _round_shift_scalar(acc, int(shift.flat[0]) if shift.size else 0, cap, man_bits)
        overflow = (val < lo) | (val > hi)
        return np.asarray(np.clip(val, lo, hi)), np.asarray(overflow)
    if rounding == "stochastic":
        if shift.size and int(shift.max()) > _INT64_SAFE_BITS:
            raise ValueError(f"shift must be at most {_INT64_SAFE_BITS} for stochastic rounding, "
                             f"not {int(shift.max())}")
        s = np.clip(shift, 1, _INT64_SAFE_BITS)
    else:
        s = np.clip(shift, 1, max(cap, 1))
    if wide:
        s = s.astype(object)
    one = 1 if wide else np.int64(1)
    q = acc >> s
    r = acc - (q << s)                             # 0 <= r < 2**s
    if rounding == "rne":
        half = one << (s - 1)
        up = (r > half) | ((r == half) & ((q & 1) == 1))
    else:
        u = rng.integers(0, np.int64(1) << s.astype(np.int64), dtype=np.int64)
        up = u < r
    right = q + up.astype(np.int64 if not wide else object)

    # Left shifts: clamp first (anything beyond +-2**N saturates anyway), then shift by at most N + 1.
    t = np.clip(-shift, 0, man_bits + 1)
    if wide:
        t = t.astype(object)
    big = 1 << man_bits
    left = np.clip(acc, -big, big) << t

    val = np.where(shift > 0, right, left)
    overflow = (val < lo) | (val > hi)
    out = np.asarray(np.clip(val, lo, hi)).astype(np.int64)
    return out, np.asarray(overflow, dtype=bool)


def _round_shift_scalar(acc, s, cap, man_bits):
    """RNE round_shift of an int64 array (|acc| < 2**61) by one shift amount, before saturation."""
    if s > cap:
        return np.zeros_like(acc)
    if s > 0:
        q = acc >> s
        r = acc & ((1 << s) - 1)
        half = 1 << (s - 1)
        return q + ((r > half) | ((r == half) & ((q & 1) == 1)))
    big = 1 << man_bits
    return np.clip(acc, -big, big) << min(-s, man_bits + 1)


def max_abs(man) -> int:
    """Γ = max |man| over the whole tensor as a Python int (0 for an empty tensor)."""
    man = _as_int_array(man, "man")
    if man.size == 0:
        return 0
    return max(abs(int(man.max())), abs(int(man.min())))


def _matmul_exact(a, b, k):
    """Exact integer matmul (int64 when the accumulator fits, else Python ints)."""
    a_bits, b_bits = max(_bitlen_max(a), 1), max(_bitlen_max(b), 1)
    if a_bits + b_bits + (max(k, 1) - 1).bit_length() <= _INT64_SAFE_BITS - 2 and a.dtype != object \
            and b.dtype != object:
        return np.matmul(a.astype(np.int64), b.astype(np.int64))
    return np.matmul(a.astype(object), b.astype(object))


def flex_dot_int(a_man, b_man, shift, *, man_bits: int = 16, rounding: str = "rne", rng=None):
    """Integer flex dot product along the last axis -- the FlexDot lane.

    ``out = sat(round(sum_i a_man[..., i] * b_man[..., i] / 2**shift))`` with exact products and an exact
    accumulator of :func:`accumulator_bits` (man_bits, K) bits, then :func:`round_shift`.

    Parameters
    ----------
    a_man, b_man : int arrays of shape (..., K)
        ``man_bits``-bit two's-complement mantissas (checked), broadcast against each other.
    shift : int or int array broadcastable to the output shape (...,)
        ``exp_out - (exp_a + exp_b)``.

    Returns
    -------
    (out_man, overflow) : int64 array and bool array of shape (...,)
    """
    man_bits = _check_man_bits(man_bits)
    a = _as_int_array(a_man, "a_man")
    b = _as_int_array(b_man, "b_man")
    _check_range(a, man_bits, "a_man")
    _check_range(b, man_bits, "b_man")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("a_man and b_man must have at least one dimension (the K axis)")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a_man and b_man must have the same K (last axis), not {a.shape[-1]} and {b.shape[-1]}")
    k = a.shape[-1]
    a_b, b_b = np.broadcast_arrays(a, b)
    acc = _matmul_exact(a_b[..., None, :], b_b[..., :, None], k)[..., 0, 0]
    return round_shift(acc, shift, man_bits, rounding=rounding, rng=rng)


def flex_gemm_int(a_man, b_man, shift, *, man_bits: int = 16, rounding: str = "rne", rng=None):
    """Integer flex GEMM: ``out[i, j] = sat(round(sum_k a_man[i, k] * b_man[k, j] / 2**shift))``.

    ``a_man`` (M, K) and ``b_man`` (K, N) follow ``numpy.matmul`` shapes (1-D and batched operands too);
    every output element is one :func:`flex_dot_int` lane with the same semantics. ``shift`` is broadcast to
    the output shape.
    """
    man_bits = _check_man_bits(man_bits)
    a = _as_int_array(a_man, "a_man")
    b = _as_int_array(b_man, "b_man")
    _check_range(a, man_bits, "a_man")
    _check_range(b, man_bits, "b_man")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("a_man and b_man must have at least one dimension")
    k = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k != kb:
        raise ValueError(f"inner dimensions must agree, not {a.shape} @ {b.shape}")
    acc = _matmul_exact(a, b, k)
    return round_shift(acc, shift, man_bits, rounding=rounding, rng=rng)


def flex_add_int(a_man, b_man, a_exp: int, b_exp: int, out_exp: int, *, man_bits: int = 16,
                 subtract: bool = False, guard_bits=None, rounding: str = "rne", rng=None):
    """Integer flex add ``a*2**a_exp +- b*2**b_exp`` converted to exponent ``out_exp``.

    Alignment (NUMERICS section 4): the operand with the smaller exponent is aligned to the larger exponent
    ``e_hi`` by an arithmetic right shift by ``d = |a_exp - b_exp|``, keeping ``g = d`` fraction bits when
    ``guard_bits`` is None (default: nothing is lost, the sum is exact and rounded once) or
    ``g = min(guard_bits, d)`` otherwise (``guard_bits=0`` is a plain truncating ``>>``, the
    floor of the shifted value). Formally, with ``lo`` the smaller-exponent mantissa::

        aligned_lo = (lo << g) >> d          # floor(lo * 2**(g - d)), exact when g == d
        aligned_hi = hi << g
        S = aligned_hi +- aligned_lo         # exact, exponent e_hi - g
        out = round_shift(S, out_exp - (e_hi - g))

    When both exponents are equal nothing is shifted. ``a_man`` and ``b_man`` broadcast.

    Returns ``(out_man, overflow)`` as :func:`round_shift`.
    """
    man_bits = _check_man_bits(man_bits)
    a = _as_int_array(a_man, "a_man")
    b = _as_int_array(b_man, "b_man")
    _check_range(a, man_bits, "a_man")
    _check_range(b, man_bits, "b_man")
    for name, v in (("a_exp", a_exp), ("b_exp", b_exp), ("out_exp", out_exp)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an integer, not {v!r}")
    if guard_bits is not None and (not isinstance(guard_bits, (int, np.integer)) or isinstance(guard_bits, bool)
                                   or guard_bits < 0):
        raise ValueError(f"guard_bits must be None or a non-negative integer, not {guard_bits!r}")
    if not isinstance(subtract, bool):
        raise TypeError(f"subtract must be a bool, not {subtract!r}")
    a_exp, b_exp, out_exp = int(a_exp), int(b_exp), int(out_exp)
    d = abs(a_exp - b_exp)
    g = d if guard_bits is None else min(int(guard_bits), d)
    e_hi = max(a_exp, b_exp)
    obj = d + g + man_bits + 2 > _INT64_SAFE_BITS - 1
    if obj:
        a, b = a.astype(object), b.astype(object)
    if a_exp >= b_exp:
        a_al, b_al = a << g, (b << g) >> d
    else:
        a_al, b_al = (a << g) >> d, b << g
    total = a_al - b_al if subtract else a_al + b_al
    return round_shift(total, out_exp - (e_hi - g), man_bits, rounding=rounding, rng=rng)


# ---------------------------------------------------------------------------------------------------------
# tensor layer
# ---------------------------------------------------------------------------------------------------------
class FlexTensor:
    """A flexpoint tensor: integer mantissas ``man`` sharing the exponent ``exp``; value ``man * 2**exp``.

    Parameters
    ----------
    man : integer array-like
        Mantissas, each within the format's two's-complement range (checked). Stored as a read-only int64
        copy.
    exp : int
        Shared exponent, within ``[fmt.exp_min, fmt.exp_max]`` (``[-16, 15]`` for flex16+5; checked).
    fmt : FlexFormat
        Defaults to flex16+5.
    """

    __slots__ = ("_man", "_exp", "_fmt")

    def __init__(self, man, exp, fmt: FlexFormat = FLEX16_5):
        if not isinstance(fmt, FlexFormat):
            raise TypeError(f"fmt must be a FlexFormat, not {fmt!r}")
        if not isinstance(exp, (int, np.integer)) or isinstance(exp, bool):
            raise TypeError(f"exp must be an integer, not {exp!r}")
        if not fmt.exp_min <= exp <= fmt.exp_max:
            raise ValueError(f"exp must be an integer between {fmt.exp_min} and {fmt.exp_max} for {fmt}, "
                             f"not {exp}")
        arr = _as_int_array(man, "man")
        _check_range(arr, fmt.man_bits, "man")
        arr = np.array(arr, dtype=np.int64)
        arr.setflags(write=False)
        self._man, self._exp, self._fmt = arr, int(exp), fmt

    @property
    def man(self) -> np.ndarray:
        """Read-only int64 mantissas."""
        return self._man

    @property
    def exp(self) -> int:
        return self._exp

    @property
    def fmt(self) -> FlexFormat:
        return self._fmt

    @property
    def shape(self):
        return self._man.shape

    @property
    def gamma(self) -> int:
        """Γ = max |man|."""
        return max_abs(self._man)

    @property
    def ulp(self) -> float:
        """Value of one mantissa unit, ``2**exp``."""
        return math.ldexp(1.0, self._exp)

    def to_float(self, dtype=np.float64) -> np.ndarray:
        """Values ``man * 2**exp`` (exact in float64 for man_bits <= 53)."""
        return np.ldexp(self._man.astype(np.float64), self._exp).astype(dtype)

    @property
    def T(self) -> "FlexTensor":
        return FlexTensor(self._man.T, self._exp, self._fmt)

    def with_man(self, man) -> "FlexTensor":
        """Same exponent and format, new mantissas (for exact integer elementwise ops such as ReLU)."""
        return FlexTensor(man, self._exp, self._fmt)

    def __repr__(self):
        return f"FlexTensor({self._fmt}, shape={self.shape}, exp={self._exp}, gamma={self.gamma})"

    def __eq__(self, other):
        if not isinstance(other, FlexTensor):
            return NotImplemented
        return (self._fmt == other._fmt and self._exp == other._exp and self.shape == other.shape
                and bool(np.array_equal(self._man, other._man)))

    __hash__ = None


class FlexResult(NamedTuple):
    """Result of a flex operation: the output tensor and the per-element overflow (saturation) flags."""

    tensor: FlexTensor
    overflow: np.ndarray

    @property
    def any_overflow(self) -> bool:
        """The operation-level overflow flag (any element saturated)."""
        return bool(np.any(self.overflow))

    @property
    def gamma(self) -> int:
        """Γ = max |output mantissa| over the whole output."""
        return self.tensor.gamma


def _check_exp(exp, fmt, name="out_exp"):
    if not isinstance(exp, (int, np.integer)) or isinstance(exp, bool):
        raise TypeError(f"{name} must be an integer, not {exp!r}")
    if not fmt.exp_min <= exp <= fmt.exp_max:
        raise ValueError(f"{name} must be an integer between {fmt.exp_min} and {fmt.exp_max} for {fmt}, "
                         f"not {exp}")
    return int(exp)


def _same_fmt(a, b):
    if not isinstance(a, FlexTensor) or not isinstance(b, FlexTensor):
        raise TypeError(f"operands must be FlexTensors, not {type(a).__name__} and {type(b).__name__}")
    if a.fmt != b.fmt:
        raise ValueError(f"operands must share one FlexFormat, not {a.fmt} and {b.fmt}")
    return a.fmt


def auto_exponent(x, fmt: FlexFormat = FLEX16_5) -> int:
    """Exponent chosen by conversion from float: ``floor(log2 max|x|) - (N - 2)`` clamped to the format's
    exponent range; 0 for an all-zero (or empty) tensor."""
    if not isinstance(fmt, FlexFormat):
        raise TypeError(f"fmt must be a FlexFormat, not {fmt!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("x must be finite: flexpoint has no infinities or NaNs")
    m = float(np.max(np.abs(x))) if x.size else 0.0
    if m == 0.0:
        return 0
    e = math.frexp(m)[1] - 1                    # floor(log2 m), exact
    return int(min(max(e - (fmt.man_bits - 2), fmt.exp_min), fmt.exp_max))


def flex_from_float(x, fmt: FlexFormat = FLEX16_5, exp=None, *, rounding: str = "rne", rng=None) -> FlexResult:
    """Convert floats to a FlexTensor.

    ``exp`` None chooses :func:`auto_exponent` (from max |x|); otherwise the given exponent is used (as an
    exponent manager does). Mantissas are ``x * 2**-exp`` (exact in float64) rounded RNE (``numpy.rint``
    ties to even) or stochastically (round up with probability equal to the discarded fraction, one
    ``rng.random()`` draw per element in C order), then saturated; ``overflow`` flags saturated elements.
    """
    if not isinstance(fmt, FlexFormat):
        raise TypeError(f"fmt must be a FlexFormat, not {fmt!r}")
    _check_rounding(rounding, rng)
    xf = np.asarray(x, dtype=np.float64)
    if xf.size and not np.all(np.isfinite(xf)):
        raise ValueError("x must be finite: flexpoint has no infinities or NaNs")
    exp = auto_exponent(xf, fmt) if exp is None else _check_exp(exp, fmt, "exp")
    scaled = np.ldexp(xf, -exp)                  # exact: power-of-two scaling
    big = float(1 << (fmt.man_bits + 1))
    scaled = np.clip(scaled, -big, big)          # beyond +-2**(N+1) saturates anyway; keeps int64 safe
    if rounding == "rne":
        r = np.rint(scaled)
    else:
        fl = np.floor(scaled)
        r = fl + (rng.random(size=scaled.shape) < (scaled - fl))
    r = r.astype(np.int64)
    lo, hi = fmt.man_min, fmt.man_max
    overflow = (r < lo) | (r > hi)
    return FlexResult(FlexTensor(np.clip(r, lo, hi), exp, fmt), np.asarray(overflow, dtype=bool))


def flex_gemm(a: FlexTensor, b: FlexTensor, out_exp: int, *, rounding: str = "rne", rng=None) -> FlexResult:
    """``a @ b`` (numpy.matmul shapes) with the output exponent ``out_exp`` chosen beforehand.

    Exact products and accumulation, then shift ``out_exp - (a.exp + b.exp)`` with RNE (or stochastic)
    rounding and saturation: :func:`flex_gemm_int`.
    """
    fmt = _same_fmt(a, b)
    out_exp = _check_exp(out_exp, fmt)
    man, ovf = flex_gemm_int(a.man, b.man, out_exp - (a.exp + b.exp), man_bits=fmt.man_bits,
                             rounding=rounding, rng=rng)
    return FlexResult(FlexTensor(man, out_exp, fmt), ovf)


def flex_dot(a: FlexTensor, b: FlexTensor, out_exp: int, *, rounding: str = "rne", rng=None) -> FlexResult:
    """Dot products along the last axis (broadcast) with output exponent ``out_exp``: :func:`flex_dot_int`."""
    fmt = _same_fmt(a, b)
    out_exp = _check_exp(out_exp, fmt)
    man, ovf = flex_dot_int(a.man, b.man, out_exp - (a.exp + b.exp), man_bits=fmt.man_bits,
                            rounding=rounding, rng=rng)
    return FlexResult(FlexTensor(man, out_exp, fmt), ovf)


def flex_add(a: FlexTensor, b: FlexTensor, out_exp: int, *, subtract: bool = False, b_exp_offset: int = 0,
             guard_bits=None, rounding: str = "rne", rng=None) -> FlexResult:
    """``a + b * 2**b_exp_offset`` (or ``a - ...`` with ``subtract``), elementwise with broadcasting, output
    exponent ``out_exp``: :func:`flex_add_int` with ``b``'s exponent taken as ``b.exp + b_exp_offset``.

    ``b_exp_offset`` scales ``b`` by a power of two through exponent arithmetic only (exact), e.g. a
    power-of-two learning rate in ``w - lr * dw``; the effective exponent may lie outside the format's range.
    """
    fmt = _same_fmt(a, b)
    out_exp = _check_exp(out_exp, fmt)
    if not isinstance(b_exp_offset, (int, np.integer)) or isinstance(b_exp_offset, bool):
        raise TypeError(f"b_exp_offset must be an integer, not {b_exp_offset!r}")
    man, ovf = flex_add_int(a.man, b.man, a.exp, b.exp + int(b_exp_offset), out_exp, man_bits=fmt.man_bits,
                            subtract=subtract, guard_bits=guard_bits, rounding=rounding, rng=rng)
    return FlexResult(FlexTensor(man, out_exp, fmt), ovf)
