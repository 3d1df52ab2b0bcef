"""Registry entry for the systolic GEMM array: ``systolic``.

``tensorforge generate systolic --rows 16 --cols 16 --dataflow ws --in-format i8 --acc-format i32``
(or ``--in-format fp16 --acc-format fp32``) builds
:class:`tensorforge.rtl.systolic.SystolicArray` with the arithmetic strategy that
:func:`tensorforge.rtl.systolic.arith_for` picks for the two formats (``IntArith`` for two
integer formats, ``FloatArith`` for two float formats). ``--stages`` is the pipeline depth
of every PE's multiply-add: the FMA's stages for floating point (1..16), 1..7 for integers
(2: the product is registered before the add; 3: the operands as well; 4, 5: a second
product / operand register, 6, 7: a third -- the settings for a high clock rate, e.g.
``--stages 7`` gives ``systolic_ws_16x16_i8_i32_s7``; see :class:`tensorforge.rtl.systolic.IntArith`);
the output-stationary dataflow needs 1. ``--logic-multipliers N`` builds the multipliers of
the last N PEs from logic (radix-4 Booth) instead of leaving them to DSP inference -- for a
device with fewer DSP blocks than PEs (16x16 on ecp5-85k with 156 MULT18X18D:
``--logic-multipliers 100``); the top name gets ``_lm<N>``. ``--rounding`` applies to
floating point only; ``--acc-depth`` to ``ws`` only.

Top-module names come from the array (``systolic_ws_16x16_i8_i32``,
``systolic_os_4x4_e5m10_e8m23_rne_s1``); a non-default ``--acc-depth`` of a ``ws`` array is
appended as ``_d<depth>``. The manifest's ``latency`` is the array's (WS: x beat -> y beat,
``rows*L + cols - 1``; OS: last beat of a pass -> its first y row, ``cols + 1``); the stream
protocol is in the SystolicArray docstring. ``tensorforge sim systolic ... --gemm M,K,N``
runs a GEMM through the generated Verilog (:mod:`tensorforge.sim.systolic_driver`).
"""

from __future__ import annotations


from ..golden.formats import INT8, INT32
from ..rtl.systolic import SystolicArray, arith_for
from .cores_fp import ROUNDING
from .registry import ChoiceParam, FormatParam, Generator, IntParam, SameFormatParam, register

__all__ = ["build_array", "top_name", "DEFAULT_ACC_DEPTH"]

DEFAULT_ACC_DEPTH = 256


def build_array(rows, cols, dataflow, in_format, acc_format, weight_format, acc_depth, stages, rounding,
                logic_multipliers=0):
    """The SystolicArray of one parameter set (the registry's ``build``)."""
    arith = arith_for(in_format, acc_format, weight_format=weight_format, rounding=rounding, stages=stages)
    return SystolicArray(rows=rows, cols=cols, dataflow=dataflow, arith=arith, acc_depth=acc_depth,
                         logic_multipliers=logic_multipliers)


def top_name(p: dict) -> str:
    """Top-module name of a resolved parameter set (see the module docstring)."""
    arith = arith_for(p["in_format"], p["acc_format"], weight_format=p["weight_format"],
                      rounding=p["rounding"], stages=p["stages"])
    name = f"systolic_{p['dataflow']}_{p['rows']}x{p['cols']}_{arith.tag}"
    if p["dataflow"] == "ws" and p["acc_depth"] != DEFAULT_ACC_DEPTH:
        name += f"_d{p['acc_depth']}"
    if p.get("logic_multipliers", 0):
        name += f"_lm{p['logic_multipliers']}"
    return name


register(Generator(
    name="systolic",
    summary="systolic GEMM array Y = X @ W (weight- or output-stationary), streams w, x in and y out",
    build=build_array,
    params=(
        IntParam("rows", 4, "PE rows R (WS: K tile height; OS: M tile height)", lo=1, hi=1024),
        IntParam("cols", 4, "PE columns C (N tile width)", lo=1, hi=1024),
        ChoiceParam("dataflow", "ws", "weight-stationary or output-stationary", choices=("ws", "os")),
        FormatParam("in_format", INT8, "activation format (and weight format unless --weight-format)",
                    kinds=("int", "float")),
        FormatParam("acc_format", INT32, "accumulator/result format (integer for integer inputs, "
                    "float for float inputs)", kinds=("int", "float")),
        SameFormatParam("weight_format", None, "weight format (integers only; default: in_format)",
                             kinds=("int", "float")),
        IntParam("acc_depth", DEFAULT_ACC_DEPTH, "WS accumulator queue depth = most rows per pass",
                 lo=1, hi=65536),
        IntParam("stages", 1, "pipeline registers of each PE's multiply-add (floating point: FMA stages; "
                 "integers: 1, 2 = product registered before the add, 3 = operands registered too, "
                 "4/5 = a second product/operand register, 6/7 = a third; OS needs 1)", lo=1, hi=16),
        ROUNDING,
        IntParam("logic_multipliers", 0, "PEs whose multiplier is built from logic (radix-4 Booth) instead "
                 "of DSP inference: the last N in row-major order (integers only)", lo=0, hi=1 << 20),
    ),
    top=top_name,
    bench="systolic",
))
