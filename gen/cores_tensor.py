"""Registry entries for the tensor-core units: ``dot`` (DotProductAdd) and ``mma`` (MMA).

Semantics are chosen by name (``chain``, ``exact``, ``volta``, ``ampere``, ``hopper``,
``hopper_fp8``); with ``--acc-format fp16`` the nvidia presets become their FP16-output
variants (RNE, e_zero -19/-20/-21). ``--F`` / ``--L`` override the preset's fraction bits
kept after alignment and block size (0 = the preset's value; nvidia semantics only).

Top names encode every parameter: ``dot_k4_e5m10_e8m23_volta_s7``,
``mma_m4n4k4_e5m10_e8m23_volta_s7``; overrides add ``_f<F>`` / ``_l<L>`` after the
semantics (``dot_k8_e5m10_e8m23_volta_f24_l8_s5``).
"""

from __future__ import annotations

from ..golden.dot import SEMANTICS_CHOICES, parse_semantics
from ..golden.formats import FP16, FP32
from ..rtl.tensor.dot_product_add import ACC_FORMATS, IN_FORMATS, K_MAX, DotProductAdd
from ..rtl.tensor.mma import DIM_MAX, MMA
from .registry import ChoiceParam, FormatParam, Generator, IntParam, register

__all__ = ["semantics_of", "sem_tag"]

#: Default pipeline depth of both generators: one register after each of the fused datapath's 7
#: steps (unpack | DSP multiply + exponent planning | align | add | count | shift | round), the
#: largest value every configuration accepts (chain k=1 and a one-block fused lane have 7 steps).
#: The 4x4x4 Volta MMA needs it for its >= 75 MHz target on ecp5-85k (see README).
DEFAULT_STAGES = 7
#: Largest ``--stages`` accepted by the schema; the component checks the exact limit of a
#: configuration (7 per chain step, 7 + 6 per extra nvidia block).
STAGES_HI = 7 * K_MAX


def semantics_of(params: dict):
    """Semantics object of resolved ``dot``/``mma`` parameters (F/L of 0 = the preset's)."""
    F = params.get("F") or None
    L = params.get("L") or None
    return parse_semantics(params["semantics"], F, L, acc_format=params["acc_format"])


def sem_tag(params: dict) -> str:
    """Semantics part of a top name: the preset name plus ``_f<F>``/``_l<L>`` for overrides."""
    tag = params["semantics"]
    if params.get("F"):
        tag += f"_f{params['F']}"
    if params.get("L"):
        tag += f"_l{params['L']}"
    return tag


def _common():
    return (
        FormatParam("in_format", FP16, "format of a and b (tf32: low 13 bits ignored)", choices=IN_FORMATS),
        FormatParam("acc_format", FP32, "format of c and d (fp16: nvidia presets round RNE)", choices=ACC_FORMATS),
        ChoiceParam("semantics", "volta", "numerics: chain (k IEEE FMAs), exact (one rounding) or an NVIDIA "
                    "tensor-core preset", choices=SEMANTICS_CHOICES),
        IntParam("F", 0, "nvidia only: fraction bits kept after alignment (0 = the preset's F)", lo=0, hi=48),
        IntParam("L", 0, "nvidia only: products fused per block, k > L chains blocks (0 = the preset's L)",
                 lo=0, hi=256),
        IntParam("stages", DEFAULT_STAGES, "pipeline registers (= latency in cycles); at most 7 per step of "
                 "the datapath", lo=0, hi=STAGES_HI),
    )


def _build_dot(k, in_format, acc_format, semantics, F, L, stages):
    sem = semantics_of({"semantics": semantics, "F": F, "L": L, "acc_format": acc_format})
    return DotProductAdd(k=k, in_format=in_format, acc_format=acc_format, semantics=sem, stages=stages)


def _build_mma(m, n, k, in_format, acc_format, semantics, F, L, stages):
    sem = semantics_of({"semantics": semantics, "F": F, "L": L, "acc_format": acc_format})
    return MMA(m=m, n=n, k=k, in_format=in_format, acc_format=acc_format, semantics=sem, stages=stages)


register(Generator(
    name="dot",
    summary="fused dot-product-add d = sum_i a[i]*b[i] + c (tensor-core lane): chain, exact or NVIDIA numerics",
    build=_build_dot,
    params=(IntParam("k", 4, "number of products", lo=1, hi=K_MAX),) + _common(),
    top=lambda p: f"dot_k{p['k']}_{p['in_format']}_{p['acc_format']}_{sem_tag(p)}_s{p['stages']}",
    bench="stream",
))

register(Generator(
    name="mma",
    summary="tensor-core MMA block D = A*B + C, one m x n x k block per cycle (m*n dot lanes)",
    build=_build_mma,
    params=(
        IntParam("m", 4, "rows of A, C, D", lo=1, hi=DIM_MAX),
        IntParam("n", 4, "columns of B, C, D", lo=1, hi=DIM_MAX),
        IntParam("k", 4, "columns of A = rows of B", lo=1, hi=K_MAX),
    ) + _common(),
    top=lambda p: f"mma_m{p['m']}n{p['n']}k{p['k']}_{p['in_format']}_{p['acc_format']}_{sem_tag(p)}_s{p['stages']}",
    bench="stream",
))
