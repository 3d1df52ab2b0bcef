"""Amaranth-simulation tests of FlexDot and RoundShift (rtl/flex) against golden.flex / golden.dfp16.

Stimulus comes from ``sim.models_flex`` (random, random-bit-length, extreme, all-zero and
saturation-boundary operands, shifts around full scale and over the whole field); the expected
outputs from ``golden.flex.flex_dot_int`` / ``golden.dfp16.dfp_down_convert_int``, bit for bit,
through random input gaps and output back-pressure. ``TF_VECTORS`` scales the vector counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from tensorforge.gen import registry
from tensorforge.golden.flex import accumulator_bits, round_shift
from tensorforge.rtl.flex import FlexDot, RoundShift
from tensorforge.sim.models import get_model

from test_tensor_support import check, run_stream, vector_count

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

SEED = 404


def _run_model(params, n, seed):
    params = registry.resolve("flexdot", params)
    model = get_model("flexdot")
    rng = np.random.default_rng(seed)
    inputs = model.stimulus(params, n, rng)
    expected = model.reference(params, inputs)
    core = registry.get("flexdot").build(**params)
    got = run_stream(core, inputs, seed=seed)
    check(got, expected, inputs, seed=seed, label=registry.get("flexdot").top(params))
    return expected


CONFIGS = [
    dict(mode="flex", k=4, lanes=1, stages=4),
    dict(mode="flex", k=3, lanes=2, shift_bits=6, stages=2),
    dict(mode="flex", k=8, lanes=1, man_bits=8, acc_bits=30, stages=1),
    dict(mode="flex", k=1, lanes=2, stages=0),
    dict(mode="dfp16", k=4, lanes=4, stages=5),
    dict(mode="dfp16", k=2, lanes=1, stages=3),
    dict(mode="dfp16", k=1, lanes=3, man_bits=8, stages=0),
]


@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_flexdot_matches_golden(params):
    expected = _run_model(params, vector_count(500), SEED)
    ovf = np.stack([v for f, v in expected.items() if f.startswith("overflow")], 1).astype(bool)
    # the stimulus really exercises both sides of the saturation boundary
    assert 0 < ovf.any(axis=1).sum() < len(ovf)


def _one_lane(a, b, shift, *, k=1, man_bits=16, stages=1):
    """Run single vectors through a flex FlexDot with lanes=1; return [(out, overflow)]."""
    core = FlexDot(k=k, man_bits=man_bits, stages=stages)
    inputs = {f"a[0][{i}]": [x[i] & 0xFFFF for x in a] for i in range(k)}
    inputs.update({f"b[0][{i}]": [x[i] & 0xFFFF for x in b] for i in range(k)})
    inputs["shift"] = [s & 0xFF for s in shift]
    got = run_stream(core, inputs, seed=1, p_valid=1.0, p_ready=1.0)
    out = [int(v) - (1 << 16) if int(v) >= (1 << 15) else int(v) for v in got["out[0]"]]
    return list(zip(out, [int(v) for v in got["overflow[0]"]]))


def test_contract_examples():
    """NUMERICS.md / flex-golden-api.md hand cases: 5>>1 -> 2, 7>>1 -> 4, -5>>1 -> -2, -7>>1 -> -4,
    -3>>2 -> -1, -2>>2 -> 0, 65535>>1 -> 32768 -> saturates; exact limits are not overflows."""
    cases = [  # (a, b, shift, expected out, overflow)
        ([5, 0], [1, 0], 1, 2, 0), ([7, 0], [1, 0], 1, 4, 0), ([-5, 0], [1, 0], 1, -2, 0),
        ([-7, 0], [1, 0], 1, -4, 0), ([-3, 0], [1, 0], 2, -1, 0), ([-2, 0], [1, 0], 2, 0, 0),
        ([32767, 1], [2, 1], 1, 32767, 1),            # 65535 / 2 = 32767.5 -> 32768 -> saturates
        ([32767, 0], [2, 0], 1, 32767, 0),            # exactly 32767
        ([-32768, 0], [2, 0], 1, -32768, 0),          # exactly -32768
        ([-32768, -1], [2, 1], 1, -32768, 0),         # -65537 / 2 = -32768.5 -> tie to even -32768
        ([-32768, -3], [2, 1], 1, -32768, 1),         # -65539 / 2 = -32769.5 -> -32770 -> saturates
        ([-32768, 0], [-32768, 0], 15, 32767, 1),     # 2**30 >> 15 = 32768 -> saturates
        ([-32768, 0], [-32768, 0], 16, 16384, 0),
        ([3, 0], [1, 0], -13, 24576, 0),              # exact left shift
        ([3, 0], [1, 0], -14, 32767, 1),              # 49152 saturates
        ([-1, 0], [1, 0], -15, -32768, 0),            # -1 << 15 = -32768 exactly
        ([-1, 0], [1, 0], -16, -32768, 1),
        ([1, 0], [1, 0], -128, 32767, 1),             # the most negative shift field value
        ([-32768, -32768], [-32768, -32768], 127, 0, 0),  # the largest right shift: everything rounds to 0
        ([0, 0], [0, 0], -128, 0, 0),
    ]
    got = _one_lane([c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases], k=2)
    assert got == [(c[3], c[4]) for c in cases]
    gold = round_shift(np.array([sum(x * y for x, y in zip(c[0], c[1])) for c in cases]),
                       np.array([c[2] for c in cases]), 16)
    assert [(int(o), int(f)) for o, f in zip(*gold)] == got


def test_round_shift_exhaustive_small():
    """RoundShift N=4, W=8: every accumulator value x every shift -8..7 against golden.round_shift."""
    dut = RoundShift(acc_bits=8, man_bits=4, shift_bits=4)
    acc = np.repeat(np.arange(-128, 128), 16)
    sh = np.tile(np.arange(-8, 8), 256)
    exp_out, exp_ovf = round_shift(acc, sh, 4)
    bad = []

    async def bench(ctx):
        for x, s, e, o in zip(acc.tolist(), sh.tolist(), exp_out.tolist(), exp_ovf.tolist()):
            ctx.set(dut.acc, x)
            ctx.set(dut.shift, s)
            got = (ctx.get(dut.out), ctx.get(dut.overflow))
            if got != (e, int(o)):
                bad.append((x, s, got, (e, int(o))))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, f"{len(bad)} mismatches of {len(acc)}, first {bad[:5]}"


def _probe(**kwargs):
    core = FlexDot(**kwargs)
    core._MustUse__silence = True          # built only to read its properties
    return core


def test_timing_properties_and_formats():
    core = _probe(k=4, stages=3)
    assert (core.latency, core.initiation_interval, core.acc_bits, core.max_stages) == (3, 1, 34, 4)
    assert _probe(k=64, mode="dfp16", stages=5).acc_bits == accumulator_bits(16, 64) == 38
    assert _probe(k=4, acc_bits=48, stages=1).acc_bits == 48
    ff = _probe(k=2, mode="dfp16", stages=1).field_formats
    assert {k: str(v) for k, v in ff["o"].items()} == {"out": "i16", "overflow": "None", "shift": "i8"}
    assert "shift" not in ff["i"] and "shift" in _probe(k=2, stages=1).field_formats["i"]


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(k=0, stages=1), ValueError, "k must be an integer between 1 and 64, not 0"),
    (dict(k=4.0, stages=1), TypeError, "k must be an integer between 1 and 64, not 4.0"),
    (dict(k=4, lanes=17, stages=1), ValueError, "lanes must be an integer between 1 and 16, not 17"),
    (dict(k=4, man_bits=1, stages=1), ValueError, "man_bits must be an integer between 2 and 32, not 1"),
    (dict(k=4, acc_bits=33, stages=1), ValueError,
     "acc_bits must be an integer between 34 (2*man_bits + ceil(log2 k): exact accumulation of k=4 products "
     "of 16-bit mantissas) and 96, not 33"),
    (dict(k=4, acc_bits="34", stages=1), TypeError, "acc_bits must be None or an integer between 34 and 96, not '34'"),
    (dict(k=4, shift_bits=17, stages=1), ValueError, "shift_bits must be an integer between 2 and 16, not 17"),
    (dict(k=4, mode="fp", stages=1), ValueError, "mode must be one of flex, dfp16, not 'fp'"),
    (dict(k=4, mode="dfp16", shift_bits=5, stages=1), ValueError,
     "shift_bits must be at least 6 in dfp16 mode (the derived shift spans -15..19), not 5"),
    (dict(k=4, stages=5), ValueError, "stages must be an integer between 0 and 4, not 5"),
    (dict(k=4, mode="dfp16", stages=6), ValueError, "stages must be an integer between 0 and 5, not 6"),
])
def test_parameter_errors(kwargs, exc, message):
    with pytest.raises(exc) as info:
        FlexDot(**kwargs)
    assert str(info.value) == message


def test_round_shift_parameter_errors():
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer between 4 and 96, not 3$"):
        RoundShift(acc_bits=3)
