"""Flexpoint output conversion ``out = sat(rne(acc / 2**shift))`` with an overflow flag."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fp.params import silence_on_error
from .params import MAN_BITS_MAX, MAN_BITS_MIN, SHIFT_BITS_MAX, SHIFT_BITS_MIN, check_int

__all__ = ["RoundShift", "decode_shift", "build_shift", "build_round", "ACC_BITS_MAX"]

#: Widest accumulator accepted.
ACC_BITS_MAX = 96


def decode_shift(m, shift, *, acc_bits, man_bits, name):
    """Shift-amount decode (combinational, independent of the accumulator, so a pipeline can do it
    early): returns ``{"is_right", "amount", "lamt"}`` for :func:`build_shift`.

    Right path (``shift > 0``): ``amount = s - 1`` with s clamped to ``[1, W + 1]`` (larger shifts give
    the same result: every value rounds to 0). Left path (``shift <= 0``): ``lamt = min(-shift, N + 1)``
    (anything nonzero shifted left by N + 1 saturates).
    """
    W, N = acc_bits, man_bits
    is_right = Signal(name=f"{name}_is_right")
    amount = Signal(range(W + 1), name=f"{name}_amount")           # s - 1 in [0, W]
    lamt = Signal(range(N + 2), name=f"{name}_lamt")
    neg = Signal(signed(len(shift) + 1), name=f"{name}_neg_shift")
    m.d.comb += [
        is_right.eq(shift > 0),
        amount.eq(Mux(shift > W + 1, W, Mux(shift < 1, 0, shift - 1))),
        neg.eq(-shift),
        lamt.eq(Mux(neg > N + 1, N + 1, Mux(neg < 0, 0, neg))),
    ]
    return {"is_right": is_right, "amount": amount, "lamt": lamt}


def build_shift(m, acc, dec, *, man_bits, name):
    """Shifter half of the conversion (combinational): returns a dict for :func:`build_round`.

    ``acc``: signed W-bit value; ``dec``: :func:`decode_shift` of the shift. Right path:
    ``t = acc >> amount`` (arithmetic), round bit ``t[0]``, ``q = t >> 1``, sticky = OR of the acc
    bits below the round bit. Left path: ``acc`` clamped to ``[-2**N, 2**N]``, shifted left by ``lamt``.
    """
    W = len(acc)
    N = man_bits
    amount = dec["amount"]
    t = Signal(signed(W), name=f"{name}_t")
    m.d.comb += t.eq(acc >> amount)
    # acc bit j is below the round bit iff j <= s - 2, i.e. j < amount
    thermo = Signal(W, name=f"{name}_below")
    for j in range(W):
        m.d.comb += thermo[j].eq(amount > j)
    sticky = Signal(name=f"{name}_sticky")
    m.d.comb += sticky.eq((acc.as_unsigned() & thermo).any())
    # clamp to [-2**N, 2**N] before the left shift (values outside saturate anyway); "fits" is a
    # reduction over the high bits (acc in [-2**N, 2**N - 1]) rather than a wide comparison
    big = 1 << N
    clamped = Signal(signed(N + 2), name=f"{name}_clamped")
    if W > N + 1:
        high = acc[N:]
        fits = Signal(name=f"{name}_fits")
        m.d.comb += fits.eq(~high.any() | high.all())
        m.d.comb += clamped.eq(Mux(fits, acc[:N + 1].as_signed(), Mux(acc[-1], -big, big)))
    else:
        m.d.comb += clamped.eq(acc)
    left = Signal(signed(2 * N + 3), name=f"{name}_left")
    m.d.comb += left.eq(clamped << dec["lamt"])
    return {"is_right": dec["is_right"], "t": t, "sticky": sticky, "left": left}


def build_round(m, parts, *, man_bits, name):
    """Rounding half (combinational): RNE increment ``round & (sticky | lsb)``, path select,
    saturation to ``[-2**(N-1), 2**(N-1) - 1]``. Returns ``(out, overflow)`` signals.

    The saturation test looks at the truncated quotient ``q`` and the increment separately (in
    parallel with the N-bit increment) instead of comparing the incremented wide value:
    ``q + inc > hi`` iff ``q > hi`` or ``q == hi and inc``; ``q + inc < lo`` iff ``q < lo - 1`` or
    ``q == lo - 1 and not inc``.
    """
    N = man_bits
    t = parts["t"]
    rnd = t[0]
    q = t[1:].as_signed()                           # W >= 4
    inc = Signal(name=f"{name}_inc")
    m.d.comb += inc.eq(rnd & (parts["sticky"] | t[1]))
    hi, lo = (1 << (N - 1)) - 1, -(1 << (N - 1))
    left = parts["left"]
    over = Signal(name=f"{name}_over")
    under = Signal(name=f"{name}_under")
    with m.If(parts["is_right"]):
        m.d.comb += [over.eq((q > hi) | ((q == hi) & inc)),
                     under.eq((q < lo - 1) | ((q == lo - 1) & ~inc))]
    with m.Else():
        m.d.comb += [over.eq(left > hi), under.eq(left < lo)]
    inside = Signal(signed(N), name=f"{name}_inside")
    m.d.comb += inside.eq(Mux(parts["is_right"], q[:N] + inc, left[:N]))
    out = Signal(signed(N), name=f"{name}_out")
    overflow = Signal(name=f"{name}_overflow")
    m.d.comb += [
        overflow.eq(over | under),
        out.eq(Mux(over, hi, Mux(under, lo, inside))),
    ]
    return out, overflow


class RoundShift(wiring.Component):
    """Combinational flexpoint output conversion, bit-exact with :func:`tensorforge.golden.flex.round_shift`
    (``rounding="rne"``).

    Parameters
    ----------
    acc_bits : int
        Width W of the signed accumulator input, 4..96.
    man_bits : int
        Output mantissa width N, 2..32 (any combination with acc_bits).
    shift_bits : int
        Width of the signed shift input, 2..16 (default 8: shifts -128..127).

    Ports (plain signals)
    -----
    acc : In(signed(acc_bits));  shift : In(signed(shift_bits))
    out : Out(signed(man_bits));  overflow : Out(1)

    Numerics: ``shift > 0``: round half to even of ``acc / 2**shift`` (round bit = acc bit s-1,
    sticky = OR of the bits below, lsb = bit s; increment iff round & (sticky | lsb));
    ``shift <= 0``: exact left shift by ``-shift``. Then saturation to
    ``[-2**(N-1), 2**(N-1) - 1]``; ``overflow`` is high iff saturation changed the value (a
    result of exactly the maximum or minimum is not an overflow). Any shift value is legal.
    """

    @silence_on_error
    def __init__(self, *, acc_bits, man_bits=16, shift_bits=8):
        self._acc_bits = check_int("acc_bits", acc_bits, 4, ACC_BITS_MAX)
        self._man_bits = check_int("man_bits", man_bits, MAN_BITS_MIN, MAN_BITS_MAX)
        self._shift_bits = check_int("shift_bits", shift_bits, SHIFT_BITS_MIN, SHIFT_BITS_MAX)
        super().__init__({
            "acc": In(signed(acc_bits)), "shift": In(signed(shift_bits)),
            "out": Out(signed(man_bits)), "overflow": Out(1),
        })

    acc_bits = property(lambda self: self._acc_bits)
    man_bits = property(lambda self: self._man_bits)
    shift_bits = property(lambda self: self._shift_bits)

    def elaborate(self, platform):
        m = Module()
        dec = decode_shift(m, self.shift, acc_bits=self._acc_bits, man_bits=self._man_bits, name="rs")
        parts = build_shift(m, self.acc, dec, man_bits=self._man_bits, name="rs")
        out, ovf = build_round(m, parts, man_bits=self._man_bits, name="rs")
        m.d.comb += [self.out.eq(out), self.overflow.eq(ovf)]
        return m
