"""Exact unsigned significand multiplier."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import check_int, silence_on_error

__all__ = ["Multiplier"]


class Multiplier(wiring.Component):
    """Exact product of two unsigned significands, ``p = a * b`` (``a_width + b_width`` bits).

    Written as a plain ``*`` so that synthesis maps it onto DSP blocks: on ECP5 an
    operand pair of at most 18x18 bits (FP16 11x11, BF16 8x8, FP8) uses one
    MULT18X18D; FP32 24x24 uses four (Yosys ``mul2dsp`` splits it). A pipelined core
    keeps this multiplier alone in its stage, because ECP5 times the DSP as
    combinational logic (a registered 16x16 multiply reaches ~145 MHz on the 25k part).

    Parameters
    ----------
    a_width, b_width : int
        Operand widths (>= 1).

    Ports
    -----
    a : In(a_width), b : In(b_width)
    p : Out(a_width + b_width)

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, a_width, b_width):
        self._a_width = check_int("a_width", a_width, 1)
        self._b_width = check_int("b_width", b_width, 1)
        super().__init__({"a": In(a_width), "b": In(b_width), "p": Out(a_width + b_width)})

    a_width = property(lambda self: self._a_width)
    b_width = property(lambda self: self._b_width)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m
