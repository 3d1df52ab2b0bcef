"""MMA (m x n x k block per cycle) in the Amaranth simulator against tensorforge.golden.dot.mma,
bit for bit, with random gaps and back-pressure; plus its payload layout and validation."""

from __future__ import annotations

import numpy as np
import pytest

from amaranth.sim import Simulator

from tensorforge.golden import dot as gd
from tensorforge.golden.formats import BF16, FP8_E4M3, FP16, FP32
from tensorforge.rtl.tensor import MMA

from stream_harness import fields_of
from test_tensor_support import check, run_stream, vector_count

CASES = [
    # m, n, k, in_format, acc_format, semantics, stages, vectors
    (2, 2, 4, FP16, FP32, "volta", 3, 80),
    (1, 2, 8, BF16, FP32, "volta", 9, 60),          # k = 8 > L = 4: two chained blocks per lane
    (2, 1, 2, FP8_E4M3, FP32, "exact", 2, 30),
    (1, 2, 2, FP16, FP32, "chain", 4, 20),
]


def _ids(case):
    m, n, k, fi, fa, sem, stages, _ = case
    return f"m{m}n{n}k{k}-{fi}-{fa}-{sem}-s{stages}"


def mma_fields(A, B, C) -> dict:
    """(v, m, k), (v, k, n), (v, m, n) arrays -> MMA input field dict."""
    _, m, k = A.shape
    n = B.shape[2]
    out = {f"a[{i}][{kk}]": A[:, i, kk] for i in range(m) for kk in range(k)}
    out.update({f"b[{kk}][{j}]": B[:, kk, j] for kk in range(k) for j in range(n)})
    out.update({f"c[{i}][{j}]": C[:, i, j] for i in range(m) for j in range(n)})
    return out


def random_mma_operands(rng, v, m, n, k, fi, fa):
    """A stresses rows like random_dot_operands; B and C are drawn from the same recipes."""
    a, b, c = gd.random_dot_operands(rng, v * m * n, k, fi, fa, specials=0.05)
    A = a.reshape(v, m, n, k)[:, :, 0, :]
    B = np.swapaxes(b.reshape(v, m, n, k)[:, 0, :, :], 1, 2)
    C = c.reshape(v, m, n)
    return A, B, C


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_mma_matches_golden(case):
    m, n, k, fi, fa, sem, stages, count = case
    seed = sum(map(ord, _ids(case)))
    rng = np.random.default_rng(seed)
    v = vector_count(count)
    A, B, C = random_mma_operands(rng, v, m, n, k, fi, fa)
    core = MMA(m=m, n=n, k=k, in_format=fi, acc_format=fa, semantics=sem, stages=stages)
    assert core.latency == stages and core.initiation_interval == 1
    inputs = mma_fields(A, B, C)
    got = run_stream(core, inputs, seed=seed)
    D, flags = gd.mma(A, B, C, in_format=fi, acc_format=fa, semantics=sem)
    expected = {f"d[{i}][{j}]": D[:, i, j] for i in range(m) for j in range(n)}
    if core.has_flags:
        expected.update({f"flags[{i}][{j}]": flags[:, i, j] for i in range(m) for j in range(n)})
    check(got, expected, inputs, seed=seed, label=_ids(case))


@pytest.mark.parametrize("stages,p_valid,p_ready", [(1, 1.0, 0.1), (3, 0.9, 0.3), (7, 1.0, 0.5), (7, 0.5, 0.95)])
def test_output_fifo_under_back_pressure(stages, p_valid, p_ready):
    # the lanes never stall: every result that meets a stalled output is queued in the
    # output FIFO (stages + 1 blocks) and leaves in order, bit-exact, with a stable payload
    seed = 31 * stages + int(100 * p_ready)
    rng = np.random.default_rng(seed)
    A, B, C = random_mma_operands(rng, vector_count(60), 2, 2, 4, FP16, FP32)
    core = MMA(m=2, n=2, k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=stages)
    inputs = mma_fields(A, B, C)
    got = run_stream(core, inputs, seed=seed, p_valid=p_valid, p_ready=p_ready)
    D = gd.mma(A, B, C, in_format=FP16, acc_format=FP32, semantics="volta")[0]
    check(got, {f"d[{i}][{j}]": D[:, i, j] for i in range(2) for j in range(2)}, inputs, seed=seed,
          label=f"back-pressure s{stages}")


@pytest.mark.parametrize("stages", [1, 3, 7])
def test_full_throughput_latency_and_credit_limit(stages):
    core = MMA(m=1, n=2, k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=stages)
    seen = {}

    async def bench(ctx):
        ctx.set(core.i.valid, 1)
        ctx.set(core.o.ready, 1)
        accepted, outputs, first = 0, 0, None
        for cycle in range(40):                      # o.ready high: one block per cycle
            accepted += ctx.get(core.i.ready)
            if ctx.get(core.o.valid):
                outputs += 1
                first = cycle if first is None else first
            await ctx.tick()
        seen.update(accepted=accepted, outputs=outputs, first=first)
        ctx.set(core.o.ready, 0)                      # stalled: at most stages + 1 blocks queue up
        ready = []
        for _ in range(3 * stages + 6):
            ready.append(ctx.get(core.i.ready))
            await ctx.tick()
        seen["held"] = ready

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["accepted"] == 40 and seen["first"] == stages and seen["outputs"] == 40 - stages
    # the stall cuts off new input exactly when stages + 1 blocks are in flight or queued
    # (at the stall, `stages` blocks are in the lanes; one more is accepted in the first cycle)
    assert seen["held"][:1] == [1] and not any(seen["held"][1:])


def test_payload_layout_and_formats():
    core = MMA(m=2, n=3, k=4, in_format=FP16, acc_format=FP32, semantics="exact", stages=1)
    core._MustUse__silence = True
    names_in = [f[0] for f in fields_of(core.i)]
    names_out = [f[0] for f in fields_of(core.o)]
    assert names_in[:5] == ["a[0][0]", "a[0][1]", "a[0][2]", "a[0][3]", "a[1][0]"]
    assert "b[3][2]" in names_in and "c[1][2]" in names_in and len(names_in) == 8 + 12 + 6
    assert names_out[:3] == ["d[0][0]", "d[0][1]", "d[0][2]"] and "flags[1][2]" in names_out
    assert core.field_formats == {"i": {"a": FP16, "b": FP16, "c": FP32}, "o": {"d": FP32, "flags": None}}
    assert core.max_stages == 7


@pytest.mark.parametrize("override,exc,message", [
    (dict(m=0), ValueError, "m must be an integer between 1 and 16, not 0"),
    (dict(n=17), ValueError, "n must be an integer between 1 and 16, not 17"),
    (dict(k=0), ValueError, "k must be an integer between 1 and 64, not 0"),
    (dict(stages=99), ValueError, "stages must be an integer between 0 and 7 for k=4 volta semantics, not 99"),
    (dict(in_format=FP32), ValueError, "in_format must be one of e5m10, e8m7, tf32, e4m3fn, e5m2, not e8m23"),
])
def test_bad_parameters_are_rejected(override, exc, message):
    params = dict(m=4, n=4, k=4, in_format=FP16, acc_format=FP32, semantics="volta", stages=3)
    params.update(override)
    with pytest.raises(exc, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        MMA(**params)
