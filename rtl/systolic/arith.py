"""Arithmetic strategies for the systolic array (in the spirit of Gemmini's ``Arithmetic``).

The PE, mesh and array are written once against the small interface below; the number
format lives entirely in the strategy object, so the array code never branches on it.

Strategy interface
    ``in_format``, ``weight_format``, ``acc_format``
        The format objects (from :mod:`tensorforge.golden.formats`) of activations, weights and
        accumulators / results.
    ``in_shape``, ``weight_shape``, ``acc_shape``
        Amaranth shapes of the corresponding port fields.
    ``mac_latency``
        Cycles from the operands ``a``, ``b`` of :meth:`mac` to its result (>= 1).
    ``addend_delay`` (optional, default 0)
        Cycles after ``a`` and ``b`` at which :meth:`mac` samples ``c`` (0 <= addend_delay <
        mac_latency): the multiply runs ahead of the add, so a weight-stationary partial sum
        needs only ``mac_latency - addend_delay`` cycles per PE row.
    ``zero``
        The accumulator value that starts a sum (an ``int`` bit pattern: 0, i.e. +0 in FP).
    ``mac(m, *, a, b, c, enable, name[, soft])``
        Builds ``c + a*b`` in module ``m`` and returns the result, ``mac_latency`` cycles after
        ``a``, ``b`` (and ``mac_latency - addend_delay`` cycles after ``c``), through registers
        that load only when ``enable`` is high. ``soft=True`` (passed only when asked for, by
        strategies with ``soft_multiplier_support``) builds the multiplier from logic instead of
        leaving it to DSP inference.
    ``add(m, *, a, b, name)``
        Builds the combinational sum ``a + b`` of two accumulator values (the WS accumulator).
    ``tag``
        Short name for top-level module names, e.g. ``i8_i32``.
"""

from __future__ import annotations

from amaranth.hdl import Shape, Signal, signed, unsigned

from tensorforge.golden.formats import FloatFormat, IntFormat, INT8, INT32, FP16, FP32

from .booth import booth_multiply

__all__ = ["IntArith", "FloatArith", "arith_for"]


class IntArith:
    """Integer arithmetic: exact products, two's-complement accumulation wrapping modulo
    ``2**acc_format.width`` (NUMERICS.md section 3).

    Parameters
    ----------
    in_format : IntFormat
        Activation format (default ``i8``).
    acc_format : IntFormat
        Accumulator and result format (default ``i32``). Products and sums wrap to this
        width; choose ``acc_width >= in_width + weight_width + ceil(log2(K))`` to make overflow
        impossible for reductions of length K.
    weight_format : IntFormat or None
        Weight format (default: ``in_format``).
    stages : int
        Pipeline registers of each ``mac`` (``mac_latency`` = stages), 1..7 (default 1).
        1: one registered multiply-add, ``r <= c + a*b``.
        2: the product is registered first (``p <= a*b``) and the addend is added in the next
        cycle (``r <= c + p``, ``addend_delay`` = 1): the multiplier -- a DSP block or logic --
        is followed directly by a register, the multiply and the add are timed separately.
        3: the operands are registered as well (``a', b' <= a, b``; ``p <= a'*b'``;
        ``r <= c + p``, ``addend_delay`` = 2): nothing but the multiplier between registers
        (in the array the operand register takes the weight-bank selection off the multiplier
        path). 4 and 5: two product registers, then (5) two operand registers; 6 and 7: three.
        The extra registers let place-and-route spread the way between a DSP block and the
        rest of its PE over several short hops when the two are far apart (DSP blocks sit in
        fixed rows of the device); in a multiplier built from logic (``soft``) the first
        product register sits inside the Booth adder tree instead, halving its logic depth.
        In general ``stages - 1`` registers, ``(stages - 1) // 2`` on the operands and the
        rest on the product; ``addend_delay = stages - 1``.
        Since the addend is only sampled by the add, a weight-stationary partial sum
        still moves one PE row per cycle; the extra stages lengthen the array's latency by
        ``stages - 1`` cycles, not by ``rows * (stages - 1)``.
        The output-stationary dataflow needs ``stages == 1`` (its accumulator loops through
        the multiply-add).

    ``add`` is combinational. ``mac(..., soft=True)`` builds the multiplier from logic as a
    radix-4 Booth multiplier (:func:`.booth.booth_multiply`) instead of ``a * b`` (which the
    synthesis tool maps to a DSP block when it can). Numerics do not depend on ``stages`` or
    ``soft``: the registered product keeps the low ``min(in_width + weight_width,
    acc_width)`` bits of the exact product, which is all the wrapping sum needs.
    """

    zero = 0
    soft_multiplier_support = True

    def __init__(self, *, in_format=INT8, acc_format=INT32, weight_format=None, stages=1):
        weight_format = in_format if weight_format is None else weight_format
        for value, name in ((in_format, "in_format"), (weight_format, "weight_format"), (acc_format, "acc_format")):
            if not isinstance(value, IntFormat):
                raise TypeError(f"{name} must be an IntFormat (e.g. IntFormat(8) for i8), not {value!r}")
        if not isinstance(stages, int) or isinstance(stages, bool) or stages not in range(1, 8):
            raise ValueError(f"stages must be an integer between 1 and 7 for integer arithmetic, not {stages!r}")
        self._in_format = in_format
        self._weight_format = weight_format
        self._acc_format = acc_format
        self._stages = stages

    def __repr__(self):
        return f"IntArith(in_format={self._in_format}, weight_format={self._weight_format}, " \
               f"acc_format={self._acc_format}, stages={self._stages})"

    @property
    def stages(self):
        return self._stages

    @property
    def mac_latency(self):
        return self._stages

    @property
    def addend_delay(self):
        return self._stages - 1

    @property
    def in_format(self):
        return self._in_format

    @property
    def weight_format(self):
        return self._weight_format

    @property
    def acc_format(self):
        return self._acc_format

    @staticmethod
    def _shape(fmt) -> Shape:
        return signed(fmt.width) if fmt.signed else unsigned(fmt.width)

    @property
    def in_shape(self):
        return self._shape(self._in_format)

    @property
    def weight_shape(self):
        return self._shape(self._weight_format)

    @property
    def acc_shape(self):
        return self._shape(self._acc_format)

    @property
    def tag(self):
        w = "" if self._weight_format == self._in_format else f"{self._weight_format}_"
        s = "" if self._stages == 1 else f"_s{self._stages}"
        return f"{self._in_format}_{w}{self._acc_format}{s}"

    def mac(self, m, *, a, b, c, enable, name, soft=False):
        result = Signal(self.acc_shape, name=name, reset_less=True)
        operand_regs = (self._stages - 1) // 2
        product_regs = self._stages - 1 - operand_regs
        for i in range(operand_regs):
            sfx = "" if i == 0 else str(i + 1)
            a_reg = Signal.like(a, name=f"{name}_a{sfx}", reset_less=True)
            b_reg = Signal.like(b, name=f"{name}_b{sfx}", reset_less=True)
            with m.If(enable):
                m.d.sync += [a_reg.eq(a), b_reg.eq(b)]
            a, b = a_reg, b_reg
        if soft and product_regs >= 2:
            # the first product register moves into the Booth adder tree (after its first level)
            product = booth_multiply(m, a, b, name=f"{name}_booth", register=enable)
            product_regs -= 1
        elif soft:
            product = booth_multiply(m, a, b, name=f"{name}_booth")
        else:
            product = a * b
        if self._stages == 1:
            with m.If(enable):
                # the exact product and sum are truncated to acc width: wrap-around modulo 2**width
                m.d.sync += result.eq(c + product)
            return result
        width = min(product.shape().width, self._acc_format.width)
        # the low acc-width bits of the product are all the wrapping sum needs; a product
        # narrower than the accumulator keeps its signedness so that it is sign-extended
        p_shape = product.shape() if width == product.shape().width else unsigned(width)
        for i in range(product_regs):
            sfx = "" if i == 0 else str(i + 1)
            p_reg = Signal(p_shape, name=f"{name}_product{sfx}", reset_less=True)
            with m.If(enable):
                m.d.sync += p_reg.eq(product)
            product = p_reg
        with m.If(enable):
            # c is sampled now, addend_delay cycles after a and b
            m.d.sync += result.eq(c + product)
        return result

    def add(self, m, *, a, b, name):
        total = Signal(self.acc_shape, name=name)
        m.d.comb += total.eq(a + b)
        return total


class FloatArith:
    """Floating-point arithmetic built on the project's fused multiply-add
    (:class:`tensorforge.rtl.fp.fma.FMA`).

    Parameters
    ----------
    in_format : FloatFormat
        Activation and weight format (default FP16).
    acc_format : FloatFormat
        Accumulator format (default FP32).
    rounding : str
        Rounding mode of every FMA and add (default ``"rne"``).
    stages : int
        Pipeline registers of each PE's FMA (``mac_latency`` = stages, >= 1). The
        output-stationary dataflow needs ``stages == 1`` (the accumulator loops through the FMA).

    Numerics: each ``mac`` is one IEEE FMA ``round(a*b + c)`` (a, b in ``in_format``, c in
    ``acc_format``); ``add`` is ``round(a + b)`` done by a combinational FMA in
    ``acc_format`` with ``b = 1.0``. The array's order of these operations is specified in
    :mod:`tensorforge.golden.systolic`.
    """

    zero = 0

    def __init__(self, *, in_format=FP16, acc_format=FP32, rounding="rne", stages=1):
        for value, name in ((in_format, "in_format"), (acc_format, "acc_format")):
            if not isinstance(value, FloatFormat):
                raise TypeError(f"{name} must be a FloatFormat (e.g. FP16), not {value!r}")
        if not isinstance(stages, int) or isinstance(stages, bool) or stages < 1:
            raise ValueError(f"stages must be an integer >= 1, not {stages!r}")
        self._in_format = in_format
        self._acc_format = acc_format
        self._rounding = rounding
        self._stages = stages
        from tensorforge.rtl.fp.fma import FMA   # imported late: the FP unit is optional for int arrays
        self._FMA = FMA
        # construct once to validate the parameters early (raises the FMA's own errors)
        probe = FMA(in_format=in_format, acc_format=acc_format, rounding=rounding, stages=stages)
        probe._MustUse__silence = True   # a parameter check, never elaborated

    def __repr__(self):
        return f"FloatArith(in_format={self._in_format}, acc_format={self._acc_format}, " \
               f"rounding={self._rounding!r}, stages={self._stages})"

    addend_delay = 0     # the FMA takes its addend together with the product's operands
    in_format = property(lambda self: self._in_format)
    weight_format = property(lambda self: self._in_format)
    acc_format = property(lambda self: self._acc_format)
    rounding = property(lambda self: self._rounding)
    mac_latency = property(lambda self: self._stages)
    in_shape = property(lambda self: unsigned(self._in_format.width))
    weight_shape = property(lambda self: unsigned(self._in_format.width))
    acc_shape = property(lambda self: unsigned(self._acc_format.width))
    tag = property(lambda self: f"{self._in_format}_{self._acc_format}_{self._rounding}_s{self._stages}")

    @staticmethod
    def _result(fma):
        return fma.o.payload.d    # the FMA's flags are not used by the array

    def mac(self, m, *, a, b, c, enable, name):
        fma = self._FMA(in_format=self._in_format, acc_format=self._acc_format,
                        rounding=self._rounding, stages=self._stages)
        m.submodules[name] = fma
        # i.valid is constant: the FMA's stall pipeline then advances exactly when `enable` is high
        # (after its valid bits have filled, `stages` cycles after reset)
        m.d.comb += [
            fma.i.valid.eq(1), fma.o.ready.eq(enable),
            fma.i.payload.a.eq(a), fma.i.payload.b.eq(b), fma.i.payload.c.eq(c),
        ]
        return self._result(fma)

    def add(self, m, *, a, b, name):
        fma = self._FMA(in_format=self._acc_format, acc_format=self._acc_format,
                        rounding=self._rounding, stages=0)
        m.submodules[name] = fma
        one = self._acc_format.pack(0, self._acc_format.bias, 0)
        m.d.comb += [
            fma.i.valid.eq(1), fma.o.ready.eq(1),
            fma.i.payload.a.eq(a), fma.i.payload.b.eq(one), fma.i.payload.c.eq(b),
        ]
        return self._result(fma)


def arith_for(in_format, acc_format, *, weight_format=None, rounding="rne", stages=1):
    """The strategy for a pair of formats (for the CLI and registry): two IntFormats ->
    :class:`IntArith` (``stages`` 1..7; ``rounding`` is ignored), two FloatFormats ->
    :class:`FloatArith` (``rounding``, ``stages``)."""
    if isinstance(in_format, IntFormat) and isinstance(acc_format, IntFormat):
        return IntArith(in_format=in_format, acc_format=acc_format, weight_format=weight_format, stages=stages)
    if isinstance(in_format, FloatFormat) and isinstance(acc_format, FloatFormat):
        if weight_format not in (None, in_format):
            raise ValueError(f"weight_format must equal in_format ({in_format}) for floating point, "
                             f"not {weight_format}")
        return FloatArith(in_format=in_format, acc_format=acc_format, rounding=rounding, stages=stages)
    raise TypeError(f"in_format and acc_format must both be IntFormat or both FloatFormat, "
                    f"not {in_format} and {acc_format}")
