"""Γ = max |mantissa| over a tensor streamed with start/last markers (the flexpoint statistic)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.formats import IntFormat
from ..fp.params import silence_on_error
from ..pipeline import StallPipeline
from .params import MAN_BITS_MAX, MAN_BITS_MIN, check_int

__all__ = ["MaxAbs", "LANES_MAX"]

LANES_MAX = 16


class MaxAbs(wiring.Component):
    """Streaming Γ reducer: running ``max |man|`` over a tensor, in line with the tensor's stream.

    A tensor is a run of beats of ``lanes`` mantissas each. It begins at a beat with ``start`` high,
    or at the first beat after a beat with ``last`` high (and at the first beat after reset), and
    ends at a beat with ``last`` high. For every beat the core passes the mantissas and ``last``
    through and outputs ``gamma`` = max |man| over all lanes of all beats of the current tensor
    up to and including this beat; on the ``last`` beat ``gamma`` is the tensor's Γ
    (:func:`tensorforge.golden.flex.max_abs`). So the unit can sit inline on a result stream (e.g.
    after :class:`~tensorforge.rtl.flex.flex_dot.FlexDot`) and the consumer takes Γ from the
    ``last`` beat.

    Parameters
    ----------
    lanes : int
        Mantissas per beat, 1..16 (default 1).
    man_bits : int
        Mantissa width N, 2..32 (default 16). ``gamma`` is unsigned N bits: Γ <= 2**(N-1),
        reached only by a mantissa of -2**(N-1).
    stages : int
        Pipeline registers, 0..2 (default 1); latency = ``stages``. Steps: per-beat magnitude max
        over the lanes; running max with the tensor state (which updates when the beat leaves that
        step).

    Ports (``amaranth.lib.stream``)
    -----
    i : In(stream.Signature(StructLayout({"man": ArrayLayout(signed(N), lanes), "start": 1, "last": 1})))
    o : Out(stream.Signature(StructLayout({"man": ArrayLayout(signed(N), lanes), "gamma": unsigned(N),
        "last": 1})))

    Timing: ``latency == stages``, ``initiation_interval == 1``, stall on back-pressure
    (:class:`~tensorforge.rtl.pipeline.StallPipeline`).
    """

    @silence_on_error
    def __init__(self, *, lanes=1, man_bits=16, stages=1):
        self._lanes = check_int("lanes", lanes, 1, LANES_MAX)
        self._man_bits = check_int("man_bits", man_bits, MAN_BITS_MIN, MAN_BITS_MAX)
        self._stages = check_int("stages", stages, 0, 2)
        man = signed(man_bits)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "man": data.ArrayLayout(man, lanes), "start": 1, "last": 1}))),
            "o": Out(stream.Signature(data.StructLayout({
                "man": data.ArrayLayout(man, lanes), "gamma": unsigned(man_bits), "last": 1}))),
        })

    lanes = property(lambda self: self._lanes)
    man_bits = property(lambda self: self._man_bits)
    stages = property(lambda self: self._stages)
    latency = property(lambda self: self._stages, doc="Cycles from input handshake to output valid.")
    initiation_interval = property(lambda self: 1, doc="Cycles between accepted inputs (fully pipelined).")

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        man = IntFormat(self._man_bits, signed=True)
        return {"i": {"man": man, "start": None, "last": None},
                "o": {"man": man, "gamma": IntFormat(self._man_bits, signed=False), "last": None}}

    def elaborate(self, platform):
        m = Module()
        N, L = self._man_bits, self._lanes
        weights = [1.0 + 0.5 * (L - 1).bit_length(), 1.0]
        p = StallPipeline(m, i=self.i, o=self.o, stages=self._stages, weights=weights, name="ma")
        pay = self.i.payload

        # 1. per-beat max of the magnitudes over the lanes
        mags = []
        for j in range(L):
            mag = Signal(unsigned(N), name=f"mag_{j}")
            m.d.comb += mag.eq(abs(pay.man[j]))
            mags.append(mag)
        while len(mags) > 1:                       # balanced comparator tree
            nxt = []
            for idx in range(0, len(mags) - 1, 2):
                mx = Signal(unsigned(N), name=f"max_{len(mags)}_{idx}")
                m.d.comb += mx.eq(Mux(mags[idx] > mags[idx + 1], mags[idx], mags[idx + 1]))
                nxt.append(mx)
            if len(mags) % 2:
                nxt.append(mags[-1])
            mags = nxt
        beat_max = mags[0]
        # the valid bit of the beat at this boundary (reset, unlike the pipeline's data registers)
        v = p.boundary({"man": [pay.man[j] for j in range(L)], "beat_max": beat_max,
                        "start": pay.start, "last": pay.last})
        if 1 in p.cuts:
            here_valid = Signal(name="ma_step2_valid")
            with m.If(p.advance):
                m.d.sync += here_valid.eq(self.i.valid)
        else:
            here_valid = self.i.valid

        # 2. running max; the state moves with the beat (when the pipeline advances past this step)
        running = Signal(unsigned(N), name="running_max")
        after_last = Signal(init=1, name="after_last")
        fresh = Signal(name="fresh")
        gamma = Signal(unsigned(N), name="gamma")
        m.d.comb += [
            fresh.eq(v["start"] | after_last),
            gamma.eq(Mux(fresh | (v["beat_max"] > running), v["beat_max"], running)),
        ]
        with m.If(p.advance & here_valid):
            m.d.sync += [running.eq(gamma), after_last.eq(v["last"])]
        v = p.boundary({"man": v["man"], "gamma": gamma, "last": v["last"]})
        p.check_complete()
        m.d.comb += [self.o.payload.gamma.eq(v["gamma"]), self.o.payload.last.eq(v["last"])]
        for j in range(L):
            m.d.comb += self.o.payload.man[j].eq(v["man"][j])
        return m
