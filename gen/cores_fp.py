"""Registry entries for the IEEE floating-point cores: ``fma``, ``mul``, ``add``."""

from __future__ import annotations

import inspect

from ..golden.formats import FP16, FP32
from ..rtl.fp.fma import FMA
from ..rtl.fp.mul import Mul
from ..rtl.fp.add import Add
from .registry import ChoiceParam, FormatParam, Generator, IntParam, SameFormatParam, register

ROUNDING = ChoiceParam("rounding", "rne", "rounding mode, fixed at generation time",
                       choices=("rne", "rtz", "rdn", "rup", "rmm"))


def _stages(cls, help_text):
    default = inspect.signature(cls).parameters["stages"].default
    return IntParam("stages", default, help_text, lo=0, hi=getattr(cls, "MAX_STAGES", 16))


register(Generator(
    name="fma",
    summary="IEEE fused multiply-add d = a*b + c (a, b in in_format; c, d in acc_format), one rounding, flags",
    build=lambda in_format, acc_format, rounding, stages: FMA(
        in_format=in_format, acc_format=acc_format, rounding=rounding, stages=stages),
    params=(
        FormatParam("in_format", FP16, "format of a and b"),
        FormatParam("acc_format", FP32, "format of c and d (exponent and fraction at least in_format's)"),
        ROUNDING,
        _stages(FMA, "pipeline registers (= latency in cycles)"),
    ),
    top=lambda p: f"fma_{p['in_format']}_{p['acc_format']}_{p['rounding']}_s{p['stages']}",
    bench="stream",
))

register(Generator(
    name="mul",
    summary="IEEE multiply d = a*b rounded to out_format, flags",
    build=lambda fmt, out_format, rounding, stages: Mul(
        fmt=fmt, out_format=out_format, rounding=rounding, stages=stages),
    params=(
        FormatParam("fmt", FP16, "format of a and b"),
        SameFormatParam("out_format", None, "format of d (default: the same as a and b)", same_as="fmt"),
        ROUNDING,
        _stages(Mul, "pipeline registers (= latency in cycles)"),
    ),
    top=lambda p: f"mul_{p['fmt']}_{p['out_format'] or p['fmt']}_{p['rounding']}_s{p['stages']}",
    bench="stream",
))

register(Generator(
    name="add",
    summary="IEEE add d = a + b, flags",
    build=lambda fmt, rounding, stages: Add(fmt=fmt, rounding=rounding, stages=stages),
    params=(
        FormatParam("fmt", FP32, "format of a, b and d"),
        ROUNDING,
        _stages(Add, "pipeline registers (= latency in cycles)"),
    ),
    top=lambda p: f"add_{p['fmt']}_{p['rounding']}_s{p['stages']}",
    bench="stream",
))
