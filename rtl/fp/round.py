"""The one shared rounding component of every floating-point core."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import check_float_format, check_int, check_rounding, silence_on_error

__all__ = ["Round"]


class Round(wiring.Component):
    """Round an exact (truncated + sticky) value to a floating-point format, with flags.

    Input convention
    ----------------
    The value is ``(-1)**sign * (sig / 2**(sig_width - 1) + tiny) * 2**exp``: ``exp`` is
    the exponent of ``sig``'s MSB, and ``sticky`` says that nonzero bits exist below
    ``sig``'s LSB (``sig`` is then a truncation of the exact value; ``tiny`` is positive
    and smaller than ``sig``'s LSB). The caller must deliver one of:

    * a normalized significand: ``sig[-1] == 1`` (any ``exp``; values above the format's
      range overflow, values below ``emin`` are denormalized here);
    * a value in the subnormal range: ``exp <= fmt.emin`` with any leading zeros
      (e.g. from a normalizer with ``exp_floor = fmt.emin``);
    * an exact zero: ``sig == 0`` and ``sticky == 0``; the result is a zero with ``sign``
      (callers apply the IEEE sign rules for exact zero sums themselves).

    ``sig_width`` may be anything >= 1: the top ``sig_bits`` bits are the significand, the
    next bit the round bit, and all lower bits plus ``sticky`` the sticky bit. A ``sig``
    narrower than ``sig_bits + 2`` is an exact value (missing low bits are zero) and then
    ``sticky`` must be 0: a "tiny" below an LSB that is not two bits under the result's LSB
    would leave the round bit undefined.

    Numerics
    --------
    Correct rounding per ``rounding`` (rne, rtz, rdn, rup, rmm, fixed at generation time).
    Subnormal results are produced exactly (no flush to zero). Tininess is detected
    after rounding (value rounded to ``sig_bits`` with an unbounded exponent range is
    below 2**emin), as in RISC-V/SoftFloat. Overflow (rounded value above max finite):
    RNE/RMM give inf; RTZ gives max finite; RUP gives +inf / -max finite; RDN gives
    +max finite / -inf. Formats without infinities (e4m3fn): RNE/RMM give the canonical
    NaN, the directed modes ±max finite. Flags: ``inexact`` (result differs from the exact
    value, including every overflow), ``underflow`` (tiny and inexact), ``overflow``.
    TF32-like formats get zero padding bits. No NaN or infinity inputs exist here: the
    cores mux special results in after this component.

    Parameters
    ----------
    fmt : FloatFormat
        Output format.
    sig_width : int
        Width of ``sig`` (>= 1).
    exp_width : int
        Width of the signed ``exp`` port (>= 2).
    rounding : str
        One of rne, rtz, rdn, rup, rmm.
    exp_min : int or None
        A lower bound the caller guarantees for ``exp``. When it is at least ``fmt.emin``
        the denormalizing right shifter is not generated (e.g. FP16xFP16+FP32: every
        result exponent is far above FP32's emin). None: no bound (shifter present).

    Ports
    -----
    sign : In(1), exp : In(signed(exp_width)), sig : In(sig_width), sticky : In(1)
    bits : Out(fmt.width)
    inexact, underflow, overflow : Out(1)

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, fmt, sig_width, exp_width, rounding="rne", exp_min=None):
        self._fmt = check_float_format("fmt", fmt)
        self._sig_width = check_int("sig_width", sig_width, 1)
        self._exp_width = check_int("exp_width", exp_width, 2)
        self._rounding = check_rounding(rounding)
        if exp_min is not None and (not isinstance(exp_min, int) or isinstance(exp_min, bool)):
            raise TypeError(f"exp_min must be an integer or None, not {exp_min!r}")
        self._exp_min = exp_min
        super().__init__({
            "sign": In(1), "exp": In(signed(exp_width)), "sig": In(sig_width), "sticky": In(1),
            "bits": Out(fmt.width),
            "inexact": Out(1), "underflow": Out(1), "overflow": Out(1),
        })

    fmt = property(lambda self: self._fmt)
    sig_width = property(lambda self: self._sig_width)
    exp_width = property(lambda self: self._exp_width)
    rounding = property(lambda self: self._rounding)
    exp_min = property(lambda self: self._exp_min)

    @property
    def denormalizes(self) -> bool:
        """True when the denormalizing right shifter is generated (``exp`` may be < emin)."""
        return self._exp_min is None or self._exp_min < self._fmt.emin

    def _increment(self, sign, lsb, rnd, sticky):
        mode = self._rounding
        if mode == "rne":
            return rnd & (sticky | lsb)
        if mode == "rmm":
            return rnd
        if mode == "rtz":
            return Const(0, 1)
        if mode == "rup":
            return ~sign & (rnd | sticky)
        return sign & (rnd | sticky)  # rdn

    def _overflow_bits(self, sign: int) -> int:
        fmt, mode = self._fmt, self._rounding
        s = fmt.sign_mask if sign else 0
        if mode in ("rne", "rmm"):
            return (fmt.inf | s) if fmt.has_inf else fmt.canonical_nan
        to_inf = (mode == "rup" and not sign) or (mode == "rdn" and sign)
        if to_inf and fmt.has_inf:
            return fmt.inf | s
        return fmt.max_finite | s

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        p = fmt.sig_bits
        width = max(self._sig_width, p + 2)
        sig = self.sig
        if width > self._sig_width:
            sig = Cat(Const(0, width - self._sig_width), sig)
        sticky = self.sticky
        exp = self.exp

        if self.denormalizes:
            # value below the normal range: shift right to emin, collecting the lost bits
            deficit = Signal(signed(self._exp_width + 2))
            amount = Signal(range(width + 1))
            caught = Signal(2 * width)
            m.d.comb += [
                deficit.eq(fmt.emin - exp),
                amount.eq(Mux(deficit <= 0, 0, Mux(deficit > width, width, deficit))),
                caught.eq(Cat(Const(0, width), sig) >> amount),
            ]
            sig = caught[width:]
            sticky = sticky | (caught[:width] != 0)
            exp = Mux(deficit > 0, fmt.emin, exp)
        sig_s = Signal(width)
        exp_s = Signal(signed(self._exp_width + 2))
        sticky_s = Signal()
        m.d.comb += [sig_s.eq(sig), exp_s.eq(exp), sticky_s.eq(sticky)]
        sig, exp, sticky = sig_s, exp_s, sticky_s

        man = sig[width - p:]
        rnd = sig[width - p - 1]
        rnd2 = sig[width - p - 2]
        rest = sticky
        if width - p - 2 > 0:
            rest = rest | (sig[:width - p - 2] != 0)
        rest_s = Signal()
        m.d.comb += rest_s.eq(rest)
        rest = rest_s
        low = rnd2 | rest
        sign = self.sign

        inc = Signal()
        m.d.comb += inc.eq(self._increment(sign, man[0], rnd, low))
        # Everything but the fraction is derived from the inputs in parallel with the
        # increment's carry chain (no adder -> compare -> mux chain on the critical path).
        low_ones = Signal()
        m.d.comb += low_ones.eq(man[:p - 1] == (1 << (p - 1)) - 1)
        rounded = Signal(p + 1)
        m.d.comb += rounded.eq(man + inc)
        frac = rounded[:p - 1]                                # zero when the increment carries out
        carry = Signal()
        hidden = Signal()
        m.d.comb += [carry.eq(low_ones & man[p - 1] & inc), hidden.eq(man[p - 1] | (low_ones & inc))]
        biased = Signal(signed(self._exp_width + 3))
        biased_up = Signal(signed(self._exp_width + 3))
        m.d.comb += [biased.eq(exp + fmt.bias), biased_up.eq(exp + (fmt.bias + 1))]
        field = Mux(hidden, Mux(carry, biased_up, biased), 0)[:fmt.exp_bits]

        beyond = exp > fmt.emax
        if not fmt.has_inf:
            # S.1111.111 is NaN: a result with all-ones fraction at emax (no carry) overflows
            frac_ones = (low_ones & ~inc) | ((man[:p - 1] == (1 << (p - 1)) - 2) & inc)
            beyond = beyond | ((exp == fmt.emax) & frac_ones)
        too_big = Mux(carry, exp >= fmt.emax, beyond)
        overflow = Signal()
        inexact = Signal()
        m.d.comb += [overflow.eq(hidden & too_big), inexact.eq(rnd | low | overflow)]

        # tininess after rounding: rounding with one more bit of precision (as an
        # unbounded exponent would give a value whose leading one is at emin-1) reaches 2**emin?
        inc_fine = self._increment(sign, rnd, rnd2, rest)
        reaches = low_ones & rnd & inc_fine
        tiny = ~man[p - 1] & ~reaches

        packed = Cat(Const(0, fmt.pad_bits), frac, field, sign)
        m.d.comb += [
            self.bits.eq(Mux(overflow, Mux(sign, self._overflow_bits(1), self._overflow_bits(0)), packed)),
            self.inexact.eq(inexact),
            self.underflow.eq(tiny & inexact),
            self.overflow.eq(overflow),
        ]
        return m
