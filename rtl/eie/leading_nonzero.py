"""Leading-non-zero detection (LNZD) tree: index of the lowest set bit of a bit vector.

EIE's central unit finds the next non-zero input activation with a tree of LNZD
nodes (Han et al., ISCA 2016, section IV, "Activation queue and load balancing":
a 4-ary tree over the PEs' non-zero flags). Here the tree runs over a bitmap with
one bit per activation (bit ``j`` = "activation ``j`` is non-zero and not yet
broadcast"); "leading" means the *lowest* index, i.e. the next column in
broadcast order.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LeadingNonZero"]


class LeadingNonZero(wiring.Component):
    """Combinational tree finding the lowest set bit.

    Parameters (keyword-only)
    -------------------------
    width : int, 1..65536
        Bits examined.
    fanin : int, 2..16 (default 4, as in the paper)
        Children per tree node. Depth is ``ceil(log_fanin(width))`` levels of
        ``fanin``-way priority selection.

    Ports
    -----
    bits : In(width)
    valid : Out(1)
        Some bit is set.
    index : Out(range(width))
        Lowest set bit's index (0 when ``valid`` is 0).

    Latency: 0 (combinational).
    """

    def __init__(self, *, width, fanin=4):
        self._MustUse__used = True
        if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= 65536:
            raise ValueError(f"width must be an integer between 1 and 65536, not {width!r}")
        if not isinstance(fanin, int) or isinstance(fanin, bool) or not 2 <= fanin <= 16:
            raise ValueError(f"fanin must be an integer between 2 and 16, not {fanin!r}")
        self._width, self._fanin = width, fanin
        super().__init__({"bits": In(width), "valid": Out(1), "index": Out(range(max(2, width)))})
        self._MustUse__used = False

    width = property(lambda self: self._width)
    fanin = property(lambda self: self._fanin)

    @property
    def levels(self):
        """Tree levels (0 for width 1)."""
        n, lv = self._width, 0
        while n > 1:
            n = -(-n // self._fanin)
            lv += 1
        return lv

    def elaborate(self, platform):
        m = Module()
        iw = len(self.index)
        # leaves: (valid, index relative to the leaf group = 0)
        nodes = [(self.bits[i], None) for i in range(self._width)]
        span = 1                                    # bits covered by one node of the current level
        level = 0
        while len(nodes) > 1:
            nxt = []
            for g in range(0, len(nodes), self._fanin):
                group = nodes[g:g + self._fanin]
                valid = Signal(name=f"lnzd_v{level}_{g // self._fanin}")
                index = Signal(iw, name=f"lnzd_i{level}_{g // self._fanin}")
                # priority: the lowest child with a set bit wins; offsets are constants
                sel = 0
                for c in reversed(range(len(group))):
                    cv, ci = group[c]
                    off = c * span
                    sel = Mux(cv, (off if ci is None else ci + off), sel)
                m.d.comb += [valid.eq(_any([cv for cv, _ in group])), index.eq(sel)]
                nxt.append((valid, index))
            nodes = nxt
            span *= self._fanin
            level += 1
        v, i = nodes[0]
        m.d.comb += [self.valid.eq(v), self.index.eq(0 if i is None else i)]
        return m


def _any(sigs):
    out = sigs[0]
    for s in sigs[1:]:
        out = out | s
    return out
