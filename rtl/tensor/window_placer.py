"""Left shift of a significand into a fixed-point accumulation window (exact alignment)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import check_int, silence_on_error

__all__ = ["WindowPlacer"]


class WindowPlacer(wiring.Component):
    """``placed = sig << offset``: put an exact significand at its position in a
    fixed-point window whose LSB is the smallest possible LSB of the operand (a
    Kulisch-style accumulator slice). Nothing is lost: the window is
    ``sig_width + max_offset`` bits wide.

    Parameters
    ----------
    sig_width : int
        Width of ``sig`` (>= 1).
    max_offset : int
        Largest offset (>= 0).

    Ports
    -----
    sig : In(sig_width), offset : In(range(max_offset + 1))
    placed : Out(sig_width + max_offset)

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, sig_width, max_offset):
        self._sig_width = check_int("sig_width", sig_width, 1)
        self._max_offset = check_int("max_offset", max_offset, 0)
        super().__init__({
            "sig": In(sig_width),
            "offset": In(range(max_offset + 1)),
            "placed": Out(sig_width + max_offset),
        })

    sig_width = property(lambda self: self._sig_width)
    max_offset = property(lambda self: self._max_offset)
    window_width = property(lambda self: self._sig_width + self._max_offset)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.placed.eq((self.sig << self.offset)[:self.window_width])
        return m
