"""Exact sum of signed terms: a balanced tree of adders or a carry-save (3:2) tree."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import check_bool, check_int, silence_on_error

__all__ = ["AdderTree"]


class AdderTree(wiring.Component):
    """Exact sum of ``count`` two's-complement terms plus an optional small unsigned
    ``extra``: ``sum = terms[0] + ... + terms[count-1] + extra``.

    Two structures with identical results:

    - ``carry_save=False``: a balanced tree of adders (depth ``ceil(log2(count))`` carry
      chains); every level grows one carry bit.
    - ``carry_save=True``: 3:2 carry-save compressors (one LUT level each, no carry chain)
      reduce all terms to two rows, and one adder adds those. On FPGA fabric this trades
      about twice the LUTs of the compressed rows for ``ceil(log2(count)) - 1`` fewer carry
      chains on the path: the fast choice for narrow terms (the NVIDIA lanes' ~26-bit
      aligned terms). Everything is computed modulo ``2**sum_width``, which is exact because
      the true sum fits.

    ``extra`` lets a caller negate terms cheaply: send ``~x`` (one XOR level) instead of
    ``-x`` (a carry chain) and count the missing +1s into ``extra``.

    Parameters
    ----------
    count : int
        Number of terms (>= 1).
    width : int
        Width of each signed term (>= 1).
    extra_width : int
        Width of the unsigned ``extra`` input (0 = no such input; default 0).
    carry_save : bool
        Structure (default False: adder tree).

    Ports
    -----
    terms : In(ArrayLayout(signed(width), count))
    extra : In(extra_width)  (only when ``extra_width > 0``)
    sum : Out(signed(sum_width)), ``sum_width = width + ceil(log2(count))``
        The caller guarantees that the exact total fits (it does whenever every term, with
        its share of ``extra``, lies in ``[-2**(width-1), 2**(width-1))``, e.g. ones'
        complement terms ``~x`` of magnitudes ``x < 2**(width-1)`` with one unit of
        ``extra`` each).

    Purely combinational.
    """

    @silence_on_error
    def __init__(self, *, count, width, extra_width=0, carry_save=False):
        self._count = check_int("count", count, 1)
        self._width = check_int("width", width, 1)
        self._sum_width = width + (count - 1).bit_length()
        self._extra_width = check_int("extra_width", extra_width, 0, self._sum_width - 1)
        self._carry_save = check_bool("carry_save", carry_save)
        members = {"terms": In(data.ArrayLayout(signed(width), count))}
        if extra_width:
            members["extra"] = In(extra_width)
        members["sum"] = Out(signed(self._sum_width))
        super().__init__(members)

    count = property(lambda self: self._count)
    width = property(lambda self: self._width)
    extra_width = property(lambda self: self._extra_width)
    carry_save = property(lambda self: self._carry_save)
    sum_width = property(lambda self: self._sum_width)

    def elaborate(self, platform):
        m = Module()
        if self._carry_save:
            self._elaborate_carry_save(m)
        else:
            self._elaborate_adders(m)
        return m

    def _elaborate_adders(self, m):
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
        total = level[0]
        if self._extra_width:
            total = total + self.extra
        m.d.comb += self.sum.eq(total)

    def _elaborate_carry_save(self, m):
        W = self._sum_width
        rows = []
        for i in range(self._count):
            r = Signal(W, name=f"row{i}")
            m.d.comb += r.eq(self.terms[i])               # sign-extended to the sum width
            rows.append(r)
        if self._extra_width:
            r = Signal(W, name="row_extra")
            m.d.comb += r.eq(self.extra)
            rows.append(r)
        depth = 0
        while len(rows) > 2:
            nxt = []
            for j in range(0, len(rows) - 2, 3):
                a, b, c = rows[j], rows[j + 1], rows[j + 2]
                s = Signal(W, name=f"csa_l{depth}_{j // 3}_s")
                cy = Signal(W, name=f"csa_l{depth}_{j // 3}_c")
                maj = (a & b) | (a & c) | (b & c)
                m.d.comb += [s.eq(a ^ b ^ c), cy.eq(maj << 1)]   # modulo 2**W
                nxt += [s, cy]
            nxt += rows[len(rows) - len(rows) % 3:]
            rows = nxt
            depth += 1
        total = rows[0] + rows[1] if len(rows) == 2 else rows[0]
        m.d.comb += self.sum.eq(total[:W])
