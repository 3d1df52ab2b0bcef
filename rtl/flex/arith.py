"""``FlexArith``: the systolic array's arithmetic strategy for flexpoint mantissas."""

from __future__ import annotations

from amaranth.hdl import Signal, signed

from ...golden.formats import FLEX16_5, FlexFormat, IntFormat
from .params import check_int
from .round_shift import build_round, build_shift, decode_shift

__all__ = ["FlexArith"]


class FlexArith:
    """Flexpoint arithmetic for :class:`tensorforge.rtl.systolic.SystolicArray` (the strategy interface of
    :mod:`tensorforge.rtl.systolic.arith`).

    Activations and weights are N-bit two's-complement mantissas of a :class:`FlexFormat` (the shared
    exponents stay with the host); every PE does an exact N x N-bit multiply and adds it to a
    ``acc_bits``-wide two's-complement partial sum, so the array's results ``y`` are the *exact wide
    accumulators* of :func:`tensorforge.golden.flex.flex_gemm_int` before its output conversion,
    as long as the reduction length K satisfies ``2N + ceil(log2 K) <= acc_bits`` (K <= 65536 for the
    default 48 bits and N = 16; beyond that sums wrap modulo ``2**acc_bits`` like :class:`IntArith`).
    The output conversion (shift by ``exp_out - exp_x - exp_w``, RNE, saturation, overflow flag) is
    :meth:`convert`, one :class:`~tensorforge.rtl.flex.round_shift.RoundShift` datapath per result
    lane, applied to ``y`` by the wrapper that owns the exponents.

    Parameters
    ----------
    in_format : FlexFormat
        Format of activations and weights (default flex16+5); only ``man_bits`` reaches the hardware.
    acc_bits : int
        Accumulator width, ``2*man_bits`` .. 64 (default 48, one DSP48-style accumulator).

    ``mac`` is one registered exact multiply-add (``mac_latency`` = 1), ``add`` combinational.
    """

    mac_latency = 1
    zero = 0

    def __init__(self, *, in_format=FLEX16_5, acc_bits=48):
        if not isinstance(in_format, FlexFormat):
            raise TypeError(f"in_format must be a FlexFormat (e.g. FlexFormat(16, 5) for flex16+5), "
                            f"not {in_format!r}")
        self._in_format = in_format
        self._acc_bits = check_int("acc_bits", acc_bits, 2 * in_format.man_bits, 64)
        self._acc_format = IntFormat(acc_bits, signed=True)

    def __repr__(self):
        return f"FlexArith(in_format={self._in_format}, acc_bits={self._acc_bits})"

    in_format = property(lambda self: self._in_format)
    weight_format = property(lambda self: self._in_format)
    acc_format = property(lambda self: self._acc_format, doc="IntFormat(acc_bits): the exact accumulators.")
    acc_bits = property(lambda self: self._acc_bits)
    in_shape = property(lambda self: signed(self._in_format.man_bits))
    weight_shape = property(lambda self: signed(self._in_format.man_bits))
    acc_shape = property(lambda self: signed(self._acc_bits))
    tag = property(lambda self: f"flex{self._in_format.man_bits}p{self._in_format.exp_bits}_i{self._acc_bits}")

    def mac(self, m, *, a, b, c, enable, name):
        result = Signal(self.acc_shape, name=name, reset_less=True)
        with m.If(enable):
            m.d.sync += result.eq(c + a * b)        # exact product; the sum is exact within acc_bits
        return result

    def add(self, m, *, a, b, name):
        total = Signal(self.acc_shape, name=name)
        m.d.comb += total.eq(a + b)
        return total

    def convert(self, m, *, acc, shift, name):
        """Combinational output conversion of one accumulator: returns ``(man, overflow)`` =
        :func:`tensorforge.golden.flex.round_shift` ``(acc, shift, man_bits)`` (RNE); ``shift`` is any
        signed value."""
        n = self._in_format.man_bits
        dec = decode_shift(m, shift, acc_bits=self._acc_bits, man_bits=n, name=name)
        parts = build_shift(m, acc, dec, man_bits=n, name=name)
        return build_round(m, parts, man_bits=n, name=name)
