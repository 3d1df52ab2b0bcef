"""Amaranth-simulation tests of MaxAbs (rtl/flex/max_abs.py): Γ = golden.flex.max_abs over every
tensor prefix of a start/last-delimited stream, through random gaps and back-pressure."""

from __future__ import annotations

import numpy as np
import pytest

from tensorforge.gen import registry
from tensorforge.rtl.flex import MaxAbs
from tensorforge.sim.models import get_model
from tensorforge.sim.models_flex import tensor_starts

from test_tensor_support import check, run_stream, vector_count

# components built only to inspect properties or provoke errors are never elaborated
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl._ir.UnusedElaboratable")

SEED = 505


@pytest.mark.parametrize("params", [
    dict(lanes=1, stages=0), dict(lanes=1, stages=1), dict(lanes=4, stages=2), dict(lanes=3, man_bits=8, stages=1),
], ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_maxabs_matches_golden(params):
    params = registry.resolve("maxabs", params)
    model = get_model("maxabs")
    inputs = model.stimulus(params, vector_count(1500), np.random.default_rng(SEED))
    expected = model.reference(params, inputs)
    core = registry.get("maxabs").build(**params)
    got = run_stream(core, inputs, seed=SEED)
    check(got, expected, inputs, seed=SEED, label=registry.get("maxabs").top(params))
    last = np.asarray(inputs["last"]).astype(bool)
    gam = np.asarray(expected["gamma"])[last]
    assert (gam == 0).any() and (gam == 1 << (params["man_bits"] - 1)).any()   # all-zero and -2**(N-1) tensors


def test_directed_sequence():
    """Tensors [3, -7, 2 | last], [0 | last], [-32768, 5 | last], a start mid-tensor resets, and a
    tensor beginning after last without start."""
    man = [3, -7, 2, 0, -32768, 5, 100, 9, 1, 20]
    start = [1, 0, 0, 0, 1, 0, 0, 1, 0, 0]
    last = [0, 0, 1, 1, 0, 1, 0, 0, 0, 1]
    expect = [3, 7, 7, 0, 32768, 32768, 100, 9, 9, 20]
    inputs = {"man[0]": [m & 0xFFFF for m in man], "start": start, "last": last}
    got = run_stream(MaxAbs(stages=2), inputs, seed=3)
    assert [int(g) for g in got["gamma"]] == expect
    assert [int(x) for x in got["last"]] == last and [int(x) for x in got["man[0]"]] == inputs["man[0]"]
    assert tensor_starts(start, last).tolist() == [True, False, False, True, True, False, True, True, False, False]


def test_properties_and_errors():
    core = MaxAbs(lanes=2, stages=2)
    core._MustUse__silence = True          # built only to read its properties
    assert (core.latency, core.initiation_interval, core.lanes) == (2, 1, 2)
    assert str(core.field_formats["o"]["gamma"]) == "u16"
    with pytest.raises(ValueError, match=r"^stages must be an integer between 0 and 2, not 3$"):
        MaxAbs(stages=3)
    with pytest.raises(ValueError, match=r"^lanes must be an integer between 1 and 16, not 0$"):
        MaxAbs(lanes=0)
    with pytest.raises(TypeError, match=r"^man_bits must be an integer between 2 and 32, not True$"):
        MaxAbs(man_bits=True)
