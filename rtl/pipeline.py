"""Stream pipelining shared by every fully pipelined core.

A core writes its datapath as a sequence of combinational *steps* (unpack,
multiply, align, add, normalize, round, ...) and calls
:meth:`StallPipeline.boundary` after each one. The pipeline decides, from the
requested number of ``stages`` and a relative delay estimate per step, after
which steps a bank of registers goes; the rest of the boundaries are plain
wires. This is how every generator turns ``stages`` into a Fmax/latency trade
without writing its datapath twice.

Flow control (valid/ready, ``amaranth.lib.stream``):

- ``stages`` registers between ``i`` and ``o``: latency = ``stages`` cycles,
  initiation interval 1.
- All stage registers share one enable, ``advance = o.ready | ~o.valid``: the
  pipeline moves whenever its output slot is empty or being taken, and
  ``i.ready = advance``. With ``o.ready`` held high it accepts one input per
  cycle; with ``o.ready`` low it holds every stage, so nothing is lost or
  duplicated. (``i.ready`` depends combinationally on ``o.ready``.)
- ``stages == 0`` gives a purely combinational core: ``o.valid = i.valid``,
  ``i.ready = o.ready``.

Only the valid bits are reset; data registers are ``reset_less``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Signal, Value, ValueCastable
from amaranth.lib import data

__all__ = ["plan_cuts", "StallPipeline"]


def plan_cuts(weights, stages: int) -> tuple[int, ...]:
    """Choose register positions for ``stages`` registers after ``len(weights)`` steps.

    Returns the sorted 1-based boundaries (boundary k is after step k) that get
    registers. When ``stages >= 1`` the last boundary (the output) is always
    registered; the other ``stages - 1`` registers go where the cumulative
    delay estimate best splits the datapath into equal parts.
    """
    n = len(weights)
    if not isinstance(stages, int) or isinstance(stages, bool) or not 0 <= stages <= n:
        raise ValueError(f"stages must be an integer between 0 and {n}, not {stages!r}")
    if stages == 0:
        return ()
    total = float(sum(weights))
    cumulative = []
    acc = 0.0
    for w in weights:
        acc += w
        cumulative.append(acc)
    cuts = []
    lo = 1  # smallest boundary still available
    for j in range(1, stages):
        # leave room for the remaining registers (each needs its own boundary < n)
        hi = n - 1 - (stages - 1 - j)
        target = total * j / stages
        best = min(range(lo, hi + 1), key=lambda k: (abs(cumulative[k - 1] - target), k))
        cuts.append(best)
        lo = best + 1
    cuts.append(n)
    return tuple(cuts)


class StallPipeline:
    """Register banks between combinational steps, with one global stall enable.

    Parameters
    ----------
    m : Module
        The module being elaborated.
    i, o : stream interfaces
        The core's input and output streams (``i.valid``/``i.ready``,
        ``o.valid``/``o.ready``); the caller drives ``o.payload`` from the
        values :meth:`boundary` returns for the last step.
    stages : int
        Number of register banks, 0..len(weights).
    weights : sequence of float
        Relative combinational delay of each step, used to place registers.
    name : str
        Prefix for the register names (readable Verilog).
    """

    def __init__(self, m, *, i, o, stages, weights, name="p"):
        self._m = m
        self._cuts = plan_cuts(list(weights), stages)
        self._n = len(weights)
        self._boundary = 0
        self._name = name
        self.stages = stages
        self.advance = Signal(name=f"{name}_advance")
        if stages == 0:
            m.d.comb += [o.valid.eq(i.valid), i.ready.eq(o.ready), self.advance.eq(o.ready)]
            self._valid_in = None
        else:
            self._valid = i.valid
            m.d.comb += [self.advance.eq(o.ready | ~o.valid), i.ready.eq(self.advance)]
            self._o_valid = o.valid
        self._stage_index = 0

    @property
    def cuts(self) -> tuple[int, ...]:
        return self._cuts

    def boundary(self, values):
        """Call after each step with the values later steps need.

        ``values`` is a dict (or list/tuple, nested freely) of Amaranth values,
        ``data.View`` structures or Python ints. At a registered boundary every
        value is replaced by a register that loads it when the pipeline
        advances; otherwise the values pass through unchanged.
        """
        self._boundary += 1
        if self._boundary > self._n:
            raise RuntimeError(f"{self._name}: more boundaries than the {self._n} declared steps")
        if self._boundary not in self._cuts:
            return values
        self._stage_index += 1
        k = self._stage_index
        m = self._m
        valid = Signal(name=f"{self._name}_s{k}_valid")
        with m.If(self.advance):
            m.d.sync += valid.eq(self._valid)
        self._valid = valid
        if k == self.stages:
            m.d.comb += self._o_valid.eq(valid)
        return self._register(values, f"{self._name}_s{k}")

    def _register(self, value, name):
        m = self._m
        if isinstance(value, dict):
            return {key: self._register(v, f"{name}_{key}") for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._register(v, f"{name}_{idx}") for idx, v in enumerate(value))
        if isinstance(value, (int, Const)) and not isinstance(value, bool):
            return value
        if isinstance(value, data.View):
            reg = Signal(value.shape(), name=name, reset_less=True)
        elif isinstance(value, (Value, ValueCastable)):
            reg = Signal.like(Value.cast(value), name=name, reset_less=True)
        else:
            raise TypeError(f"cannot register {value!r} at {name}")
        with m.If(self.advance):
            m.d.sync += reg.eq(value)
        return reg

    def check_complete(self):
        """Raise if the datapath declared more steps than it used."""
        if self._boundary != self._n:
            raise RuntimeError(f"{self._name}: {self._boundary} boundaries used, {self._n} declared")
