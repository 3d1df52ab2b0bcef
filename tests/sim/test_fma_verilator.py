"""cocotb on Verilator: the generated FMA/Mul/Add Verilog against the golden model, bit for bit.

Every configuration of ``tensorforge.sim.regression.REGRESSION`` (FP16xFP16+FP32,
BF16xBF16+FP32 and FP32 FMA at two ``stages`` settings each, one Mul, one
Add) is built once (cached under build/sim/<top>) and driven with
``TF_VECTORS`` vectors (default 20000; e.g. ``TF_VECTORS=10000000`` for a
deep run) of TestFloat-style operands, with random input gaps and output
back-pressure. Zero mismatches (result bits and all five flags), zero
stream-protocol errors, and the manifest's latency is the observed one.
Each configuration is its own xdist group, so ``pytest -n 2 --dist
loadgroup`` builds and runs two configurations at a time without collisions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tensorforge.sim import runner
from tensorforge.sim.regression import REGRESSION, config_id

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"
VECTORS = int(os.environ.get("TF_VECTORS", "20000"))
SEED = int(os.environ.get("TF_SEED", "2024"))


def _cases():
    for generator, params in REGRESSION:
        if generator in ("fma", "mul", "add"):
            cid = config_id(generator, params)
            yield pytest.param(generator, params, id=cid, marks=pytest.mark.xdist_group(cid))


@pytest.mark.verilator
@pytest.mark.parametrize("generator,params", list(_cases()))
def test_core_matches_golden_in_verilator(generator, params):
    res = runner.simulate(generator, params, VECTORS, seed=SEED, gap=0.2, stall=0.2, build_root=BUILD_ROOT)
    print(f"{res['top']}: {res['received']} vectors, {res['mismatches']} mismatches, build "
          f"{'%.1f s' % res['build_seconds'] if res['compiled'] else 'cached'}, "
          f"{res['sim_vectors_per_second']:.0f} vectors/s, seed {SEED}")
    detail = json.dumps({k: res[k] for k in ("top", "seed", "mismatches", "first_mismatches", "protocol_errors",
                                             "first_protocol_errors")}, indent=1)
    assert res["received"] == res["vectors"] == VECTORS, detail
    assert res["mismatches"] == 0, f"rerun with TF_SEED={SEED}: {detail}"
    assert res["protocol_errors"] == 0, f"rerun with TF_SEED={SEED}: {detail}"
    assert res["passed"]
    stages = params["stages"]
    assert res["latency"] == stages
    assert res["latency_observed"]["min"] == stages
    # the random traffic really exercised both gaps and back-pressure
    assert res["input_wait_cycles"] > 0 or stages == 0
    assert res["output_stall_cycles"] > 0
