"""Block exponent and saturated alignment distances in one compare level (all-pairs differences)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import check_int, silence_on_error

__all__ = ["AlignmentPlanner"]


class AlignmentPlanner(wiring.Component):
    """``max = max(e[0], ..., e[count-1])`` and every distance ``max - e[i]`` saturated to
    the width of its shift port: the exponent planning of the NVIDIA truncating dot product
    (NUMERICS.md section 2, steps 4-5), built for speed rather than area.

    A balanced compare-select tree (what this unit replaced) chains
    ``ceil(log2(count))`` compare-select levels and then needs one more subtraction per
    term. This unit instead computes every pairwise difference ``e[i] - e[j]`` at once
    (``count * (count - 1)`` subtractors of ``exp_width + 1`` bits, all in parallel), takes
    the one-hot index of the maximum from their signs (the first index wins ties), and
    selects ``max`` and each distance ``e[winner] - e[j]`` with an AND-OR multiplexer. Depth:
    one subtractor, an AND of ``count - 1`` sign bits and a ``count``-way select, whatever
    the count.

    Parameters
    ----------
    count : int
        Number of exponents (>= 1).
    exp_width : int
        Width of the signed exponents (>= 2).
    shift_widths : sequence of int
        Width of each distance output (``count`` values, each >= 1).

    Ports
    -----
    e : In(ArrayLayout(signed(exp_width), count))
    max : Out(signed(exp_width))
    winner : Out(count)
        One-hot index of the maximum (the lowest index among equal maxima), so that a caller
        can select any value precomputed per exponent (``f(e[i])``) instead of computing
        ``f(max)`` after the maximum is known.
    shift[i] : Out(shift_widths[i])
        ``min(max - e[i], 2**shift_widths[i] - 1)`` (always >= 0). A consumer whose
        shift of ``max_shift`` or more already gives zero (e.g.
        :class:`~tensorforge.rtl.tensor.truncating_aligner.TruncatingAligner`) only needs
        ``2**shift_widths[i] - 1 >= max_shift``: the saturated value is then exactly as
        good as the true distance.

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, count, exp_width, shift_widths):
        self._count = check_int("count", count, 1)
        self._exp_width = check_int("exp_width", exp_width, 2)
        widths = tuple(shift_widths) if isinstance(shift_widths, (list, tuple)) else None
        if widths is None or len(widths) != count:
            raise ValueError(f"shift_widths must be a sequence of {count} widths (one per exponent), "
                             f"not {shift_widths!r}")
        for idx, w in enumerate(widths):
            check_int(f"shift_widths[{idx}]", w, 1)
        self._shift_widths = widths
        super().__init__({
            "e": In(data.ArrayLayout(signed(exp_width), count)),
            "max": Out(signed(exp_width)),
            "winner": Out(count),
            "shift": Out(data.StructLayout({f"s{i}": w for i, w in enumerate(widths)})),
        })

    count = property(lambda self: self._count)
    exp_width = property(lambda self: self._exp_width)
    shift_widths = property(lambda self: self._shift_widths)

    def shift_of(self, i):
        """The ``shift[i]`` output (a plain unsigned value of ``shift_widths[i]`` bits)."""
        return getattr(self.shift, f"s{i}")

    def elaborate(self, platform):
        m = Module()
        n, ew = self._count, self._exp_width
        e = [self.e[i] for i in range(n)]
        if n == 1:
            m.d.comb += [self.max.eq(e[0]), self.winner.eq(1), self.shift_of(0).eq(0)]
            return m
        diff, ge = {}, {}
        for i in range(n):
            for j in range(n):
                if i != j:
                    d = Signal(signed(ew + 1), name=f"diff_{i}_{j}")
                    m.d.comb += d.eq(e[i] - e[j])
                    diff[i, j] = d
                    ge[i, j] = ~d[-1]                       # e[i] >= e[j]
        # winner i: strictly above every earlier exponent, at least every later one
        win = []
        for i in range(n):
            terms = [~ge[j, i] for j in range(i)] + [ge[i, j] for j in range(i + 1, n)]
            w = Signal(name=f"win_{i}")
            acc = Const(1, 1)
            for t in terms:
                acc = acc & t
            m.d.comb += [w.eq(acc), self.winner[i].eq(w)]
            win.append(w)
        mx = Const(0, ew)
        for i in range(n):
            mx = mx | (e[i].as_unsigned() & win[i].replicate(ew))
        m.d.comb += self.max.eq(mx)
        for j in range(n):
            w = self._shift_widths[j]
            out = Const(0, w)
            for i in range(n):
                if i == j:
                    continue                                  # winner j: distance 0
                d = diff[i, j]
                # only read when i wins, so d >= 0: saturate on any set bit above the port width
                high = d[w:ew + 1].any() if w < ew + 1 else Const(0, 1)
                sat = Signal(w, name=f"sat_{i}_{j}")
                m.d.comb += sat.eq(d[:w] | high.replicate(w))
                out = out | (sat & win[i].replicate(w))
            m.d.comb += self.shift_of(j).eq(out)
        return m
