"""cocotb on Verilator: the generated dot / mma Verilog against tensorforge.golden.dot, bit for bit.

Default tier (each semantics family at least once, chosen to keep the Verilator builds few
and small; a chain of FMAs is the largest Verilog per multiplier):

- ``dot`` k=4 FP16 x FP16 + FP32, volta, 3 stages (nvidia family)
- ``dot`` k=8 FP16 x FP16 + FP32, exact, 4 stages (the 279-bit exact window)
- ``dot`` k=4 FP16 x FP16 + FP32, chain, 8 stages (4 FMAs in series)
- ``mma`` 2x2x4 FP8 e4m3 x e4m3 + FP32, hopper_fp8, 2 stages
- ``mma`` 4x4x4 FP16 x FP16 + FP32, volta, 7 stages (the Volta tensor-core step, 64 multipliers;
  the default configuration, the one the README's synthesis figures are for)

``TF_VECTORS`` vectors per configuration (default 20000): the directed NUMERICS.md cases of
``sim.models_tensor.directed_dot_rows`` first (for mma broadcast to every lane), then
``golden.dot.random_dot_operands`` rows (uniform bits, exponent-clustered, cancellation,
bottom of the range, wide shifts, 5 % specials), with random input gaps and output
back-pressure. Zero mismatches (d, and flags for chain/exact), zero protocol errors, and the
observed latency equals the manifest's. The ``slow`` tier adds BF16/TF32/FP8 inputs, FP16
output, the other presets and k > L chaining.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tensorforge.golden.formats import BF16, FP8_E4M3, FP8_E5M2, FP16, FP32, TF32
from tensorforge.sim import runner
from tensorforge.sim.models_tensor import directed_dot_rows

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"
VECTORS = int(os.environ.get("TF_VECTORS", "20000"))
SEED = int(os.environ.get("TF_SEED", "2024"))

DEFAULT = [
    ("dot", dict(k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=3)),
    ("dot", dict(k=8, in_format=FP16, acc_format=FP32, semantics="exact", stages=4)),
    ("dot", dict(k=4, in_format=FP16, acc_format=FP32, semantics="chain", stages=8)),
    ("mma", dict(m=2, n=2, k=4, in_format=FP8_E4M3, acc_format=FP32, semantics="hopper_fp8", stages=2)),
    ("mma", dict(m=4, n=4, k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=7)),
]
SLOW = [
    ("mma", dict(m=2, n=2, k=4, in_format=FP16, acc_format=FP32, semantics="chain", stages=8)),  # 16 FMAs
    ("dot", dict(k=8, in_format=BF16, acc_format=FP32, semantics="ampere", stages=5)),
    ("dot", dict(k=8, in_format=FP16, acc_format=FP32, semantics="volta", stages=9)),        # 2 blocks
    ("dot", dict(k=16, in_format=FP16, acc_format=FP16, semantics="hopper", stages=4)),      # hopper_fp16
    ("dot", dict(k=8, in_format=FP8_E5M2, acc_format=FP32, semantics="hopper_fp8", stages=2)),
    ("dot", dict(k=4, in_format=TF32, acc_format=FP32, semantics="exact", stages=3)),
    ("dot", dict(k=4, in_format=BF16, acc_format=FP32, semantics="chain", stages=14)),
    ("dot", dict(k=8, in_format=FP16, acc_format=FP32, semantics="volta", F=24, L=8, stages=4)),
    ("mma", dict(m=2, n=2, k=8, in_format=BF16, acc_format=FP32, semantics="volta", stages=6)),
]


def _id(gen, params):
    return gen + "-" + "-".join(f"{k}{v}" for k, v in params.items())


def _cases(configs, marks=()):
    for gen, params in configs:
        cid = _id(gen, params)
        yield pytest.param(gen, params, id=cid, marks=[pytest.mark.xdist_group(cid), *marks])


def _run(gen, params):
    res = runner.simulate(gen, params, VECTORS, seed=SEED, gap=0.2, stall=0.2, build_root=BUILD_ROOT)
    print(f"{res['top']}: {res['received']} vectors, {res['mismatches']} mismatches, build "
          f"{'%.1f s' % res['build_seconds'] if res['compiled'] else 'cached'}, "
          f"{res['sim_vectors_per_second']:.0f} vectors/s, seed {SEED}")
    detail = json.dumps({k: res[k] for k in ("top", "seed", "mismatches", "first_mismatches", "protocol_errors",
                                             "first_protocol_errors")}, indent=1)
    assert res["received"] == res["vectors"] == VECTORS, detail
    assert res["mismatches"] == 0, f"rerun with TF_SEED={SEED}: {detail}"
    assert res["protocol_errors"] == 0, f"rerun with TF_SEED={SEED}: {detail}"
    assert res["passed"]
    assert res["latency"] == params["stages"] == res["latency_observed"]["min"]
    assert res["output_stall_cycles"] > 0


@pytest.mark.verilator
@pytest.mark.parametrize("gen,params", list(_cases(DEFAULT)))
def test_tensor_core_matches_golden_in_verilator(gen, params):
    _run(gen, params)


@pytest.mark.verilator
@pytest.mark.parametrize("gen,params", list(_cases(SLOW, [pytest.mark.slow])))
def test_tensor_core_matches_golden_in_verilator_deep(gen, params):
    _run(gen, params)


def test_stimulus_starts_with_the_directed_cases():
    """The dot/mma models put every directed row first (per lane for mma), in every format."""
    from tensorforge.sim.models import get_model
    params = dict(k=4, in_format=FP16, acc_format=FP32, semantics="volta", F=0, L=0, stages=3)
    da, db, dc = directed_dot_rows(4, FP16, FP32)
    got = get_model("dot").stimulus(params, 100, np.random.default_rng(1))
    assert [int(x) for x in got["c"][:len(dc)]] == [int(x) for x in dc]
    assert [int(x) for x in got["a[1]"][:len(dc)]] == [int(x) for x in da[:, 1]]
    # the FP16 rows are NUMERICS.md's volta cases: c = -(1 - 2^-24); b = [2, 2^-23 + 2^-24]
    assert int(dc[0]) == 0xBF7FFFFF and [int(x) for x in db[1, :2]] == [0x4000, 0x0003]
    for fi in (BF16, TF32, FP8_E4M3, FP8_E5M2):
        a, b, c = directed_dot_rows(8, fi, FP16)
        assert a.shape == (len(c), 8) and int(a.max()) < (1 << fi.width)
    mparams = dict(m=2, n=2, k=4, in_format=FP16, acc_format=FP32, semantics="exact", F=0, L=0, stages=1)
    model = get_model("mma")
    stim = model.stimulus(mparams, 50, np.random.default_rng(2))
    ref = model.reference(mparams, stim)
    assert set(ref) == {f"{f}[{i}][{j}]" for f in ("d", "flags") for i in range(2) for j in range(2)}
    assert [int(x) for x in stim["c[1][0]"][:len(dc)]] == [int(x) for x in dc]
    assert [int(x) for x in stim["b[1][1]"][:len(dc)]] == [int(x) for x in db[:, 1]]
    assert [int(x) for x in stim["a[1][3]"][:len(dc)]] == [int(x) for x in da[:, 3]]
