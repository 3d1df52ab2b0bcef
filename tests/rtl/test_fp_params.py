"""Parameter validation, properties and port layouts of the floating-point cores (messages pinned)."""

from __future__ import annotations

import gc

import pytest

from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32, FloatFormat
from tensorforge.rtl.fp.add import Add
from tensorforge.rtl.fp.fma import FMA
from tensorforge.rtl.fp.mul import Mul
from tensorforge.rtl.fp.round import Round

# cores built only to inspect their properties are never elaborated
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.fixture(autouse=True)
def _collect_unelaborated():
    yield
    gc.collect()      # inside the filterwarnings scope: drop this file's never-elaborated cores now


def test_fma_defaults_and_properties():
    core = FMA(in_format=FP16, acc_format=FP32)
    assert core.in_format is FP16 and core.acc_format is FP32
    assert core.rounding == "rne"
    assert core.stages == FMA.DEFAULT_STAGES == core.latency
    assert core.initiation_interval == 1
    assert FMA.MAX_STAGES == FMA.DEFAULT_STAGES == len(core.steps) == 9
    assert core.steps == ("unpack", "prenormalize", "multiply", "align", "add", "count", "merge", "shift",
                          "round")
    assert core.field_formats == {"i": {"a": FP16, "b": FP16, "c": FP32}, "o": {"d": FP32, "flags": None}}
    assert FMA(in_format=BF16).acc_format is BF16          # acc_format defaults to in_format
    with pytest.raises(AttributeError):
        core.stages = 3


def test_fma_payload_layouts():
    core = FMA(in_format=FP16, acc_format=FP32, stages=2)
    i_layout = core.i.payload.shape()
    assert [(name, f.offset, f.width) for name, f in i_layout] == [("a", 0, 16), ("b", 16, 16), ("c", 32, 32)]
    o_layout = core.o.payload.shape()
    assert [(name, f.offset, f.width) for name, f in o_layout] == [("d", 0, 32), ("flags", 32, 5)]


def test_mul_add_layouts_and_properties():
    mul = Mul(fmt=FP16, out_format=FP32)
    assert mul.fmt is FP16 and mul.out_format is FP32 and mul.latency == Mul.DEFAULT_STAGES == 4
    assert Mul(fmt=BF16).out_format is BF16
    assert [(n, f.width) for n, f in mul.i.payload.shape()] == [("a", 16), ("b", 16)]
    assert mul.field_formats == {"i": {"a": FP16, "b": FP16}, "o": {"d": FP32, "flags": None}}
    add = Add(fmt=FP32)
    assert add.fmt is FP32 and add.latency == Add.DEFAULT_STAGES == 6 == Add.MAX_STAGES
    assert [(n, f.width) for n, f in add.i.payload.shape()] == [("a", 32), ("b", 32)]
    assert add.field_formats == {"i": {"a": FP32, "b": FP32}, "o": {"d": FP32, "flags": None}}


def test_every_stages_value_places_that_many_registers():
    # (every value 0..9 is simulated in test_fp_fma.py)
    for stages in range(FMA.MAX_STAGES + 1):
        core = FMA(in_format=FP8_E4M3, stages=stages)
        assert core.latency == stages and len(core.cuts) == stages
        assert stages == 0 or core.cuts[-1] == len(core.steps)      # the output is registered
    assert FMA(in_format=FP16, acc_format=FP32, stages=9).cuts == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    # the multiplier keeps a register right before and after it when one step must be merged
    steps = FMA(in_format=FP16, acc_format=FP32).steps
    cuts8 = FMA(in_format=FP16, acc_format=FP32, stages=8).cuts
    assert steps.index("multiply") in cuts8 and steps.index("multiply") + 1 in cuts8


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(in_format="fp16"), TypeError,
     "in_format must be a FloatFormat (e.g. tensorforge.golden.formats.FP16), not 'fp16'"),
    (dict(in_format=FP16, acc_format=32), TypeError,
     "acc_format must be a FloatFormat (e.g. tensorforge.golden.formats.FP16), not 32"),
    (dict(in_format=FP32, acc_format=FP16), ValueError,
     "acc_format e5m10 must have at least the exponent and fraction bits of in_format e8m23 "
     "(exp_bits >= 8, man_bits >= 23)"),
    (dict(in_format=FP16, acc_format=BF16), ValueError,
     "acc_format e8m7 must have at least the exponent and fraction bits of in_format e5m10 "
     "(exp_bits >= 5, man_bits >= 10)"),
    (dict(in_format=FP8_E5M2, acc_format=FloatFormat(5, 3, has_inf=False)), ValueError,
     "acc_format e5m3fn has no infinities but in_format e5m2 has: use an acc_format with infinities"),
    (dict(in_format=FP16, acc_format=FP32, rounding="nearest"), ValueError,
     "rounding must be one of rne, rtz, rdn, rup, rmm, not 'nearest'"),
    (dict(in_format=FP16, acc_format=FP32, rounding="RNE"), ValueError,
     "rounding must be one of rne, rtz, rdn, rup, rmm, not 'RNE'"),
    (dict(in_format=FP16, acc_format=FP32, stages=10), ValueError,
     "stages must be an integer between 0 and 9, not 10"),
    (dict(in_format=FP16, acc_format=FP32, stages=-1), ValueError,
     "stages must be an integer between 0 and 9, not -1"),
    (dict(in_format=FP16, acc_format=FP32, stages=True), ValueError,
     "stages must be an integer between 0 and 9, not True"),
    (dict(in_format=FP16, acc_format=FP32, stages=2.0), ValueError,
     "stages must be an integer between 0 and 9, not 2.0"),
])
def test_fma_rejects_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc) as info:
        FMA(**kwargs)
    assert str(info.value) == message


def test_fma_accepts_sensible_pairs():
    for fi, fa in [(FP16, FP32), (BF16, FP32), (TF32, FP32), (FP8_E4M3, FP16), (FP8_E5M2, FP16),
                   (FP8_E4M3, FP8_E4M3), (FP8_E4M3, BF16), (FP16, FloatFormat(6, 12))]:
        FMA(in_format=fi, acc_format=fa, stages=1)


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        FMA(FP16, FP32)
    with pytest.raises(TypeError):
        Mul(FP16)
    with pytest.raises(TypeError):
        Add(FP16)


@pytest.mark.parametrize("make,message", [
    (lambda: Mul(fmt=FP16, stages=5), "stages must be an integer between 0 and 4, not 5"),
    (lambda: Mul(fmt=FP16, out_format="e8m23"),
     "out_format must be a FloatFormat (e.g. tensorforge.golden.formats.FP16), not 'e8m23'"),
    (lambda: Mul(fmt=FP16, rounding="rna"), "rounding must be one of rne, rtz, rdn, rup, rmm, not 'rna'"),
    (lambda: Add(fmt=FP32, stages=7), "stages must be an integer between 0 and 6, not 7"),
    (lambda: Add(fmt=None), "fmt must be a FloatFormat (e.g. tensorforge.golden.formats.FP16), not None"),
    (lambda: Round(fmt=FP16, sig_width=0, exp_width=8), "sig_width must be an integer >= 1, not 0"),
    (lambda: Round(fmt=FP16, sig_width=14, exp_width=8, rounding="up"),
     "rounding must be one of rne, rtz, rdn, rup, rmm, not 'up'"),
    (lambda: Round(fmt=FP16, sig_width=14, exp_width=8, exp_min=1.5), "exp_min must be an integer or None, not 1.5"),
])
def test_other_components_reject_bad_parameters(make, message):
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert str(info.value) == message
