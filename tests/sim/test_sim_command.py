"""`tensorforge sim` and `tensorforge demo` end to end (reusing the regression builds in build/sim)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tensorforge.gen.cli import main
from tensorforge.sim import models

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"
ADD = ["add", "--fmt", "fp32", "--stages", "3"]          # same configuration as the regression: cached build


@pytest.mark.verilator
@pytest.mark.xdist_group("add-fmt=e8m23-stages=3")
def test_sim_json_reports_a_clean_run(capsys):
    status = main(["sim", *ADD, "--vectors", "3000", "--seed", "5", "--json", "--build-dir", str(BUILD_ROOT)])
    out = capsys.readouterr().out
    res = json.loads(out)          # one JSON object, nothing else on stdout
    assert status == 0
    assert res["top"] == "add_e8m23_rne_s3" and res["generator"] == "add"
    assert res["vectors"] == res["received"] == 3000
    assert res["mismatches"] == 0 and res["first_mismatches"] == [] and res["protocol_errors"] == 0
    assert res["seed"] == 5 and res["latency"] == 3 and res["cycles"] > 3000
    assert res["sim_vectors_per_second"] > 0
    assert res["params"] == {"fmt": "e8m23", "rounding": "rne", "stages": "3"}


@pytest.mark.verilator
@pytest.mark.xdist_group("add-fmt=e8m23-stages=3")
def test_sim_exits_1_and_prints_mismatches_in_hex(capsys, monkeypatch):
    real = models.get_model("add")

    def wrong_reference(params, inputs):
        out = real.reference(params, inputs)
        d = np.array(out["d"], dtype=np.uint64)
        d[7] ^= 1                   # pretend the golden model disagrees on vector 7
        return dict(out, d=d)

    monkeypatch.setitem(models._MODELS, "add", models.StreamModel("add", real.stimulus, wrong_reference))
    status = main(["sim", *ADD, "--vectors", "500", "--build-dir", str(BUILD_ROOT)])
    out = capsys.readouterr().out
    assert status == 1
    assert "mismatches        1" in out
    line = next(x for x in out.splitlines() if x.startswith("MISMATCH"))
    assert line.startswith("MISMATCH vector 7: a=0x") and " b=0x" in line and "expected d=0x" in line
    assert out.rstrip().endswith("FAIL")


@pytest.mark.verilator
@pytest.mark.xdist_group("fma-in_format=e5m10-acc_format=e8m23-stages=9")
def test_demo_summary(tmp_path, capsys):
    # synthesis has its own tests (tests/synth); the MMA shares its build with tests/sim/test_tensor_verilator.py
    status = main(["demo", "--vectors", "2000", "--mma-vectors", "200", "--no-synth",
                   "-o", str(tmp_path / "demo"), "--build-dir", str(BUILD_ROOT)])
    out = capsys.readouterr().out
    assert status == 0, out
    top = "fma_e5m10_e8m23_rne_s9"
    mma = "mma_m4n4k4_e5m10_e8m23_volta_s7"
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(
        f"{t}.{ext}" for t in (top, mma) for ext in ("core", "json", "v"))
    for text in (f"configuration     {top}", "latency           9 cycles", "vectors           2000",
                 "mismatches        0", "vectors/s", f"configuration     {mma}", "blocks            200"):
        assert text in out
    assert "mismatches        1" not in out
    assert out.rstrip().endswith("PASS")
