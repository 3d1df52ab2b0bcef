"""Registry entries for the flexpoint units: ``flexdot`` (FlexDot) and ``maxabs`` (MaxAbs).

Top names encode every parameter: ``flexdot_flex_k4_l1_m16_a34_sh8_s4`` (mode, k, lanes,
man_bits, acc_bits, shift_bits, stages), ``maxabs_l4_m16_s1`` (lanes, man_bits, stages).
``--acc-bits 0`` means the exact minimum ``2*man_bits + ceil(log2 k)``.
"""

from __future__ import annotations

from ..rtl.flex.flex_dot import K_MAX, LANES_MAX, MODES, FlexDot
from ..rtl.flex.max_abs import LANES_MAX as MAXABS_LANES_MAX
from ..rtl.flex.max_abs import MaxAbs
from ..rtl.flex.params import MAN_BITS_MAX, MAN_BITS_MIN, SHIFT_BITS_MAX, SHIFT_BITS_MIN, accumulator_bits
from ..rtl.flex.round_shift import ACC_BITS_MAX
from .registry import ChoiceParam, Generator, IntParam, register

__all__ = []


def _build_flexdot(mode, k, lanes, man_bits, acc_bits, shift_bits, stages):
    return FlexDot(k=k, lanes=lanes, man_bits=man_bits, acc_bits=acc_bits or None, shift_bits=shift_bits,
                   mode=mode, stages=stages)


def _flexdot_top(p):
    acc = p["acc_bits"] or accumulator_bits(p["man_bits"], p["k"])
    return (f"flexdot_{p['mode']}_k{p['k']}_l{p['lanes']}_m{p['man_bits']}_a{acc}_sh{p['shift_bits']}"
            f"_s{p['stages']}")


register(Generator(
    name="flexdot",
    summary="flexpoint/DFP-16 dot lanes: k int products, exact accumulation, shift + RNE + saturation, "
            "overflow flags",
    build=_build_flexdot,
    params=(
        ChoiceParam("mode", "flex", "flex: shift from the input stream; dfp16: shift from the leading-zero "
                    "count of the lanes' largest accumulator (output field shift)", choices=MODES),
        IntParam("k", 4, "products per lane", lo=1, hi=K_MAX),
        IntParam("lanes", 1, "dot products per beat (share one shift / one DFP block)", lo=1, hi=LANES_MAX),
        IntParam("man_bits", 16, "mantissa width N of a, b and out", lo=MAN_BITS_MIN, hi=MAN_BITS_MAX),
        IntParam("acc_bits", 0, "accumulator width (0 = exact minimum 2N + ceil(log2 k))", lo=0,
                 hi=ACC_BITS_MAX),
        IntParam("shift_bits", 8, "width of the signed shift field", lo=SHIFT_BITS_MIN, hi=SHIFT_BITS_MAX),
        IntParam("stages", 4, "pipeline registers (= latency); at most 4 (flex) / 5 (dfp16)", lo=0, hi=5),
    ),
    top=_flexdot_top,
    bench="stream",
))

register(Generator(
    name="maxabs",
    summary="flexpoint statistic Γ = max |mantissa| over a tensor delimited by start/last (inline, per beat)",
    build=lambda lanes, man_bits, stages: MaxAbs(lanes=lanes, man_bits=man_bits, stages=stages),
    params=(
        IntParam("lanes", 1, "mantissas per beat", lo=1, hi=MAXABS_LANES_MAX),
        IntParam("man_bits", 16, "mantissa width N", lo=MAN_BITS_MIN, hi=MAN_BITS_MAX),
        IntParam("stages", 1, "pipeline registers (= latency), 0..2", lo=0, hi=2),
    ),
    top=lambda p: f"maxabs_l{p['lanes']}_m{p['man_bits']}_s{p['stages']}",
    bench="stream",
))
