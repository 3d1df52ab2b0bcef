"""Output queue that lets a pipeline run without a stall enable."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .fp.params import silence_on_error

__all__ = ["CreditOutputQueue"]


class CreditOutputQueue(wiring.Component):
    """Back-pressure buffer for a *free-running* pipeline (one whose registers load every
    cycle, so they need no clock enable).

    A stall enable shared by every register of a wide pipeline is a net with thousands of
    loads spread over the whole design: on an FPGA its routing, not the datapath, sets Fmax.
    Instead the pipeline always advances and this queue absorbs back-pressure: results that
    cannot leave on ``o`` wait in a FIFO, and the producer admits a new transaction only while
    the queue is sure to have room for it (a credit count).

    Parameters
    ----------
    width : int
        Bits of one result (>= 1).
    depth : int
        Transactions that may be in the pipeline or queued at once (>= 2). Set it to the
        pipeline's latency + 1 for one transaction per cycle under any back-pressure pattern;
        the FIFO has ``depth`` entries (LUT RAM, first word fall-through).

    Ports
    -----
    accept : In(1)
        A transaction enters the pipeline this cycle (it takes a credit). Only while
        ``can_accept`` is high.
    retire : In(1)
        A transaction leaves the pipeline without producing a result (it returns its credit);
        tie to 0 when every transaction produces one.
    result_valid : In(1), result : In(width)
        A result leaves the pipeline this cycle (never in the same cycle as ``retire`` for
        the same transaction). It is not held: the queue takes it now.
    can_accept : Out(1)
        ``(credits in use < depth) | o.ready``; the comparison is a register, computed a
        cycle ahead, so this is one gate after flip-flops and ``o.ready`` (when the count is
        ``depth`` a queued result is on ``o``, so with ``o.ready`` one leaves as one enters:
        with ``o.ready`` held high this is high every cycle).
    o : Out(stream.Signature(width))
        The results in order. When the FIFO is empty a result goes straight to ``o`` (bypass:
        the latency is the pipeline's own); otherwise it queues behind the FIFO's head. A
        stalled ``o`` keeps its valid and payload.

    Latency: 0 cycles through the bypass. Nothing is lost or duplicated provided at most
    ``depth - 1`` transactions are ever inside the pipeline itself (latency + 1 = depth).
    """

    @silence_on_error
    def __init__(self, *, width, depth):
        for value, name, lo in ((width, "width", 1), (depth, "depth", 2)):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, not {value!r}")
        self._width = width
        self._depth = depth
        super().__init__({
            "accept": In(1),
            "retire": In(1),
            "result_valid": In(1),
            "result": In(width),
            "can_accept": Out(1),
            "o": Out(stream.Signature(width)),
        })

    width = property(lambda self: self._width)
    depth = property(lambda self: self._depth)

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        take = Signal()
        in_use = Signal(range(depth + 1), name="credits_in_use")     # in the pipeline or queued
        # `room` == (in_use < depth), kept in a register: its next value is computed for both
        # values of `accept` from signals known early in the cycle and selected by `accept`
        # last, so the producer's handshake feeds one multiplexer, not a count and a compare
        room = Signal(init=1, name="credits_room")
        kept = Signal.like(in_use)          # in_use after this cycle's retire and take
        m.d.comb += [
            self.can_accept.eq(room | self.o.ready),
            kept.eq(in_use - self.retire - take),
        ]
        m.d.sync += [
            in_use.eq(kept + self.accept),
            room.eq(Mux(self.accept, kept < depth - 1, kept < depth)),
        ]
        m.submodules.fifo = fifo = SyncFIFO(width=self._width, depth=depth)
        # `queued` == fifo.r_rdy (the FIFO is not empty), kept in its own register for the
        # handshake and credit logic: r_rdy is a compare of the FIFO level that also selects
        # the whole width of the payload, so it sits among those loads, far from this logic
        queued = Signal(name="queued")
        m.d.sync += queued.eq(fifo.w_en | (fifo.level >= 2) | (queued & ~fifo.r_en))
        m.d.comb += [
            self.o.valid.eq(queued | self.result_valid),
            self.o.payload.eq(Mux(fifo.r_rdy, fifo.r_data, self.result)),
            take.eq(self.o.valid & self.o.ready),
            fifo.r_en.eq(queued & self.o.ready),
            # a result is queued unless it leaves at once through the bypass
            fifo.w_en.eq(self.result_valid & (queued | ~self.o.ready)),
            fifo.w_data.eq(self.result),
        ]
        return m
