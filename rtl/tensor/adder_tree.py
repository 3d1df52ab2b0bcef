"""Balanced tree of exact signed adders."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import check_int, silence_on_error

__all__ = ["AdderTree"]


class AdderTree(wiring.Component):
    """Exact sum of ``count`` two's-complement terms, as a balanced tree of adders
    (depth ``ceil(log2(count))``). Every level grows one carry bit, so nothing can
    overflow: ``sum_width = width + ceil(log2(count))``.

    Parameters
    ----------
    count : int
        Number of terms (>= 1).
    width : int
        Width of each signed term (>= 1).

    Ports
    -----
    terms : In(ArrayLayout(signed(width), count))
    sum : Out(signed(sum_width))

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, count, width):
        self._count = check_int("count", count, 1)
        self._width = check_int("width", width, 1)
        self._sum_width = width + (count - 1).bit_length()
        super().__init__({
            "terms": In(data.ArrayLayout(signed(width), count)),
            "sum": Out(signed(self._sum_width)),
        })

    count = property(lambda self: self._count)
    width = property(lambda self: self._width)
    sum_width = property(lambda self: self._sum_width)

    def elaborate(self, platform):
        m = Module()
        level = [self.terms[i] for i in range(self._count)]
        w = self._width
        depth = 0
        while len(level) > 1:
            w += 1
            nxt = []
            for j in range(0, len(level) - 1, 2):
                node = Signal(signed(w), name=f"sum_l{depth}_{j // 2}")
                m.d.comb += node.eq(level[j] + level[j + 1])
                nxt.append(node)
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
            depth += 1
        m.d.comb += self.sum.eq(level[0])
        return m
