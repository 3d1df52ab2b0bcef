"""Alignment of an addend to an exact product, and the exact signed sum (HardFloat-style)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .normalize import leading_zero_count
from .params import check_int, silence_on_error

__all__ = ["AlignAdd", "trailing_zero_count"]


def trailing_zero_count(m, value, name="tzc"):
    """Signal holding the number of trailing (LSB-side) zeros of ``value``, ``len(value)`` when zero."""
    return leading_zero_count(m, Cat(*[value[j] for j in reversed(range(len(value)))]), name=name)


class AlignAdd(wiring.Component):
    """Align an addend to a product and add or subtract them exactly enough for one rounding.

    The sum lives in a fixed window (positions in units of the product's LSB, 0 =
    product LSB)::

        T = pw + aw + 1 ......... addend MSB when the addend is "far above"
        pw + 2 .................. addend LSB when the addend is far above (2 empty bits)
        pw - 1 .. 0 ............. product (never moves)
        L = min(0, pw - 3 - aw) . lowest kept position
        L - 1 ................... sticky slot: OR of every addend bit shifted below L

    The addend is shifted right from its far-above position by
    ``(pw + 2) - (c_exp - p_exp)`` (clamped to 0 .. window). If it lies even further
    above, it stays at the top and the window is re-anchored on it: the product is then
    below the addend's round bit by at least two positions, so only its sign and
    "nonzero" matter, and it still sits below the addend's round bit. Addend bits
    below L can only be lost when the addend is at least two positions below the
    product's leading one; the sum's round bit then stays at or above L, and
    putting the sticky bit in its own slot L - 1 before the (two's-complement)
    subtraction gives the same round and sticky as the exact value (HardFloat's
    trick). The sum never carries out of the window; effective subtraction returns
    the magnitude and says whether it negated.

    Precondition: the product is zero or has one of its two top bits set (the
    product of two normalized significands, or a normalized significand alone).

    Parameters
    ----------
    product_width : int
        Width ``pw`` of the product significand.
    addend_width : int
        Width ``aw`` of the addend significand (its precision).
    exp_width : int
        Width of the signed exponent ports; the caller sizes it so that
        ``c_exp - p_exp + pw + 2`` and ``top_exp`` cannot wrap.

    Ports (four parts, which a pipelined core may register between)
    ----------------------------------------------------------------
    Addend plan (from the addend alone, so it can run a step before the product exponent
    is known): ``c_exp`` In(signed) exponent of the addend's LSB; ``c_tz`` In(range(aw + 1))
    trailing zeros of the addend significand (aw when zero; see :func:`trailing_zero_count`) ->
    ``c_far``, ``c_beyond``, ``c_sticky_exp``, ``c_top`` Out(signed(exp_width + 2)): the
    addend exponent offset by the constants the plan compares the product exponent with.

    Plan: ``p_exp`` In(signed) exponent of the product's LSB; ``p_zero`` In(1);
    ``c_zero`` In(1); ``plan_c_far``, ``plan_c_beyond``, ``plan_c_sticky_exp``, ``plan_c_top``
    In(signed(exp_width + 2)) (the addend plan's values, possibly registered) ->
    ``shift`` Out(range(window_width)) right shift of the addend;
    ``sticky`` Out(1) whether nonzero addend bits fall below the window (from the addend's
    trailing-zero count, so no OR after the shifter);
    ``top_exp`` Out(signed) exponent of the window MSB (position T). Every output is one
    compare or add of ``p_exp`` with a precomputed value, then a mux.

    Align: ``align_c_sig`` In(aw), ``align_shift`` In(range(window_width)),
    ``align_sticky`` In(1) (the plan's values, possibly registered) ->
    ``aligned`` Out(window_width): the shifted addend, bit 0 = sticky slot.

    Add: ``product`` In(pw), ``add_aligned`` In(window_width), ``eff_sub`` In(1)
    (product and addend signs differ) -> ``sum`` Out(window_width): |product ± addend|
    in window positions (bit 0 = sticky slot, bit window_width-1 = position T),
    ``negated`` Out(1): the result has the addend's sign, not the product's
    (only with ``eff_sub``).

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, product_width, addend_width, exp_width):
        self._pw = check_int("product_width", product_width, 1)
        self._aw = check_int("addend_width", addend_width, 1)
        self._exp_width = check_int("exp_width", exp_width, 2)
        self._low = min(0, self._pw - 3 - self._aw)
        self._top = self._pw + self._aw + 1
        self._ww = self._top - self._low + 2
        ew = exp_width
        cw = signed(ew + 2)
        super().__init__({
            "c_exp": In(signed(ew)), "c_tz": In(range(self._aw + 1)),
            "c_far": Out(cw), "c_beyond": Out(cw), "c_sticky_exp": Out(cw), "c_top": Out(cw),
            "p_exp": In(signed(ew)), "p_zero": In(1), "c_zero": In(1),
            "plan_c_far": In(cw), "plan_c_beyond": In(cw), "plan_c_sticky_exp": In(cw), "plan_c_top": In(cw),
            "shift": Out(range(self._ww)), "sticky": Out(1), "top_exp": Out(signed(ew)),
            "align_c_sig": In(self._aw), "align_shift": In(range(self._ww)), "align_sticky": In(1),
            "aligned": Out(self._ww),
            "product": In(self._pw), "add_aligned": In(self._ww), "eff_sub": In(1),
            "sum": Out(self._ww), "negated": Out(1),
        })

    product_width = property(lambda self: self._pw)
    addend_width = property(lambda self: self._aw)
    exp_width = property(lambda self: self._exp_width)
    window_width = property(lambda self: self._ww, doc="Width of ``aligned``/``sum`` (positions L-1 .. T).")
    window_low = property(lambda self: self._low, doc="Position L of the lowest kept bit (<= 0).")
    window_top = property(lambda self: self._top, doc="Position T of the window MSB.")

    def elaborate(self, platform):
        m = Module()
        pw, aw, ww = self._pw, self._aw, self._ww
        far = pw + 2
        max_shift = ww - 1

        # -- addend plan -------------------------------------------------------------------
        # With diff = p_exp - c_exp the plan is: shift = diff + far, clamped to 0 when
        # diff < -far (addend far above) and to max_shift when diff > max_shift - far. Each
        # test is rewritten as a compare of p_exp with c_exp plus a constant, formed here.
        m.d.comb += [
            self.c_far.eq(self.c_exp - far),
            self.c_beyond.eq(self.c_exp + (max_shift - far)),
            # Sticky: addend bit j lands below window position L iff j < shift - (ww - 1 - aw),
            # i.e. iff trailing_zeros(c_sig) + (ww - 1 - aw) < shift; unclamped (shift =
            # diff + far) that is trailing_zeros + c_exp + (ww - 1 - aw - far) < p_exp: a
            # trailing-zero count and one compare instead of an OR over the shifter's lost bits.
            self.c_sticky_exp.eq(self.c_exp + self.c_tz + (ww - 1 - aw - far)),
            self.c_top.eq(self.c_exp + (self._top - far)),
        ]

        # -- plan --------------------------------------------------------------------------
        # one carry chain per output (all in parallel from p_exp), then one LUT level of
        # muxes; each compare is the sign bit of a subtraction wide enough not to overflow
        dw = signed(self._exp_width + 4)
        shift_raw = Signal(dw)          # diff + far; negative: the addend is far above
        beyond_raw = Signal(dw)         # negative: the addend is below the whole window
        sticky_raw = Signal(dw)         # negative: addend bits fall below the window
        above = Signal()
        beyond = Signal()
        p_top = Signal(signed(self._exp_width + 1))
        m.d.comb += [
            shift_raw.eq(self.p_exp - self.plan_c_far),
            beyond_raw.eq(self.plan_c_beyond - self.p_exp),
            sticky_raw.eq(self.plan_c_sticky_exp - self.p_exp),
            above.eq(shift_raw[-1] | self.p_zero),
            beyond.eq(beyond_raw[-1]),
            p_top.eq(self.p_exp + self._top),
            self.shift.eq(Mux(above, 0, Mux(beyond, max_shift, shift_raw))),
            # beyond: the whole addend is below the window; it is nonzero iff ~c_zero
            self.sticky.eq(Mux(above, 0, Mux(beyond, ~self.c_zero, sticky_raw[-1]))),
            self.top_exp.eq(Mux(above & ~self.c_zero, self.plan_c_top, p_top)),
        ]

        # -- align -------------------------------------------------------------------------
        extended = Cat(Const(0, ww - 1), self.align_c_sig)    # addend at the top, aw catch bits below
        shifted = Signal(len(extended))
        m.d.comb += shifted.eq(extended >> self.align_shift)
        m.d.comb += self.aligned.eq(Cat(self.align_sticky, shifted[aw:]))

        # -- add ---------------------------------------------------------------------------
        x = Cat(Const(0, 1 - self._low), self.product, Const(0, ww + 1 - (1 - self._low) - pw))
        y = Cat(self.add_aligned, Const(0, 1))
        first = Signal(ww + 1)
        second = Signal(ww)
        negative = Signal()
        m.d.comb += [
            first.eq(x + Mux(self.eff_sub, ~y, y) + self.eff_sub),
            second.eq(y - x),
            negative.eq(self.eff_sub & first[ww]),
        ]
        m.d.comb += [
            self.sum.eq(Mux(negative, second, first[:ww])),
            self.negated.eq(negative),
        ]
        return m
