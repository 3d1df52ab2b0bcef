"""Processing element of the systolic array (weight- or output-stationary)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from ..fp.params import silence_on_error

__all__ = ["PE", "check_dataflow", "check_arith", "addend_delay", "psum_hop"]

DATAFLOWS = ("ws", "os")


def check_dataflow(dataflow):
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, not {dataflow!r}")
    return dataflow


def addend_delay(arith) -> int:
    """Cycles after ``a``, ``b`` at which the strategy's ``mac`` samples ``c`` (0 if it does not say)."""
    return getattr(arith, "addend_delay", 0)


def psum_hop(arith) -> int:
    """Cycles a weight-stationary partial sum spends in one PE row: ``mac_latency - addend_delay``."""
    return arith.mac_latency - addend_delay(arith)


def check_arith(arith, dataflow):
    needed = ("in_shape", "weight_shape", "acc_shape", "mac_latency", "zero", "mac", "add")
    missing = [name for name in needed if not hasattr(arith, name)]
    if missing:
        raise TypeError(f"arith must be an arithmetic strategy (IntArith, FloatArith, ...) with "
                        f"{', '.join(needed)}; {arith!r} lacks {', '.join(missing)}")
    lat = arith.mac_latency
    if not isinstance(lat, int) or lat < 1:
        raise ValueError(f"arith.mac_latency must be an integer >= 1, not {lat!r}")
    delay = addend_delay(arith)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay < lat:
        raise ValueError(f"arith.addend_delay must be an integer between 0 and mac_latency - 1 ({lat - 1}), "
                         f"not {delay!r}")
    if dataflow == "os" and lat != 1:
        raise ValueError(f"the output-stationary dataflow needs arith.mac_latency == 1 (the accumulator "
                         f"loops through the multiply-add), not {lat}")
    return arith


class PE(wiring.Component):
    """One processing element.

    Parameters
    ----------
    arith : arithmetic strategy (:mod:`.arith`)
    dataflow : ``"ws"`` or ``"os"``
    soft_multiplier : bool
        Build this PE's multiplier from logic (``arith.mac(..., soft=True)``; needs a strategy
        with ``soft_multiplier_support``), default False: ``a * b``, left to DSP inference.

    All registers load only while ``enable`` is high (the array's global stall; the
    weight-stationary array ties it high, its datapath never stalls).

    Weight-stationary ports
        ``x_in``/``bank_in`` -> registered -> ``x_out``/``bank_out`` (activation and the weight
        bank it uses, moving right, 1 cycle per PE). ``psum_out = psum_in + x_in * w[bank_in]``
        ``arith.mac_latency`` cycles after ``x_in``, with ``psum_in`` sampled
        ``arith.addend_delay`` cycles after ``x_in`` (partial sums move down, :func:`psum_hop`
        cycles per PE). Two weight registers
        (double buffering): ``w[b]`` loads ``w_in`` when ``w_load[b]`` (independent of
        ``enable``; the array only loads a bank no activation in flight still needs).

    Output-stationary ports
        ``x_in``/``valid_in``/``last_in`` move right, ``w_in`` moves down (1 cycle per PE).
        On each valid element: ``acc = (fresh ? zero : acc) + x_in * w_in``; ``last_in`` marks
        the last element of a tile (the next valid element starts a fresh sum). The cycle
        after a tile's last element ``result`` takes the final ``acc``; it then holds until
        the next tile's result replaces it (the array drains it in between).
    """

    @silence_on_error
    def __init__(self, *, arith, dataflow="ws", soft_multiplier=False):
        self._dataflow = check_dataflow(dataflow)
        self._arith = check_arith(arith, dataflow)
        if not isinstance(soft_multiplier, bool):
            raise TypeError(f"soft_multiplier must be True or False, not {soft_multiplier!r}")
        if soft_multiplier and not getattr(arith, "soft_multiplier_support", False):
            raise ValueError(f"soft_multiplier needs an arithmetic strategy that builds multipliers from "
                             f"logic (IntArith), not {arith!r}")
        self._soft = soft_multiplier
        a = arith
        if dataflow == "ws":
            sig = {
                "enable": In(1),
                "x_in": In(a.in_shape), "bank_in": In(1),
                "x_out": Out(a.in_shape), "bank_out": Out(1),
                "psum_in": In(a.acc_shape), "psum_out": Out(a.acc_shape),
                "w_in": In(a.weight_shape), "w_load": In(2),
            }
        else:
            sig = {
                "enable": In(1),
                "x_in": In(a.in_shape), "valid_in": In(1), "last_in": In(1),
                "x_out": Out(a.in_shape), "valid_out": Out(1), "last_out": Out(1),
                "w_in": In(a.weight_shape), "w_out": Out(a.weight_shape),
                "result": Out(a.acc_shape),
            }
        super().__init__(sig)

    @property
    def arith(self):
        return self._arith

    @property
    def dataflow(self):
        return self._dataflow

    @property
    def soft_multiplier(self):
        return self._soft

    @property
    def latency(self):
        """Cycles from ``x_in`` to ``psum_out`` (WS) / from an element to its ``acc`` update (OS)."""
        return self._arith.mac_latency

    def elaborate(self, platform):
        m = Module()
        a = self._arith
        en = self.enable
        soft = {"soft": True} if self._soft else {}
        if self._dataflow == "ws":
            weights = []
            for b in range(2):
                reg = Signal(a.weight_shape, name=f"w{b}", reset_less=True)
                with m.If(self.w_load[b]):
                    m.d.sync += reg.eq(self.w_in)
                weights.append(reg)
            w_sel = Signal(a.weight_shape, name="w_sel")
            m.d.comb += w_sel.eq(Mux(self.bank_in, weights[1], weights[0]))
            psum = a.mac(m, a=self.x_in, b=w_sel, c=self.psum_in, enable=en, name="mac", **soft)
            m.d.comb += self.psum_out.eq(psum)
            with m.If(en):
                m.d.sync += [self.x_out.eq(self.x_in), self.bank_out.eq(self.bank_in)]
        else:
            fresh = Signal(init=1)      # the next valid element starts a new sum
            pending = Signal()          # acc holds a finished tile not yet copied to result
            acc_in = Signal(a.acc_shape, name="acc_in")
            step = Signal(name="step")
            m.d.comb += step.eq(en & self.valid_in)
            acc = a.mac(m, a=self.x_in, b=self.w_in, c=acc_in, enable=step, name="mac", **soft)
            m.d.comb += acc_in.eq(Mux(fresh, a.zero, acc))
            result = Signal(a.acc_shape, name="result_reg", reset_less=True)
            with m.If(en & pending):
                m.d.sync += [result.eq(acc), pending.eq(0)]
            with m.If(step):
                m.d.sync += fresh.eq(self.last_in)
                with m.If(self.last_in):
                    m.d.sync += pending.eq(1)
            m.d.comb += self.result.eq(result)
            with m.If(en):
                m.d.sync += [self.x_out.eq(self.x_in), self.valid_out.eq(self.valid_in),
                             self.last_out.eq(self.last_in), self.w_out.eq(self.w_in)]
        return m
