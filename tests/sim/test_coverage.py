"""Functional coverage (sim/coverage.py), its bench hook, and the Verilator line/toggle summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tensorforge.golden.formats import FP8_E4M3, FP8_E5M2, FP16, FP32
from tensorforge.golden import fp
from tensorforge.sim.coverage import FpCoverage, for_manifest, format_report, merge_reports, operand_classes
from tensorforge.sim.exhaustive.vcoverage import read_dat, summarize

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"


def _fma_cov(in_fmt, acc_fmt, rounding="rne"):
    return FpCoverage([("a", in_fmt), ("b", in_fmt), ("c", acc_fmt)], acc_fmt, rounding=rounding)


def test_bins_per_format():
    assert operand_classes(FP8_E4M3) == ("zero", "subnormal", "normal", "qnan")
    assert operand_classes(FP16) == ("zero", "subnormal", "normal", "inf", "qnan", "snan")
    rep = _fma_cov(FP8_E4M3, FP16).report()
    assert rep["points"]["operands"]["bins"] == 4 * 4 * 6
    assert rep["points"]["result"]["bins"] == 5
    assert rep["percent"] == 0.0


def test_counts_of_known_vectors():
    cov = _fma_cov(FP16, FP32)
    a = np.array([0x3C00, 0x0000, 0x7C00, 0x0001], dtype=np.uint64)      # 1, 0, inf, min subnormal
    b = np.array([0x3C00, 0x7C00, 0x0000, 0x0001], dtype=np.uint64)      # 1, inf, 0, min subnormal
    c = np.array([0x00000000, 0x3F800000, 0x7FC00000, 0x00000000], dtype=np.uint64)
    d, flags = fp.fma(a, b, c, FP16, FP32)
    cov.sample({"a": a, "b": b, "c": c}, d, flags)
    pts = cov.report()["points"]
    assert pts["operand.a"]["counts"] == {"zero": 1, "subnormal": 1, "normal": 1, "inf": 1, "qnan": 0, "snan": 0}
    assert pts["operands"]["counts"]["normal x normal x zero"] == 1
    assert pts["operands"]["counts"]["zero x inf x normal"] == 1
    assert pts["operands"]["counts"]["inf x zero x qnan"] == 1
    assert pts["operands"]["counts"]["subnormal x subnormal x zero"] == 1
    # 1*1+0 = 1 exact; 0*inf+1 = NaN invalid; inf*0+qNaN = NaN invalid (SoftFloat); 2^-48 exact, normal in FP32
    assert pts["result"]["counts"] == {"zero": 0, "subnormal": 0, "normal": 2, "inf": 0, "nan": 2}
    assert pts["result_x_flags"]["counts"]["nan + invalid"] == 2
    assert pts["result_x_flags"]["counts"]["normal + none"] == 2
    assert "zero + underflow" in pts["result_x_flags"]["holes"]
    assert cov.report()["unexpected"] == {}


def test_overflow_bins_follow_rounding():
    rne = _fma_cov(FP16, FP16, "rne").report()["points"]["result_x_flags"]["counts"]
    rtz = _fma_cov(FP16, FP16, "rtz").report()["points"]["result_x_flags"]["counts"]
    fn = _fma_cov(FP8_E4M3, FP8_E4M3, "rne").report()["points"]["result_x_flags"]["counts"]
    assert "inf + overflow" in rne and "normal + overflow" not in rne
    assert "normal + overflow" in rtz and "inf + overflow" not in rtz
    assert "nan + overflow" in fn and "nan + inexact" in fn


def test_random_stimulus_hits_no_unexpected_bin():
    """Every (result class, flag) seen in 200k golden vectors is a declared bin (reachability rules hold)."""
    from tensorforge.sim.models import get_model
    for in_fmt, acc_fmt, rnd in ((FP8_E4M3, FP8_E4M3, "rne"), (FP16, FP16, "rdn"), (FP8_E5M2, FP16, "rtz")):
        params = {"in_format": in_fmt, "acc_format": acc_fmt, "rounding": rnd, "stages": 0}
        m = get_model("fma")
        ins = m.stimulus(params, 200_000, np.random.default_rng(5))
        out = m.reference(params, ins)
        cov = _fma_cov(in_fmt, acc_fmt, rnd).sample(ins, out["d"], out["flags"])
        rep = cov.report()
        assert rep["unexpected"] == {}, (in_fmt, rnd, rep["unexpected"])
        assert rep["points"]["operands"]["percent"] >= 80


def test_merge_and_format():
    a = np.array([0x3C00], dtype=np.uint64)
    c1 = _fma_cov(FP16, FP32).sample({"a": a, "b": a, "c": np.array([0], np.uint64)},
                                     np.array([0x3F800000], np.uint64), np.array([0], np.uint64)).report()
    c2 = _fma_cov(FP16, FP32).sample({"a": a, "b": a, "c": np.array([0], np.uint64)},
                                     np.array([0x3F800000], np.uint64), np.array([0], np.uint64)).report()
    m = merge_reports([c1, None, c2])
    assert m["points"]["result"]["counts"]["normal"] == 2
    assert m["hit"] == c1["hit"]
    lines = format_report(m)
    assert lines[0].startswith(f"functional coverage {m['percent']:.1f}%")
    assert any(line.strip().startswith("result ") and "holes: zero, subnormal, inf, nan" in line for line in lines)
    assert merge_reports([None]) is None


def test_for_manifest_only_fp_cores():
    from tensorforge.gen.manifest import elaborate
    art = elaborate("fma", {"in_format": FP8_E5M2, "acc_format": FP16, "stages": 1})
    cov = for_manifest(art.manifest)
    assert [n for n, _ in cov.inputs] == ["a", "b", "c"]
    assert for_manifest({"top": "x", "ports": [{"name": "i__payload", "width": 8, "fields": [
        {"name": "x", "offset": 0, "width": 8, "format": "i8"}]}]}) is None


def test_summarize_dat(tmp_path):
    s = "\x01"
    t = "\x02"
    dat = tmp_path / "c.dat"
    dat.write_text(
        "# SystemC::Coverage-3\n"
        f"C '{s}f{t}x.v{s}l{t}10{s}page{t}v_line/top{s}o{t}block{s}h{t}top' 5\n"
        f"C '{s}f{t}x.v{s}l{t}11{s}page{t}v_line/top{s}o{t}else{s}h{t}top' 0\n"
        f"C '{s}f{t}x.v{s}l{t}3{s}page{t}v_toggle/top{s}o{t}sig[0]:0->1{s}h{t}top' 2\n")
    assert len(read_dat(dat)) == 3
    out = summarize([dat, dat])
    assert out["line"]["points"] == 2 and out["line"]["covered"] == 1 and out["line"]["percent"] == 50.0
    assert out["line"]["holes"] == ["x.v:11 top else"]
    assert out["toggle"]["percent"] == 100.0


@pytest.mark.verilator
def test_sim_results_carry_coverage():
    """The stream bench's results JSON has the functional coverage of the vectors it ran."""
    from tensorforge.sim import runner
    res = runner.simulate("fma", {"in_format": FP16, "acc_format": FP32, "stages": 3}, 3000, seed=7,
                          build_root=BUILD_ROOT)
    assert res["passed"]
    cov = res["coverage"]
    assert cov is not None and cov["points"]["operand.a"]["percent"] == 100.0
    assert sum(cov["points"]["result"]["counts"].values()) == 3000
    assert cov["unexpected"] == {}


@pytest.mark.verilator
def test_verilator_line_toggle_coverage_command(capsys):
    from tensorforge.gen.cli import main
    status = main(["coverage", "fma", "--in-format", "fp8e4m3", "--acc-format", "fp16", "--stages", "3",
                   "--vectors", "5000", "--build-dir", str(BUILD_ROOT)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "verilator line" in out and "verilator toggle" in out
    assert "functional coverage" in out
