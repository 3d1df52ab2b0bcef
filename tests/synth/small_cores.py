"""Small Amaranth components for the synthesis-flow tests (independent of the registered generators)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tensorforge.gen.manifest import elaborate
from tensorforge.gen.registry import Generator, IntParam


class PipelinedMultiply(wiring.Component):
    """Stream multiply-add ``o = a * b + c`` (unsigned), ``stages`` (1 or 2) registers.

    With ``width=16`` the product fits one MULT18X18D / SB_MAC16.
    """

    def __init__(self, *, width=16, lanes=1, stages=2):
        self.width, self.lanes, self.stages = width, lanes, stages
        in_layout = data.StructLayout({"a": data.ArrayLayout(width, lanes), "b": data.ArrayLayout(width, lanes),
                                       "c": 2 * width})
        out_layout = data.StructLayout({"d": 2 * width + lanes.bit_length()})
        super().__init__({"i": In(stream.Signature(in_layout)), "o": Out(stream.Signature(out_layout))})
        self.latency = stages
        self.initiation_interval = 1

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(self.o.ready | ~self.o.valid), self.i.ready.eq(advance)]
        prods = [Signal(2 * self.width, name=f"prod{k}") for k in range(self.lanes)]
        c1 = Signal(2 * self.width)
        v1 = Signal()
        with m.If(advance):
            for k in range(self.lanes):
                m.d.sync += prods[k].eq(self.i.payload.a[k] * self.i.payload.b[k])
            m.d.sync += [c1.eq(self.i.payload.c), v1.eq(self.i.valid)]
        total = c1
        for p in prods:
            total = total + p
        if self.stages == 2:
            with m.If(advance):
                m.d.sync += [self.o.payload.d.eq(total), self.o.valid.eq(v1)]
        else:
            m.d.comb += [self.o.payload.d.eq(total), self.o.valid.eq(v1)]
        return m


def generator(name="test_muladd"):
    """An unregistered Generator for :class:`PipelinedMultiply` (width, lanes, stages)."""
    return Generator(
        name=name, summary="test multiply-add",
        build=lambda width, lanes, stages: PipelinedMultiply(width=width, lanes=lanes, stages=stages),
        params=(IntParam("width", 16, "operand width", lo=1, hi=64),
                IntParam("lanes", 1, "parallel multipliers", lo=1, hi=4096),
                IntParam("stages", 2, "registers", lo=1, hi=2)),
        top=lambda p: f"{name}_w{p['width']}_l{p['lanes']}_s{p['stages']}",
    )


def artifact(**params):
    return elaborate(generator(), params)


class WideDelay(wiring.Component):
    """Stream delay line: the payload (``width`` bits) passes ``depth`` register stages.

    ``width * depth`` flip-flops and almost no logic: quick to synthesize, easy to oversize.
    """

    def __init__(self, *, width=8, depth=2):
        self.width, self.depth = width, depth
        super().__init__({"i": In(stream.Signature(width)), "o": Out(stream.Signature(width))})
        self.latency = depth
        self.initiation_interval = 1

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(self.o.ready | ~self.o.valid), self.i.ready.eq(advance)]
        data_in, valid_in = self.i.payload, self.i.valid
        for k in range(self.depth):
            d, v = Signal(self.width, name=f"d{k}"), Signal(name=f"v{k}")
            with m.If(advance):
                m.d.sync += [d.eq(data_in), v.eq(valid_in)]
            data_in, valid_in = d, v
        m.d.comb += [self.o.payload.eq(data_in), self.o.valid.eq(valid_in)]
        return m


def delay_generator():
    """An unregistered Generator for :class:`WideDelay` (width, depth)."""
    return Generator(name="test_delay", summary="test delay line",
                     build=lambda width, depth: WideDelay(width=width, depth=depth),
                     params=(IntParam("width", 8, "bits", lo=1, hi=4096),
                             IntParam("depth", 2, "stages", lo=1, hi=4096)),
                     top=lambda p: f"test_delay_w{p['width']}_d{p['depth']}")


def delay_artifact(width, depth):
    return elaborate(delay_generator(), {"width": width, "depth": depth})


class FreeRunningMultiply(wiring.Component):
    """``o = a * b`` (unsigned, ``width`` bits each) with free-running registers: operands,
    product and valid load every cycle (test only: ``i.ready`` is always high and ``o.ready``
    is ignored). Latency 2; the registers around the multiplier carry no clock enable, so
    ``--dsp-registers`` can move them into the MULT18X18D."""

    def __init__(self, *, width=16):
        self.width = width
        layout = data.StructLayout({"a": width, "b": width})
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(2 * width))})
        self.latency = 2
        self.initiation_interval = 1

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(self.width, name="a_reg"), Signal(self.width, name="b_reg")
        v1, v2 = Signal(), Signal()
        product = Signal(2 * self.width, name="product_reg")
        m.d.comb += self.i.ready.eq(1)
        m.d.sync += [a.eq(self.i.payload.a), b.eq(self.i.payload.b), v1.eq(self.i.valid),
                     product.eq(a * b), v2.eq(v1)]
        m.d.comb += [self.o.payload.eq(product), self.o.valid.eq(v2)]
        return m


def free_running_multiply_artifact(width=16):
    gen = Generator(name="test_frmul", summary="test free-running multiply",
                    build=lambda width: FreeRunningMultiply(width=width),
                    params=(IntParam("width", 16, "bits", lo=1, hi=18),),
                    top=lambda p: f"test_frmul_w{p['width']}")
    return elaborate(gen, {"width": width})
