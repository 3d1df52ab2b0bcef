"""IEEE fused multiply-add stream core: d = round(a*b + c), one rounding."""

from __future__ import annotations

from .muladd import MulAdd
from .params import check_acc_pair, check_float_format, silence_on_error

__all__ = ["FMA"]


class FMA(MulAdd):
    """Fully pipelined IEEE 754 fused multiply-add ``d = round(a*b + c)`` (single rounding).

    Parameters
    ----------
    in_format : FloatFormat
        Format of ``a`` and ``b``.
    acc_format : FloatFormat or None
        Format of ``c`` and ``d`` (default ``in_format``). Must have at least the exponent and
        fraction bits of ``in_format``, and infinities if ``in_format`` has them (else ValueError).
    rounding : str
        ``"rne"`` (default), ``"rtz"``, ``"rdn"``, ``"rup"`` or ``"rmm"``; fixed at generation time.
    stages : int
        Pipeline register banks, 0..9 (default 9). Latency = ``stages`` cycles; 0 is purely
        combinational. The datapath has 9 steps: unpack (classify, leading zeros of the
        significands, biased exponent sum), prenormalize (subnormal significand shift, product
        exponent, addend half of the alignment plan), multiply (the significand multiplier alone
        between registers, alignment plan beside it), align, add, count (per-group leading and
        trailing zeros of the sum), merge (the group counts), shift (normalize), round.
        Registers go after the steps chosen by :func:`~tensorforge.rtl.pipeline.plan_cuts` from
        per-step delay weights, and always at the output when ``stages >= 1``; at the default
        every step boundary is registered (FP16xFP16+FP32 on ECP5-25k: about 133 MHz, one
        MULT18X18D).

    Ports (``amaranth.lib.stream``, Verilog ``i__payload``/``i__valid``/``i__ready``, ``o__...``)
    -----
    i : In(stream.Signature(StructLayout({"a": in_format.width, "b": in_format.width, "c": acc_format.width})))
    o : Out(stream.Signature(StructLayout({"d": acc_format.width, "flags": 5})))
        ``flags`` bit0 inexact, bit1 underflow, bit2 overflow, bit3 infinite (always 0), bit4 invalid.

    Timing: ``latency == stages``, ``initiation_interval == 1``. All registers share one
    enable ``o.ready | ~o.valid`` (:class:`~tensorforge.rtl.pipeline.StallPipeline`):
    back-pressure stalls the whole pipeline, nothing is lost or duplicated;
    ``i.ready`` depends combinationally on ``o.ready``.

    Numerics (bit-exact with :func:`tensorforge.golden.fp.fma`)
    -----------------------------------------------------------
    The product is exact and the sum is rounded once. Subnormal inputs and outputs are
    supported (no flush to zero); tininess is detected after rounding; underflow = tiny
    and inexact. Any NaN result is ``acc_format.canonical_nan`` (no payload propagation).
    Invalid: a signaling NaN operand, 0*inf (even when c is a quiet NaN, as SoftFloat),
    inf - inf. Exact zero sums are -0 only when both addends are -0 (x + (-x) is -0 in RDN).
    Overflow per rounding mode as in :class:`~tensorforge.rtl.fp.round.Round`.

    Datapath: a and b are unpacked with subnormals normalized (over two steps), c without; the exact
    significand product (one DSP for significands up to 18 bits) is added to c aligned in a
    window of ``2p_in + p_acc + 2 - min(0, 2p_in - 3 - p_acc)`` bits plus a sticky slot
    (:class:`~tensorforge.rtl.fp.align_add.AlignAdd`), normalized with the exponent floored at
    emin (:class:`~tensorforge.rtl.fp.normalize.Normalize`) and rounded by the shared
    :class:`~tensorforge.rtl.fp.round.Round`.
    """

    MAX_STAGES = 9
    DEFAULT_STAGES = 9

    @silence_on_error
    def __init__(self, *, in_format, acc_format=None, rounding="rne", stages=DEFAULT_STAGES):
        check_float_format("in_format", in_format)
        if acc_format is None:
            acc_format = in_format
        check_float_format("acc_format", acc_format)
        check_acc_pair("in_format", in_format, "acc_format", acc_format)
        super().__init__(in_format=in_format, acc_format=acc_format, rounding=rounding, stages=stages,
                         multiply=True, accumulate=True)

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        return {"i": {"a": self.in_format, "b": self.in_format, "c": self.acc_format},
                "o": {"d": self.acc_format, "flags": None}}
