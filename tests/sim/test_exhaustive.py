"""Exhaustive checks at native Verilator speed (C++ driver, chunked numpy golden comparison).

Default tier: both FP8 input formats, every (a, b) pair against a sweep of
accumulator values c (the special-value pool of the accumulator format: 2^16
pairs x ~40 c), plus the TestFloat level-1 pattern cross, zero mismatches;
and the harness must report a mismatch when the reference disagrees.
Slow tier: FP16 x FP16 + FP32 level-1 patterns, and the full 2^32 FP16 pair
space with c = +0 (`tensorforge exhaustive fma --in-format fp16 --acc-format fp32`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tensorforge.golden.formats import FP8_E4M3, FP8_E5M2, FP16, FP32
from tensorforge.sim.exhaustive.harness import build_driver, ports_header, run_grid, run_vectors
from tensorforge.sim.exhaustive.patterns import c_values, level1_values
from tensorforge.sim.exhaustive.commands import run_exhaustive

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"

FP8_CONFIGS = [
    pytest.param({"in_format": FP8_E4M3, "acc_format": FP16, "stages": 3}, id="e4m3-fp16-s3",
                 marks=pytest.mark.xdist_group("exh-e4m3")),
    pytest.param({"in_format": FP8_E5M2, "acc_format": FP16, "stages": 2}, id="e5m2-fp16-s2",
                 marks=pytest.mark.xdist_group("exh-e5m2")),
]


def _gen(name="fma"):
    from tensorforge.gen import registry
    return registry.get(name)


@pytest.mark.verilator
@pytest.mark.parametrize("params", FP8_CONFIGS)
def test_fp8_all_pairs_times_c_sweep(params):
    res = run_exhaustive(_gen(), params, space="pairs", c="specials", jobs=1, build_root=BUILD_ROOT)
    n_c = len(c_values("specials", params["acc_format"]))
    assert res["vectors"] == 256 * 256 * n_c
    assert res["mismatches"] == 0, res["first_mismatches"]
    assert res["passed"]


@pytest.mark.verilator
@pytest.mark.parametrize("params", FP8_CONFIGS)
def test_fp8_level1_patterns_with_backpressure(params):
    res = run_exhaustive(_gen(), params, space="patterns", jobs=1, stall=0.3, build_root=BUILD_ROOT)
    n = len(level1_values(params["in_format"])) ** 2 * len(level1_values(params["acc_format"]))
    assert res["vectors"] == n
    assert res["mismatches"] == 0, res["first_mismatches"]


@pytest.mark.verilator
def test_harness_reports_mismatches(monkeypatch):
    """A reference that disagrees on exactly one input must give exactly one mismatch, with its inputs."""
    from tensorforge.sim import models
    params = {"in_format": FP8_E4M3, "acc_format": FP16, "stages": 3}
    db = build_driver("fma", params, build_root=BUILD_ROOT)
    real = models.get_model("fma")
    bad_a, bad_b = 0x38, 0x41

    def wrong(p, inputs):
        out = real.reference(p, inputs)
        d = np.array(out["d"], copy=True)
        hit = (np.asarray(inputs["a"]) == bad_a) & (np.asarray(inputs["b"]) == bad_b)
        d[hit] ^= 1
        return {"d": d, "flags": out["flags"]}

    monkeypatch.setitem(models._MODELS, "fma", models.StreamModel("fma", real.stimulus, wrong))
    res = run_grid(db, a_range=(0x30, 0x40), b_range=(0, 256), cs=[0x3C00], jobs=1)
    assert res["vectors"] == 16 * 256
    assert res["mismatches"] == 1
    (m,) = res["first_mismatches"]
    assert m["inputs"] == {"a": "0x38", "b": "0x41", "c": "0x3c00"}
    assert m["index"] == (0x38 - 0x30) * 256 + 0x41       # position in the grid order (for a: for b:)
    assert int(m["expected"]["d"], 16) ^ int(m["got"]["d"], 16) == 1


def test_ports_header_wide_payload():
    """FP32 FMA: 96-bit input payload -> word-wise packing; 37-bit output -> one 64-bit read."""
    from tensorforge.gen.manifest import elaborate
    art = elaborate("fma", {"in_format": FP32, "acc_format": FP32, "stages": 1})
    text = ports_header(art.manifest)
    assert "#define TF_NIN 3" in text and "#define TF_NOUT 2" in text
    assert "t->TF_I_PAYLOAD[k] = w[k]" in text
    assert "#define TF_I_VALID i___05Fvalid" in text
    assert "static const int TF_OUT_BYTES[2] = {4, 1};" in text


def test_c_values_parsing():
    assert c_values("zero", FP16).tolist() == [0]
    assert c_values("0x3c00,0x8000,0x3c00", FP16).tolist() == [0x3C00, 0x8000]
    assert len(c_values("all", FP8_E5M2)) == 256
    with pytest.raises(ValueError, match="--c value 0x10000 does not fit the 16-bit format e5m10"):
        c_values("0x10000", FP16)
    with pytest.raises(ValueError, match="--c must be bit patterns"):
        c_values("pi", FP16)


def test_level1_values_cover_classes():
    from tensorforge.golden.fp import classify
    v = level1_values(FP16)
    c = classify(v, FP16)
    for name in ("zero", "subnormal", "normal", "inf", "qnan", "snan"):
        assert getattr(c, name).any(), name
    assert len(np.unique(v)) == len(v)


@pytest.mark.slow
@pytest.mark.verilator
def test_fp16_fp32_level1_patterns():
    res = run_exhaustive(_gen(), {"in_format": FP16, "acc_format": FP32, "stages": 3}, space="patterns",
                         jobs=2, build_root=BUILD_ROOT)
    assert res["mismatches"] == 0, res["first_mismatches"]


@pytest.mark.slow
@pytest.mark.verilator
def test_fp16_all_pairs_c_zero():
    """The full 2^32 FP16 x FP16 product space with c = +0 (about an hour on 2 busy cores)."""
    res = run_exhaustive(_gen(), {"in_format": FP16, "acc_format": FP32, "stages": 3}, space="pairs", c="zero",
                         jobs=2, build_root=BUILD_ROOT)
    assert res["vectors"] == 1 << 32
    assert res["mismatches"] == 0, res["first_mismatches"]


@pytest.mark.parametrize("argv,message", [
    (["exhaustive", "fma", "--c", "pi"], "--c must be bit patterns (0x3c00, 0) or zero, specials, level1, all; not 'pi'"),
    (["exhaustive", "mul", "--c", "0x1"], "--c applies to fma only (the mul core has no addend)"),
    (["exhaustive", "dot"], "`exhaustive` does not support generator 'dot'; allowed: add, fma, mul"),
    (["coverage", "dot"], "`coverage` does not support generator 'dot'; allowed: add, fma, mul"),
    (["exhaustive", "fma", "--in-format", "fp8e5m2", "--acc-format", "fp16", "--a-range", "3"],
     "--a-range must be LO:HI (integers), not '3'"),
])
def test_cli_errors_before_any_build(argv, message, capsys):
    from tensorforge.gen.cli import main
    assert main(argv) == 2
    assert message in capsys.readouterr().err
