"""Radix-4 Booth multiplier built from logic (for multipliers that do not get a DSP block).

:func:`booth_multiply` returns the exact product ``a * b`` of two integer values (any widths,
signed or unsigned), with the same shape as Amaranth's ``a * b``. It exists because FPGA
synthesis of a plain ``a * b`` that does not go to a DSP block is poor on LUT4 devices: Yosys
0.70 maps a registered 8x8 signed multiply on ECP5 (``synth_ecp5 -nodsp``) to 306 LUT4
(CCU2C counted as two LUT4; 186 with Yosys' own ``booth`` pass), this structure to 107.

Structure
    The operand with fewer bits (``a`` on a tie), taken as a signed number (an unsigned
    operand gets a zero sign bit) and sign-extended to an even width 2n, is recoded into n
    radix-4 Booth digits ``d_i = -2*e[2i+1] + e[2i] + e[2i-1]`` in {-2, -1, 0, 1, 2}
    (``e[-1] = 0``). Each digit selects a partial product from the other operand ``y``:
    ``mag_i = 0, y or 2y``, inverted when the digit is negative (``pp_i = mag_i ^ neg_i``, so
    ``d_i*y = pp_i + neg_i``). The n partial products ``pp_i * 4**i`` are summed by a balanced
    tree of two-input adders (carry chains on an FPGA); the ``+neg_i`` correction of digit i
    rides in the free low bits of term i+1, the last one is added at the root. Every partial
    product bit is one function of five inputs (three digit-select signals and two bits of
    ``y``), so the logic is about ``n*(width(y)+1)`` five-input functions plus ``n - 1`` adders.

Numerics: exact (no truncation; the sum is formed at the width its value range needs).
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Mux, Shape, Signal, signed

__all__ = ["booth_multiply"]

#: Yosys ``keep`` on the partial products and the partial sums: without it ``alumacc`` merges
#: the adder tree into one multi-operand ``$macc`` that is mapped to LUT full adders instead
#: of carry chains (132 instead of 107 LUT4 for a registered 8x8 multiply on ECP5).
#: ``keep`` changes nothing else: the logic between the kept wires is still optimized.
_KEEP = {"keep": 1}


def _as_signed_value(v):
    """(value as a signed Amaranth value, its width): unsigned values get a zero sign bit."""
    shape = v.shape()
    if shape.signed:
        return v.as_signed(), shape.width
    return Cat(v, C(0, 1)).as_signed(), shape.width + 1


def _term_range(width, shift):
    """Value range of a signed ``width``-bit value shifted left by ``shift``."""
    return -(1 << (width - 1)) << shift, ((1 << (width - 1)) - 1) << shift


def _stage(m, terms, negs, enable, name):
    """Register the partial sums ``terms`` and the last digit's negation (in place in ``negs``)."""
    staged = []
    for j, (v, sh, rng) in enumerate(terms):
        reg = Signal(v.shape(), name=f"{name}_stage{j}", reset_less=True)
        with m.If(enable):
            m.d.sync += reg.eq(v)
        staged.append((reg, sh, rng))
    last_neg = Signal(name=f"{name}_stage_neg", reset_less=True)
    with m.If(enable):
        m.d.sync += last_neg.eq(negs[-1])
    negs[-1] = last_neg
    return staged


def booth_multiply(m, a, b, *, name, register=None):
    """The exact product ``a * b`` as a Signal of shape ``(a * b).shape()``, built from radix-4
    Booth partial products and a tree of adders (signals in module ``m`` are named
    ``{name}_...``). See the module docstring.

    ``register``: ``None`` (default) for a combinational multiplier; else a 1-bit enable, and
    the partial sums after the first level of adders are registered (loading while the enable
    is high), so the product appears one enabled cycle after the operands with about half of
    the logic on each side of the register."""
    out_shape = (a * b).shape()
    x, y = (a, b) if a.shape().width <= b.shape().width else (b, a)
    xs, wx = _as_signed_value(x)
    ys, wy = _as_signed_value(y)
    n = (wx + 1) // 2
    e = Cat(C(0, 1), xs, *([xs[-1]] * (2 * n - wx)))   # e[k+1] = x[k], sign-extended to 2n bits
    pp_width = wy + 1                                  # 2*y needs one more bit
    terms = []      # (signed value, its shift, value range)
    negs = []
    for i in range(n):
        b0, b1, b2 = e[2 * i], e[2 * i + 1], e[2 * i + 2]
        one = Signal(name=f"{name}_one{i}")
        two = Signal(name=f"{name}_two{i}")
        neg = Signal(name=f"{name}_neg{i}")
        m.d.comb += [one.eq(b0 ^ b1), two.eq((b2 & ~b1 & ~b0) | (~b2 & b1 & b0)), neg.eq(b2)]
        pp = Signal(signed(pp_width), name=f"{name}_pp{i}", attrs=_KEEP)
        mag = Mux(two, ys << 1, Mux(one, ys, 0))
        m.d.comb += pp.eq(Mux(neg, ~mag, mag))
        if i == 0:
            terms.append((pp, 0, _term_range(pp_width, 0)))
        else:
            # the +1 of the previous digit's negation sits in this term's free low bits
            t = Cat(negs[-1], C(0, 1), pp).as_signed()
            lo, hi = _term_range(pp_width, 2 * i)
            terms.append((t, 2 * (i - 1), (lo, hi + (1 << (2 * (i - 1))))))
        negs.append(neg)
    level = 0
    while len(terms) > 1:
        nxt = []
        for j in range(0, len(terms) - 1, 2):
            (v1, s1, (lo1, hi1)), (v2, s2, (lo2, hi2)) = terms[j], terms[j + 1]
            lo, hi = lo1 + lo2, hi1 + hi2
            total = Signal(Shape.cast(range(lo >> s1, (hi >> s1) + 1)), name=f"{name}_sum{level}_{j // 2}",
                           attrs=_KEEP)
            m.d.comb += total.eq(v1 + (v2 << (s2 - s1)))
            nxt.append((total, s1, (lo, hi)))
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
        if level == 0 and register is not None:
            terms = _stage(m, terms, negs, register, name)
        level += 1
    if level == 0 and register is not None:    # a single digit: no adder before the root
        terms = _stage(m, terms, negs, register, name)
    value, shift, _ = terms[0]
    product = Signal(out_shape, name=f"{name}_product")
    # the root adds the last digit's +1 correction; the product fits out_shape exactly
    m.d.comb += product.eq((value << shift) + (negs[-1] << (2 * (n - 1))))
    return product
