"""Right shift of a significand to a common exponent, truncating to a fixed number of fraction bits."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import check_int, silence_on_error

__all__ = ["TruncatingAligner"]


class TruncatingAligner(wiring.Component):
    """``term = floor(sig * 2**(frac_out - frac_in - shift))``: align an unsigned
    significand with ``frac_in`` fraction bits to an exponent ``shift`` places higher and
    keep ``frac_out`` fraction bits, dropping everything below (truncation toward zero of
    the magnitude; no guard, round or sticky bit). This is step 5 of the NVIDIA
    tensor-core algorithm (NUMERICS.md section 2).

    Parameters
    ----------
    sig_width : int
        Width of ``sig`` (>= 1).
    frac_in : int
        Fraction bits of ``sig`` (0 .. sig_width).
    frac_out : int
        Fraction bits kept (>= 0).

    Ports
    -----
    sig : In(sig_width)
    shift : In(range(max_shift + 1))
        Right shift; ``max_shift`` (property) is the smallest shift that always gives zero.
        Every value the port can hold is valid: shifts above ``max_shift`` (up to the
        port's all-ones value) also give zero, so callers may saturate a distance to the
        port width instead of clamping it to ``max_shift`` exactly.
    term : Out(term_width)
        ``term_width = sig_width - frac_in + frac_out`` (the integer bits are unchanged).

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, sig_width, frac_in, frac_out):
        self._sig_width = check_int("sig_width", sig_width, 1)
        self._frac_in = check_int("frac_in", frac_in, 0, sig_width)
        self._frac_out = check_int("frac_out", frac_out, 0)
        self._up = max(0, frac_out - frac_in)          # left shift before the alignment shift
        self._down = max(0, frac_in - frac_out)        # fraction bits always dropped
        self._term_width = sig_width - frac_in + frac_out
        self._max_shift = sig_width + self._up - self._down
        super().__init__({
            "sig": In(sig_width),
            "shift": In(range(self._max_shift + 1)),
            "term": Out(self._term_width),
        })

    sig_width = property(lambda self: self._sig_width)
    frac_in = property(lambda self: self._frac_in)
    frac_out = property(lambda self: self._frac_out)
    term_width = property(lambda self: self._term_width)
    max_shift = property(lambda self: self._max_shift,
                         doc="Shift at and above which ``term`` is always 0 (the port's maximum).")

    def elaborate(self, platform):
        m = Module()
        x = Cat(Const(0, self._up), self.sig) if self._up else self.sig
        shifted = Signal(len(x), name="shifted")
        m.d.comb += shifted.eq(x >> self.shift)
        m.d.comb += self.term.eq(shifted[self._down:])
        return m
