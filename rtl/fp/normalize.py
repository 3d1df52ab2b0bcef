"""Leading-zero count and normalizing left shift (with an optional exponent floor)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import check_int, silence_on_error

__all__ = ["Normalize", "leading_zero_count", "leading_zero_groups", "merge_leading_zero_groups"]


def _lzc_tree(m, v, name):
    """(all_zero, count) of a value whose width is a power of two >= 2; count has log2(width) bits.
    Every node is a Signal so that the simulator does not duplicate shared subexpressions."""
    n = len(v)
    zero = Signal(name=f"{name}_z")
    if n == 2:
        count = Signal(1, name=f"{name}_c")
        m.d.comb += [zero.eq(~(v[0] | v[1])), count.eq(~v[1])]
        return zero, count
    half = n // 2
    zero_hi, count_hi = _lzc_tree(m, v[half:], f"{name}h")
    zero_lo, count_lo = _lzc_tree(m, v[:half], f"{name}l")
    count = Signal(len(count_hi) + 1, name=f"{name}_c")
    m.d.comb += [
        zero.eq(zero_hi & zero_lo),
        count.eq(Mux(zero_hi, Cat(count_lo, Const(1, 1)), Cat(count_hi, Const(0, 1)))),
    ]
    return zero, count


def leading_zero_count(m, value, name="lzc"):
    """Signal holding the number of leading (MSB-side) zeros of ``value``, ``len(value)``
    when it is zero. Built as a balanced tree (log2 depth) in module ``m``."""
    width = len(value)
    lz = Signal(range(width + 1), name=name)
    if width == 1:
        m.d.comb += lz.eq(~value[0])
        return lz
    n = 1 << (width - 1).bit_length()
    padded = Cat(Const(0, n - width), value) if n > width else value
    zero, count = _lzc_tree(m, padded, name)
    m.d.comb += lz.eq(Mux(zero, width, count))
    return lz


def leading_zero_groups(m, value, group, name="lzg"):
    """First half of a leading-zero count split over two pipeline steps.

    ``value`` is padded at its LSB end to a power-of-two number of groups of ``group`` bits
    (``group`` a power of two >= 2). Returns ``(zeros, counts)``: ``zeros`` is a Signal with
    bit g set when group g (g = 0 is the LSB group) is all zero, ``counts[g]`` the number of
    leading zeros inside group g (``log2(group)`` bits; unspecified when the group is zero).
    Register these and finish with :func:`merge_leading_zero_groups`; the two halves give
    exactly :func:`leading_zero_count`."""
    if not isinstance(group, int) or isinstance(group, bool) or group < 2 or group & (group - 1):
        raise ValueError(f"group must be a power of two >= 2, not {group!r}")
    width = len(value)
    k = -(-width // group)
    n_groups = 1 << (k - 1).bit_length()
    n = n_groups * group
    padded = Cat(Const(0, n - width), value) if n > width else value
    zeros = Signal(n_groups, name=f"{name}_z")
    counts = []
    for g in range(n_groups):
        z, c = _lzc_tree(m, padded[g * group:(g + 1) * group], f"{name}{g}")
        m.d.comb += zeros[g].eq(z)
        counts.append(c)
    return zeros, counts


def merge_leading_zero_groups(m, zeros, counts, width, name="lzm"):
    """Second half of :func:`leading_zero_groups`: a Signal holding the leading-zero count of
    the original ``width``-bit value (``width`` when it is zero)."""
    def tree(lo, hi):
        if hi - lo == 1:
            return zeros[lo], counts[lo]
        mid = (lo + hi) // 2
        zero_hi, count_hi = tree(mid, hi)
        zero_lo, count_lo = tree(lo, mid)
        zero = Signal(name=f"{name}_{lo}_{hi}_z")
        count = Signal(len(count_hi) + 1, name=f"{name}_{lo}_{hi}_c")
        m.d.comb += [
            zero.eq(zero_hi & zero_lo),
            count.eq(Mux(zero_hi, Cat(count_lo, Const(1, 1)), Cat(count_hi, Const(0, 1)))),
        ]
        return zero, count

    zero, count = tree(0, len(counts))
    lz = Signal(range(width + 1), name=name)
    m.d.comb += lz.eq(Mux(zero, width, count))
    return lz


class Normalize(wiring.Component):
    """Normalizer: shift a significand left until its MSB is one, adjusting its exponent.

    Four parts with separate ports, so that a pipelined core can put registers between
    them; connect them directly for a combinational normalizer:

    1. *limit* (from the exponent alone, so it can run stages early, beside other logic):
       ``exp`` -> ``allowed = min(max_shift, max(0, exp - exp_floor))``;
    2. *mark*: ``mark_allowed`` -> ``marker``, a one-hot word with its bit at
       ``width - 1 - mark_allowed``;
    3. *count*: ``sig``, ``count_marker`` -> ``amount`` = ``min(leading zeros, allowed)``,
       computed as the leading-zero count of ``sig | count_marker`` (no compare after the
       count tree), and ``zero``;
    4. *shift*: ``shift_sig``, ``shift_exp``, ``shift_amount`` -> ``norm_sig``, ``norm_exp``.

    Parameters
    ----------
    width : int
        Significand width (>= 1).
    exp_width : int
        Width of the signed exponent ports. The caller sizes it so that
        ``exp - max_shift`` cannot wrap.
    max_shift : int or None
        Largest shift the shifter implements (default ``width - 1``). When the caller
        knows the significand has at most k leading zeros (e.g. a product of two
        normalized significands: k = 1), this makes the shifter small. A value with
        more leading zeros is shifted by ``max_shift`` only.
    exp_floor : int or None
        If given, the shift is limited to ``exp - exp_floor`` (and 0 when ``exp`` is
        already below the floor) so that the exponent never drops below the floor:
        with ``exp_floor = fmt.emin`` a value in the subnormal range comes out at
        exponent emin with leading zeros, which is exactly the form :class:`Round`
        accepts without a denormalizing shift.

    Ports
    -----
    exp : In(signed(exp_width)) -> allowed : Out(range(max_shift + 1))
        Limit; ``exp`` is the exponent of the significand's MSB.
    mark_allowed : In(range(max_shift + 1)) -> marker : Out(width)
        Mark (``mark_allowed`` = ``allowed``, possibly registered).
    sig : In(width), count_marker : In(width) -> amount : Out(range(max_shift + 1)), zero : Out(1)
        Count half (``count_marker`` = ``marker``, possibly registered); ``zero`` is ``sig == 0``.
    shift_sig : In(width), shift_exp : In(signed(exp_width)), shift_amount : In(range(max_shift + 1))
        Shift half (the same values, possibly registered).
    norm_sig : Out(width), norm_exp : Out(signed(exp_width))
        ``shift_sig << shift_amount`` (truncated to ``width``) and ``shift_exp - shift_amount``.

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, width, exp_width, max_shift=None, exp_floor=None):
        self._width = check_int("width", width, 1)
        self._exp_width = check_int("exp_width", exp_width, 2)
        if max_shift is None:
            max_shift = max(width - 1, 0)
        self._max_shift = check_int("max_shift", max_shift, 0, max(width - 1, 0))
        if exp_floor is not None and (not isinstance(exp_floor, int) or isinstance(exp_floor, bool)):
            raise TypeError(f"exp_floor must be an integer or None, not {exp_floor!r}")
        self._exp_floor = exp_floor
        amount_shape = range(self._max_shift + 1)
        super().__init__({
            "exp": In(signed(exp_width)), "allowed": Out(amount_shape),
            "mark_allowed": In(amount_shape), "marker": Out(width),
            "sig": In(width), "count_marker": In(width),
            "amount": Out(amount_shape), "zero": Out(1),
            "shift_sig": In(width), "shift_exp": In(signed(exp_width)), "shift_amount": In(amount_shape),
            "norm_sig": Out(width), "norm_exp": Out(signed(exp_width)),
        })

    width = property(lambda self: self._width)
    exp_width = property(lambda self: self._exp_width)
    max_shift = property(lambda self: self._max_shift)
    exp_floor = property(lambda self: self._exp_floor)

    def elaborate(self, platform):
        m = Module()
        limit = self._max_shift
        width = self._width
        # -- limit ---------------------------------------------------------------------
        allowed = self.allowed
        if self._exp_floor is not None:
            room = Signal(signed(self._exp_width + 1))
            m.d.comb += [
                room.eq(self.exp - self._exp_floor),
                allowed.eq(Mux(room < 0, 0, Mux(room > limit, limit, room))),
            ]
        else:
            m.d.comb += allowed.eq(limit)
        # -- mark ------------------------------------------------------------------------
        m.d.comb += self.marker.eq(Const(1 << (width - 1), width) >> self.mark_allowed)
        # -- count: the marker bit caps the count at ``allowed`` -----------------------------
        marked = Signal(width)
        m.d.comb += marked.eq(self.sig | self.count_marker)
        m.d.comb += [
            self.amount.eq(leading_zero_count(m, marked)),
            self.zero.eq(self.sig == 0),
        ]
        # -- shift ---------------------------------------------------------------------
        m.d.comb += [
            self.norm_sig.eq((self.shift_sig << self.shift_amount)[:width]),
            self.norm_exp.eq(self.shift_exp - self.shift_amount),
        ]
        return m
