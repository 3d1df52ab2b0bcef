"""A rows x cols grid of PEs wired systolically (no skew, no flow control)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pe import PE, check_arith, check_dataflow
from ..fp.params import silence_on_error

__all__ = ["Mesh"]


def check_dim(value, name, hi=1024):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
        raise ValueError(f"{name} must be an integer between 1 and {hi}, not {value!r}")
    return value


def check_logic_multipliers(value, rows, cols, arith):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= rows * cols:
        raise ValueError(f"logic_multipliers must be an integer between 0 and rows*cols ({rows * cols}), "
                         f"not {value!r}")
    if value and not getattr(arith, "soft_multiplier_support", False):
        raise ValueError(f"logic_multipliers needs an arithmetic strategy that builds multipliers from "
                         f"logic (IntArith), not {arith!r}")
    return value


class Mesh(wiring.Component):
    """``rows x cols`` PEs: activations move right along rows, partial sums (WS) or weights
    (OS) move down columns, one PE per cycle (H = ``arith.mac_latency - arith.addend_delay``
    per PE for WS partial sums). Inputs arrive unskewed at the edges;
    :class:`.array.SystolicArray` adds the skew.

    Parameters
    ----------
    rows, cols : int
        Array size, 1..1024 each.
    arith : arithmetic strategy (:mod:`.arith`)
    dataflow : ``"ws"`` or ``"os"``
    logic_multipliers : int
        How many PEs build their multiplier from logic (``soft_multiplier``): the last ones in
        row-major order, 0..rows*cols (default 0: every multiplier is ``a * b``, left to the
        synthesis tool's DSP inference). For a device with D DSP blocks and rows*cols > D,
        ``rows*cols - D`` keeps the rest on DSPs. Needs a strategy with
        ``soft_multiplier_support`` when > 0.

    Ports (all registers load only while ``enable`` is high, except the WS weight load;
    :class:`.array.SystolicArray` ties ``enable`` high for WS)
        WS: ``x_in[r]``, ``bank_in[r]`` (left edge); ``w_in[c]`` is offered to every PE of
        column c and bit b of ``w_load[r]`` writes it into weight bank b of row r;
        ``psum_out[c]`` (bottom edge; the top
        edge is fed ``arith.zero``). Element (m) entering row r at cycle t + r*H reaches PE
        (r, c) at t + r*H + c and column c's sum leaves at t + rows*H + A + c (A =
        ``arith.addend_delay``).
        OS: ``x_in[r]``, ``valid_in[r]``, ``last_in[r]`` (left edge), ``w_in[c]`` (top edge),
        ``result[r][c]`` (each PE's finished tile).
    """

    @silence_on_error
    def __init__(self, *, rows, cols, arith, dataflow="ws", logic_multipliers=0):
        self._rows = check_dim(rows, "rows")
        self._cols = check_dim(cols, "cols")
        self._dataflow = check_dataflow(dataflow)
        self._arith = check_arith(arith, dataflow)
        self._logic_multipliers = check_logic_multipliers(logic_multipliers, rows, cols, arith)
        a = arith
        if dataflow == "ws":
            sig = {
                "enable": In(1),
                "x_in": In(data.ArrayLayout(a.in_shape, rows)), "bank_in": In(rows),
                "w_in": In(data.ArrayLayout(a.weight_shape, cols)), "w_load": In(data.ArrayLayout(2, rows)),
                "psum_out": Out(data.ArrayLayout(a.acc_shape, cols)),
            }
        else:
            sig = {
                "enable": In(1),
                "x_in": In(data.ArrayLayout(a.in_shape, rows)), "valid_in": In(rows), "last_in": In(rows),
                "w_in": In(data.ArrayLayout(a.weight_shape, cols)),
                "result": Out(data.ArrayLayout(data.ArrayLayout(a.acc_shape, cols), rows)),
            }
        super().__init__(sig)

    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    arith = property(lambda self: self._arith)
    dataflow = property(lambda self: self._dataflow)
    logic_multipliers = property(lambda self: self._logic_multipliers)

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        first_soft = R * C - self._logic_multipliers
        pes = [[PE(arith=self._arith, dataflow=self._dataflow, soft_multiplier=r * C + c >= first_soft)
                for c in range(C)] for r in range(R)]
        for r in range(R):
            for c in range(C):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += pe.enable.eq(self.enable)
                left = pes[r][c - 1] if c > 0 else None
                up = pes[r - 1][c] if r > 0 else None
                if self._dataflow == "ws":
                    if left is None:
                        m.d.comb += [pe.x_in.eq(self.x_in[r]), pe.bank_in.eq(self.bank_in[r])]
                    else:
                        m.d.comb += [pe.x_in.eq(left.x_out), pe.bank_in.eq(left.bank_out)]
                    m.d.comb += pe.psum_in.eq(self._arith.zero if up is None else up.psum_out)
                    m.d.comb += [pe.w_in.eq(self.w_in[c]), pe.w_load.eq(self.w_load[r])]
                    if r == R - 1:
                        m.d.comb += self.psum_out[c].eq(pe.psum_out)
                else:
                    if left is None:
                        m.d.comb += [pe.x_in.eq(self.x_in[r]), pe.valid_in.eq(self.valid_in[r]),
                                     pe.last_in.eq(self.last_in[r])]
                    else:
                        m.d.comb += [pe.x_in.eq(left.x_out), pe.valid_in.eq(left.valid_out),
                                     pe.last_in.eq(left.last_out)]
                    m.d.comb += pe.w_in.eq(self.w_in[c] if up is None else up.w_out)
                    m.d.comb += self.result[r][c].eq(pe.result)
        return m
