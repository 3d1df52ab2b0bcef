"""cocotb on Verilator: the generated flexdot / maxabs Verilog against golden.flex / golden.dfp16, bit for bit.

Default tier (three small builds):

- ``flexdot`` flex, k=4, 2 lanes, 4 stages: shift from the stream
- ``flexdot`` dfp16, k=4, 4 lanes, 5 stages: block shift from the leading-zero count
- ``maxabs`` 4 lanes, 2 stages: Γ over start/last-delimited tensors

``TF_VECTORS`` vectors per configuration (default 20000) from ``sim.models_flex``: random
tensors, random bit lengths, extreme values, all-zero blocks and accumulators forced onto the
saturation / rounding boundary (overflow and near-overflow), with random input gaps and output
back-pressure. Zero mismatches (mantissas, every per-lane overflow flag, the DFP shift, Γ on every
beat), zero protocol errors, observed latency = manifest latency. The flag counts are printed:
flags are compared bit for bit, so "0 missed, 0 spurious" is the same as 0 mismatching flag fields.
The ``slow`` tier adds k=16/64, man_bits 8, maxabs with 1 lane and no pipeline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tensorforge.gen import registry
from tensorforge.sim import runner
from tensorforge.sim.models import get_model

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"
VECTORS = int(os.environ.get("TF_VECTORS", "20000"))
SEED = int(os.environ.get("TF_SEED", "4040"))

DEFAULT = [
    ("flexdot", dict(mode="flex", k=4, lanes=2, stages=4)),
    ("flexdot", dict(mode="dfp16", k=4, lanes=4, stages=5)),
    ("maxabs", dict(lanes=4, stages=2)),
]
SLOW = [
    ("flexdot", dict(mode="flex", k=16, lanes=1, stages=2)),
    ("flexdot", dict(mode="dfp16", k=64, lanes=2, stages=3)),
    ("flexdot", dict(mode="flex", k=8, lanes=4, man_bits=8, shift_bits=6, stages=1)),
    ("maxabs", dict(lanes=1, stages=0)),
]


def _id(gen, params):
    return gen + "-" + "-".join(f"{k}{v}" for k, v in params.items())


def _cases(configs, marks=()):
    for gen, params in configs:
        cid = _id(gen, params)
        yield pytest.param(gen, params, id=cid, marks=[pytest.mark.xdist_group(cid), *marks])


def _flag_summary(gen, params):
    """Overflow flags / Γ classes of the stimulus the runner used (same seeds: chunk 0 of simulate)."""
    values = registry.resolve(gen, params)
    model = get_model(gen)
    inputs = model.stimulus(values, VECTORS, np.random.default_rng([SEED, 0]))
    ref = model.reference(values, inputs)
    if gen == "flexdot":
        ovf = np.stack([np.asarray(v) for f, v in ref.items() if f.startswith("overflow")], 1).astype(bool)
        return f"{int(ovf.sum())} overflow flags set in {int(ovf.any(1).sum())} vectors, " \
               f"{int((~ovf).sum())} clear"
    last = np.asarray(inputs["last"]).astype(bool)
    gam = np.asarray(ref["gamma"])[last]
    return f"{int(last.sum())} tensors ({int((gam == 0).sum())} all-zero, " \
           f"{int((gam == 1 << (values['man_bits'] - 1)).sum())} with Γ = 2**(N-1))"


def _run(gen, params):
    res = runner.simulate(gen, params, VECTORS, seed=SEED, gap=0.2, stall=0.2, build_root=BUILD_ROOT)
    print(f"{res['top']}: {res['received']} vectors, {res['mismatches']} mismatches, build "
          f"{'%.1f s' % res['build_seconds'] if res['compiled'] else 'cached'}, "
          f"{res['sim_vectors_per_second']:.0f} vectors/s, seed {SEED}; {_flag_summary(gen, params)}")
    detail = json.dumps({k: res[k] for k in ("top", "seed", "mismatches", "first_mismatches", "protocol_errors",
                                             "first_protocol_errors")}, indent=1)
    assert res["received"] == res["vectors"] == VECTORS, detail
    assert res["mismatches"] == 0, f"rerun with TF_SEED={SEED}: {detail}"
    assert res["protocol_errors"] == 0, f"rerun with TF_SEED={SEED}: {detail}"
    assert res["passed"]
    assert res["latency"] == params["stages"]
    if params["stages"]:
        assert res["latency_observed"]["min"] == params["stages"]
    assert res["output_stall_cycles"] > 0


@pytest.mark.verilator
@pytest.mark.parametrize("gen,params", list(_cases(DEFAULT)))
def test_flex_core_matches_golden_in_verilator(gen, params):
    _run(gen, params)


@pytest.mark.verilator
@pytest.mark.parametrize("gen,params", list(_cases(SLOW, [pytest.mark.slow])))
def test_flex_core_matches_golden_in_verilator_deep(gen, params):
    _run(gen, params)
