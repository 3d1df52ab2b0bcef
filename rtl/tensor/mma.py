"""Tensor-core MMA block: D = A*B + C for a whole m x n x k block per cycle."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.formats import FP32
from ..fp.params import silence_on_error
from ..output_queue import CreditOutputQueue
from .dot_product_add import FLAG_WIDTH, DotProductAdd

__all__ = ["MMA", "DIM_MAX"]

#: Largest m and n.
DIM_MAX = 16


def _check_dim(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= DIM_MAX:
        raise ValueError(f"{name} must be an integer between 1 and {DIM_MAX}, not {value!r}")
    return value


class MMA(wiring.Component):
    """Fully pipelined matrix multiply-accumulate ``D = A*B + C`` of one m x n x k block per cycle.

    ``m*n`` :class:`~tensorforge.rtl.tensor.dot_product_add.DotProductAdd` lanes, lane (i, j)
    computing ``D[i][j] = sum_kk A[i][kk]*B[kk][j] + C[i][j]``: row i of A feeds the n lanes
    of row i, column j of B the m lanes of column j (default 4x4x4 = 64 multipliers, one
    Volta tensor-core step). Every lane has the same numerics (see DotProductAdd), so ``D``
    is bit-exact with :func:`tensorforge.golden.dot.mma`; k larger than the nvidia preset's
    L chains blocks inside each lane's pipeline.

    Parameters
    ----------
    m, n : int
        Rows of A / C / D and columns of B / C / D, 1..16 (default 4).
    k : int
        Inner dimension, 1..64 (default 4).
    in_format, acc_format, semantics, stages
        As for :class:`DotProductAdd` (acc_format default FP32).

    Ports (``amaranth.lib.stream``)
    -----
    i : In(stream.Signature(StructLayout({"a": ArrayLayout(ArrayLayout(in_w, k), m),
        "b": ArrayLayout(ArrayLayout(in_w, n), k), "c": ArrayLayout(ArrayLayout(acc_w, n), m)})))
        Manifest fields ``a[i][kk]``, ``b[kk][j]``, ``c[i][j]``.
    o : Out(stream.Signature(StructLayout({"d": ArrayLayout(ArrayLayout(acc_w, n), m)
        [, "flags": ArrayLayout(ArrayLayout(5, n), m)]})))
        ``d[i][j]``; ``flags[i][j]`` for chain and exact only.

    Timing: ``latency == stages`` (that of one lane), ``initiation_interval == 1``.

    Flow control (``stages >= 1``): the lanes never stall. Their pipelines advance every
    cycle (``o.ready`` of every lane is tied high, so their registers need no clock enable:
    a stall enable would be a net of ~700 loads per lane spread over the whole array, the
    critical path of a 16-lane block on ECP5). Back-pressure is absorbed by a
    :class:`~tensorforge.rtl.output_queue.CreditOutputQueue` of ``stages + 1`` blocks (LUT
    RAM FIFO with a bypass: when it is empty a lane result goes straight to ``o``, so the
    latency stays ``stages``). ``i.ready`` is ``(blocks in flight or queued < stages + 1) |
    o.ready`` (a registered count): with ``o.ready`` high ``i.ready`` is high, one block per
    cycle, as for every stream core. Nothing is lost or duplicated, and a stalled output
    keeps its valid and payload. ``stages == 0``: a combinational
    block, ``o.valid = i.valid`` and ``i.ready = o.ready``.
    """

    @silence_on_error
    def __init__(self, *, m=4, n=4, k=4, in_format, acc_format=FP32, semantics, stages):
        self._m = _check_dim("m", m)
        self._n = _check_dim("n", n)
        # one probe lane validates k, the formats, the semantics and stages
        probe = DotProductAdd(k=k, in_format=in_format, acc_format=acc_format, semantics=semantics, stages=stages)
        probe._MustUse__silence = True
        self._probe = probe
        self._k = k
        self._in, self._acc = in_format, acc_format
        self._sem = probe.semantics
        self._stages = stages
        iw, aw = in_format.width, acc_format.width
        out = {"d": data.ArrayLayout(data.ArrayLayout(aw, n), m)}
        if probe.has_flags:
            out["flags"] = data.ArrayLayout(data.ArrayLayout(FLAG_WIDTH, n), m)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(data.ArrayLayout(iw, k), m),
                "b": data.ArrayLayout(data.ArrayLayout(iw, n), k),
                "c": data.ArrayLayout(data.ArrayLayout(aw, n), m),
            }))),
            "o": Out(stream.Signature(data.StructLayout(out))),
        })

    m = property(lambda self: self._m)
    n = property(lambda self: self._n)
    k = property(lambda self: self._k)
    in_format = property(lambda self: self._in)
    acc_format = property(lambda self: self._acc)
    semantics = property(lambda self: self._sem, doc="The resolved Chain / Exact / Nvidia object.")
    stages = property(lambda self: self._stages)
    max_stages = property(lambda self: self._probe.max_stages)
    has_flags = property(lambda self: self._probe.has_flags)
    latency = property(lambda self: self._stages, doc="Cycles from input handshake to output valid.")
    initiation_interval = property(lambda self: 1, doc="Cycles between accepted inputs (fully pipelined).")

    @property
    def field_formats(self):
        """Number format of every payload field (None for plain bit fields), for manifests."""
        out = {"d": self._acc}
        if self.has_flags:
            out["flags"] = None
        return {"i": {"a": self._in, "b": self._in, "c": self._acc}, "o": out}

    def elaborate(self, platform):
        mod = Module()
        p = self.i.payload
        lanes = []
        for i in range(self._m):
            for j in range(self._n):
                lane = DotProductAdd(k=self._k, in_format=self._in, acc_format=self._acc,
                                     semantics=self._sem, stages=self._stages)
                mod.submodules[f"lane_{i}_{j}"] = lane
                mod.d.comb += lane.i.payload.c.eq(p.c[i][j])
                for kk in range(self._k):
                    mod.d.comb += [lane.i.payload.a[kk].eq(p.a[i][kk]), lane.i.payload.b[kk].eq(p.b[kk][j])]
                lanes.append((i, j, lane))
        # the lanes' results as one output payload
        result = Signal(self.o.payload.shape(), name="lane_result")
        for i, j, lane in lanes:
            mod.d.comb += result.d[i][j].eq(lane.o.payload.d)
            if self.has_flags:
                mod.d.comb += result.flags[i][j].eq(lane.o.payload.flags)
        first = lanes[0][2]
        if self._stages == 0:
            for _, _, lane in lanes:
                mod.d.comb += [lane.i.valid.eq(self.i.valid), lane.o.ready.eq(self.o.ready)]
            mod.d.comb += [self.i.ready.eq(first.i.ready), self.o.valid.eq(first.o.valid),
                           self.o.payload.eq(result)]
            return mod
        # free-running lanes + output queue with bypass and credit count
        mod.submodules.out_queue = queue = CreditOutputQueue(width=len(result.as_value()), depth=self._stages + 1)
        for _, _, lane in lanes:
            mod.d.comb += [lane.i.valid.eq(queue.accept), lane.o.ready.eq(1)]
        mod.d.comb += [
            self.i.ready.eq(queue.can_accept),
            queue.accept.eq(self.i.valid & queue.can_accept),
            queue.result_valid.eq(first.o.valid),
            queue.result.eq(result.as_value()),
            self.o.valid.eq(queue.o.valid),
            self.o.payload.eq(queue.o.payload),
            queue.o.ready.eq(self.o.ready),
        ]
        return mod
