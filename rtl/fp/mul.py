"""IEEE multiply stream core: d = round(a*b)."""

from __future__ import annotations

from .muladd import MulAdd
from .params import check_float_format, silence_on_error

__all__ = ["Mul"]


class Mul(MulAdd):
    """Fully pipelined IEEE 754 multiply ``d = round(a*b)`` with ``a, b`` in ``fmt``, ``d`` in ``out_format``.

    Parameters
    ----------
    fmt : FloatFormat
        Format of ``a`` and ``b``.
    out_format : FloatFormat or None
        Format of ``d`` (default ``fmt``). Any format: a wider one makes the product exact
        (e.g. FP16 x FP16 -> FP32), a narrower one rounds once. An infinite product that
        ``out_format`` cannot hold (no infinities, e4m3fn) gives its canonical NaN + invalid.
    rounding : str
        rne (default), rtz, rdn, rup or rmm; fixed at generation time.
    stages : int
        Pipeline register banks, 0..4 (default 4); latency = ``stages``. Steps: unpack,
        multiply, normalize (1 bit), round.

    Ports
    -----
    i : In(stream.Signature(StructLayout({"a": fmt.width, "b": fmt.width})))
    o : Out(stream.Signature(StructLayout({"d": out_format.width, "flags": 5})))
        flags: bit0 inexact, bit1 underflow, bit2 overflow, bit3 infinite (0), bit4 invalid.

    Timing and numerics as :class:`~tensorforge.rtl.fp.fma.FMA` (bit-exact with
    :func:`tensorforge.golden.fp.mul`): NaN -> canonical NaN, invalid on sNaN and 0*inf,
    zero products have sign(a) xor sign(b).
    """

    MAX_STAGES = 4
    DEFAULT_STAGES = 4

    @silence_on_error
    def __init__(self, *, fmt, out_format=None, rounding="rne", stages=DEFAULT_STAGES):
        check_float_format("fmt", fmt)
        if out_format is None:
            out_format = fmt
        check_float_format("out_format", out_format)
        super().__init__(in_format=fmt, acc_format=out_format, rounding=rounding, stages=stages,
                         multiply=True, accumulate=False)

    fmt = property(lambda self: self.in_format)
    out_format = property(lambda self: self.acc_format)

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        return {"i": {"a": self.in_format, "b": self.in_format}, "o": {"d": self.acc_format, "flags": None}}
