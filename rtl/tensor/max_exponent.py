"""Balanced maximum tree over signed exponents."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import check_int, silence_on_error

__all__ = ["MaxExponent"]


class MaxExponent(wiring.Component):
    """``max = max(e[0], ..., e[count-1])`` as a balanced tree of compare-select nodes
    (depth ``ceil(log2(count))``), the block-exponent unit of the fused dot product.

    Parameters
    ----------
    count : int
        Number of exponents (>= 1).
    exp_width : int
        Width of the signed exponents (>= 2).

    Ports
    -----
    e : In(ArrayLayout(signed(exp_width), count))
    max : Out(signed(exp_width))

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, count, exp_width):
        self._count = check_int("count", count, 1)
        self._exp_width = check_int("exp_width", exp_width, 2)
        super().__init__({
            "e": In(data.ArrayLayout(signed(exp_width), count)),
            "max": Out(signed(exp_width)),
        })

    count = property(lambda self: self._count)
    exp_width = property(lambda self: self._exp_width)

    def elaborate(self, platform):
        m = Module()
        level = [self.e[i] for i in range(self._count)]
        depth = 0
        while len(level) > 1:
            nxt = []
            for j in range(0, len(level) - 1, 2):
                node = Signal(signed(self._exp_width), name=f"max_l{depth}_{j // 2}")
                m.d.comb += node.eq(Mux(level[j] >= level[j + 1], level[j], level[j + 1]))
                nxt.append(node)
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
            depth += 1
        m.d.comb += self.max.eq(level[0])
        return m
