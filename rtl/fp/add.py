"""IEEE add stream core: d = round(a + b)."""

from __future__ import annotations

from .muladd import MulAdd
from .params import check_float_format, silence_on_error

__all__ = ["Add"]


class Add(MulAdd):
    """Fully pipelined IEEE 754 addition ``d = round(a + b)``, all in ``fmt``.

    Built on the FMA skeleton without the multiplier: ``a`` plays the product (normalized
    at unpack), ``b`` the addend that is aligned to it.

    Parameters
    ----------
    fmt : FloatFormat
        Format of ``a``, ``b`` and ``d``.
    rounding : str
        rne (default), rtz, rdn, rup or rmm; fixed at generation time.
    stages : int
        Pipeline register banks, 0..6 (default 6); latency = ``stages``. Steps: unpack
        (+ alignment plan), align, add, count, shift, round.

    Ports
    -----
    i : In(stream.Signature(StructLayout({"a": fmt.width, "b": fmt.width})))
    o : Out(stream.Signature(StructLayout({"d": fmt.width, "flags": 5})))
        flags: bit0 inexact, bit1 underflow, bit2 overflow, bit3 infinite (0), bit4 invalid.

    Timing and numerics as :class:`~tensorforge.rtl.fp.fma.FMA` (bit-exact with
    :func:`tensorforge.golden.fp.add`): invalid on sNaN and inf - inf; exact zero sums are
    -0 only for (-0) + (-0), and x + (-x) = -0 in RDN.
    """

    MAX_STAGES = 6
    DEFAULT_STAGES = 6

    @silence_on_error
    def __init__(self, *, fmt, rounding="rne", stages=DEFAULT_STAGES):
        check_float_format("fmt", fmt)
        super().__init__(in_format=fmt, acc_format=fmt, rounding=rounding, stages=stages,
                         multiply=False, accumulate=True, fields={"c": "b"})

    fmt = property(lambda self: self.in_format)

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        return {"i": {"a": self.in_format, "b": self.in_format}, "o": {"d": self.acc_format, "flags": None}}
