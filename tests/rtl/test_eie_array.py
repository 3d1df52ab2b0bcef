"""EIEArray in Amaranth simulation against golden.eie: results (spmv), cycles (cycles()), flags.

Every run goes through the public streams only: the load stream (with random
valid gaps), the start handshake, and the result stream (with random
back-pressure). Checked: every result bit against ``golden.eie.spmv``, the
measured start->done cycles (counted by the testbench *and* the ``cycles``
output) against ``golden.eie.cycles(...).total``, the broadcast cycles against
the model's, error flags for malformed images and bad load commands.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from tensorforge.golden.eie import compress, cycles, run_layers, sparse_workload, spmv
from tensorforge.rtl.eie import EIEArray, LeadingNonZero
from tensorforge.rtl.eie.array import (
    ERR_LOAD, ERR_PTR_ORDER, ERR_PTR_RANGE, ERR_ROW_RANGE, TARGET_ACT, TARGET_CLEAR, TARGET_CODEBOOK,
    TARGET_MATRIX, TARGET_PTR_EVEN, TARGET_PTR_ODD,
)

N_RANDOM = int(os.environ.get("TF_VECTORS", "2"))


def make_array(n_pe, depth, *, rows=16, max_cols=64, matrix_depth=64, **kw):
    return EIEArray(n_pe=n_pe, queue_depth=depth, rows=rows, max_cols=max_cols, matrix_depth=matrix_depth, **kw)


def layer_commands(layer, a, *, images=None):
    """Load commands (target, pe, addr, data) for one layer and its input."""
    cmds = [(TARGET_CLEAR, 0, 0, 0)]
    cmds += [(TARGET_CODEBOOK, 0, c, int(w)) for c, w in enumerate(layer.codebook_image)]
    for pe in range(layer.n_pe):
        ev, od, mat = (images[pe] if images and pe in images
                       else (layer.ptr_even[pe], layer.ptr_odd[pe], layer.matrix_rows[pe]))
        cmds += [(TARGET_PTR_EVEN, pe, k, int(x)) for k, x in enumerate(ev)]
        cmds += [(TARGET_PTR_ODD, pe, k, int(x)) for k, x in enumerate(od)]
        cmds += [(TARGET_MATRIX, pe, k, int(x)) for k, x in enumerate(mat)]
    cmds += [(TARGET_ACT, 0, j, int(v) & 0xFFFF) for j, v in enumerate(a) if v != 0]
    return cmds


def simulate(dut, jobs, *, gap_prob=0.0, stall_prob=0.0, seed=0):
    """Run jobs in order; a job is (commands, n_out, shift, relu) or a callable(prev_results) giving one.

    Returns one dict per job: values, cycles (testbench count), cycles_port, error, broadcasts (cycles
    relative to the accepted start).
    """
    rng = np.random.default_rng(seed)
    results = []

    async def bench(ctx):
        for job in jobs:
            if callable(job):
                job = job(results)
            cmds, n_out, shift, relu, *chk = job
            check, n_cols = chk if chk else (0, 0)
            res = {"values": [], "broadcasts": []}
            for cmd in cmds:                                      # load with random valid gaps
                while rng.random() < gap_prob:
                    ctx.set(dut.load.valid, 0)
                    await ctx.tick()
                ctx.set(dut.load.valid, 1)
                for name, v in zip(("target", "pe", "addr", "data"), cmd):
                    ctx.set(getattr(dut.load.payload, name), v)
                while not ctx.get(dut.load.ready):
                    await ctx.tick()
                await ctx.tick()
            ctx.set(dut.load.valid, 0)
            ctx.set(dut.start.valid, 1)
            ctx.set(dut.start.payload.n_out, n_out)
            ctx.set(dut.start.payload.shift, shift)
            ctx.set(dut.start.payload.relu, int(relu))
            ctx.set(dut.start.payload.check, check)
            ctx.set(dut.start.payload.n_cols, n_cols)
            while not ctx.get(dut.start.ready):
                await ctx.tick()
            await ctx.tick()                                       # start accepted in cycle 0
            ctx.set(dut.start.valid, 0)
            t = 1
            while not ctx.get(dut.done):
                if ctx.get(dut.broadcast):
                    res["broadcasts"].append(t)
                await ctx.tick()
                t += 1
                if t > 200000:
                    raise RuntimeError("array never finished")
            res["cycles"] = t
            res["cycles_port"] = ctx.get(dut.cycles)
            res["error"] = ctx.get(dut.error)
            while len(res["values"]) < n_out:                    # read-out with random back-pressure
                take = rng.random() >= stall_prob
                ctx.set(dut.o.ready, int(take))
                if take and ctx.get(dut.o.valid):
                    res["values"].append(ctx.get(dut.o.payload.value))
                await ctx.tick()
            ctx.set(dut.o.ready, 0)
            await ctx.tick()
            res["busy_after"] = ctx.get(dut.busy)
            results.append(res)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def check_run(res, layer, a, depth, *, relu=True, msg=""):
    expect = spmv(layer, a, relu=relu)
    got = np.array(res["values"], dtype=np.int64)
    bad = np.flatnonzero(got != expect)
    assert bad.size == 0, f"{msg}: {bad.size} mismatches, first rows {bad[:5]}: {got[bad[:5]]} vs {expect[bad[:5]]}"
    rep = cycles(layer, a, queue_depth=depth)
    assert res["cycles"] == rep.total, f"{msg}: measured {res['cycles']} cycles, model {rep.total}"
    assert res["cycles_port"] == rep.total, msg
    assert res["broadcasts"] == (rep.broadcast_cycle + 2).tolist(), f"{msg}: broadcast cycles differ"
    assert res["error"] == 0, msg
    assert res["busy_after"] == 0, msg


# ---------------------------------------------------------------------------------------------
# leading-non-zero tree
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width,fanin", [(1, 4), (5, 2), (16, 4), (37, 4), (64, 3)])
def test_leading_nonzero_tree(width, fanin):
    dut = LeadingNonZero(width=width, fanin=fanin)
    rng = np.random.default_rng(width * 31 + fanin)
    patterns = [0, (1 << width) - 1] + [1 << i for i in range(width)]
    patterns += [int(rng.integers(0, 1 << min(width, 62))) << int(rng.integers(0, max(1, width - 61)))
                 for _ in range(40)]

    async def bench(ctx):
        for pat in patterns:
            pat &= (1 << width) - 1
            ctx.set(dut.bits, pat)
            await ctx.delay(1e-9)
            if pat == 0:
                assert ctx.get(dut.valid) == 0
            else:
                low = (pat & -pat).bit_length() - 1
                assert (ctx.get(dut.valid), ctx.get(dut.index)) == (1, low), f"pattern {pat:#x}"

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_leading_nonzero_params():
    with pytest.raises(ValueError, match="width must be an integer between 1 and 65536, not 0"):
        LeadingNonZero(width=0)
    with pytest.raises(ValueError, match="fanin must be an integer between 2 and 16, not 1"):
        LeadingNonZero(width=8, fanin=1)
    lnz = LeadingNonZero(width=64, fanin=4)
    assert lnz.levels == 3
    Fragment.get(lnz, None)          # elaborates (and so counts as used: no UnusedElaboratable warning)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_array_params():
    with pytest.raises(ValueError, match="n_pe must be an integer between 1 and 256, not 0"):
        EIEArray(n_pe=0)
    with pytest.raises(ValueError, match="queue_depth must be an integer between 1 and 64, not 65"):
        EIEArray(n_pe=4, queue_depth=65)
    with pytest.raises(ValueError, match="lnzd_fanin must be an integer between 2 and 16, not 1"):
        EIEArray(n_pe=4, lnzd_fanin=1)
    with pytest.raises(ValueError, match="rows must be"):
        EIEArray(n_pe=4, rows=0)
    arr = EIEArray(n_pe=4, rows=4, max_cols=16, matrix_depth=4)
    Fragment.get(arr, None)
    assert (arr.start_latency, arr.finish_latency, arr.readout_latency) == (2, 1, 3)
    assert set(arr.field_formats) == {"load", "start", "o"}


# ---------------------------------------------------------------------------------------------
# random layers: bits, cycles, back-pressure
# ---------------------------------------------------------------------------------------------
CASES = [  # n_pe, depth, rows, cols, dw, da
    (2, 1, 16, 16, 0.5, 0.5),
    (4, 2, 32, 32, 0.2, 0.4),
    (4, 8, 64, 64, 0.09, 0.35),
    (3, 4, 30, 40, 1.0, 1.0),
    (4, 1, 64, 48, 0.05, 0.1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "pe{}_d{}_{}x{}_w{}_a{}".format(*c))
def test_random_layers(case):
    n_pe, depth, n_rows, n_cols, dw, da = case
    for i in range(N_RANDOM):
        seed = 1000 * i + n_rows + n_cols + depth
        W, a = sparse_workload(n_rows, n_cols, dw, da, seed=seed)
        layer = compress(W, n_pe)
        dut = make_array(n_pe, depth, rows=-(-n_rows // n_pe))
        relu = bool(i % 2 == 0)
        # activations of both signs exercise ReLU and saturation
        if not relu:
            a = np.where(np.arange(n_cols) % 3 == 0, -a, a)
        res = simulate(dut, [(layer_commands(layer, a), n_rows, layer.weight_frac_bits, relu)],
                       gap_prob=0.3 * (i % 2), stall_prob=0.4 * ((i + 1) % 2), seed=seed)
        check_run(res[0], layer, a, depth, relu=relu, msg=f"case {case} seed {seed}")


def test_zero_activations_and_extra_rows():
    W, a = sparse_workload(16, 16, 0.5, 0.0, seed=3)
    layer = compress(W, 2)
    dut = make_array(2, 4, rows=10)
    res = simulate(dut, [(layer_commands(layer, a), 20, layer.weight_frac_bits, True)])[0]
    assert res["values"] == [0] * 20
    assert res["cycles"] == cycles(layer, a, queue_depth=4).total == 3


def test_two_chained_layers():
    """Layer 1's read-out becomes layer 2's input (host-driven swap), then both are checked."""
    W1, a = sparse_workload(48, 32, 0.3, 0.5, seed=11)
    W2, _ = sparse_workload(24, 48, 0.3, 0.5, seed=12)
    l1, l2 = compress(W1, 4), compress(W2, 4)
    expect = run_layers([l1, l2], a)
    dut = make_array(4, 4, rows=12)
    jobs = [(layer_commands(l1, a), 48, l1.weight_frac_bits, True),
            lambda prev: (layer_commands(l2, np.array(prev[0]["values"], dtype=np.int64)), 24,
                          l2.weight_frac_bits, True)]
    r1, r2 = simulate(dut, jobs, gap_prob=0.2, stall_prob=0.3, seed=5)
    assert r1["values"] == expect[0].tolist()
    assert r2["values"] == expect[1].tolist()
    assert r1["cycles"] == cycles(l1, a, queue_depth=4).total
    assert r2["cycles"] == cycles(l2, expect[0], queue_depth=4).total
    assert r1["error"] == r2["error"] == 0


# ---------------------------------------------------------------------------------------------
# malformed images and bad commands
# ---------------------------------------------------------------------------------------------
def _layer():
    W, a = sparse_workload(16, 16, 0.6, 1.0, seed=21)
    return compress(W, 2), a


def _run_images(layer, a, images, extra=(), check=0):
    dut = make_array(2, 4, rows=8, max_cols=20, matrix_depth=12)
    cmds = layer_commands(layer, a, images=images) + list(extra)
    res = simulate(dut, [(cmds, 16, layer.weight_frac_bits, True, check, layer.n_cols)])[0]
    if check and res["error"]:
        assert res["values"] == [0] * 16, "a checked malformed layer must not be executed"
        # the check pass broadcasts every column once (none with ERR_LOAD), the run nothing
        assert len(res["broadcasts"]) == (0 if res["error"] & ERR_LOAD else layer.n_cols)
    return res


def test_checked_run_cycles():
    """check=1 on a well-formed layer: same results, cycles = check pass + 2 + run."""
    W, a = sparse_workload(32, 24, 0.3, 0.4, seed=31)
    layer = compress(W, 3)
    dut = make_array(3, 2, rows=11, max_cols=32, matrix_depth=16)
    res = simulate(dut, [(layer_commands(layer, a), 32, layer.weight_frac_bits, True, 1, 24)],
                   stall_prob=0.3, seed=2)[0]
    assert res["values"] == spmv(layer, a).tolist()
    chk = cycles(layer, np.ones(24, dtype=np.int64), queue_depth=2)
    run = cycles(layer, a, queue_depth=2)
    assert res["cycles"] == res["cycles_port"] == chk.compute + 2 + run.total
    assert len(res["broadcasts"]) == 24 + run.broadcasts and res["error"] == 0


@pytest.mark.parametrize("check", [0, 1])
def test_pointer_decreasing_flag(check):
    layer, a = _layer()
    ev = layer.ptr_even[1].copy()
    ev[4] = layer.ptr_odd[1][4] + 1                          # p[8] > p[9]: column 8 decreasing
    res = _run_images(layer, a, {1: (ev, layer.ptr_odd[1], layer.matrix_rows[1])}, check=check)
    assert res["error"] & ERR_PTR_ORDER


@pytest.mark.parametrize("check", [0, 1])
def test_pointer_range_flag(check):
    layer, a = _layer()
    od = layer.ptr_odd[0].copy()
    od[-1] = 12 * 8 + 1                                      # beyond matrix_depth * entries_per_row
    res = _run_images(layer, a, {0: (layer.ptr_even[0], od, layer.matrix_rows[0])}, check=check)
    assert res["error"] & ERR_PTR_RANGE


@pytest.mark.parametrize("check", [0, 1])
def test_row_range_flag(check):
    layer, a = _layer()
    mat = layer.matrix_rows[0].copy()
    mat[0] |= np.uint64(0xF0)                                # entry 0: z = 15 -> local row >= 8
    res = _run_images(layer, a, {0: (layer.ptr_even[0], layer.ptr_odd[0], mat)}, check=check)
    assert res["error"] & ERR_ROW_RANGE
    assert res["error"] & (ERR_PTR_ORDER | ERR_PTR_RANGE) == 0


@pytest.mark.parametrize("bad,check", [((TARGET_MATRIX, 0, 12, 0), 0), ((TARGET_MATRIX, 0, 12, 0), 1),
                                       ((TARGET_ACT, 0, 20, 5), 0), ((TARGET_CODEBOOK, 0, 16, 1), 1),
                                       ((6, 0, 0, 0), 0), ((TARGET_PTR_ODD, 0, 10, 0), 1)])
def test_bad_load_command_blocks_start(bad, check):
    layer, a = _layer()
    res = _run_images(layer, a, None, extra=[bad], check=check)
    assert res["error"] == ERR_LOAD
    assert res["values"] == [0] * 16                          # nothing executed
    assert res["cycles"] == 3 and res["broadcasts"] == []


def test_clear_resets_load_error_and_valid_run_follows():
    layer, a = _layer()
    dut = make_array(2, 4, rows=8, max_cols=20, matrix_depth=12)
    jobs = [([(TARGET_MATRIX, 0, 12, 0)], 0, 0, True),
            (layer_commands(layer, a), 16, layer.weight_frac_bits, True)]
    r1, r2 = simulate(dut, jobs)
    assert r1["error"] == ERR_LOAD and r1["values"] == []
    check_run(r2, layer, a, 4, msg="after clear")


def test_load_and_start_refused_while_busy():
    """While a run is in progress (compute and read-out) load.ready and start.ready are low;
    a load offered meanwhile is taken only afterwards and does not disturb the run."""
    W, a = sparse_workload(16, 16, 0.5, 0.8, seed=8)
    layer = compress(W, 2)
    dut = make_array(2, 2, rows=8, max_cols=16, matrix_depth=16)
    cmds = layer_commands(layer, a)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.load.valid, 1)
        for cmd in cmds:
            for name, v in zip(("target", "pe", "addr", "data"), cmd):
                ctx.set(getattr(dut.load.payload, name), v)
            await ctx.tick()
        # start, and keep offering a (harmful) activation write the whole time
        ctx.set(dut.load.payload.target, TARGET_ACT)
        ctx.set(dut.load.payload.addr, 0)
        ctx.set(dut.load.payload.data, 0x7FFF)
        ctx.set(dut.start.valid, 1)
        ctx.set(dut.start.payload.n_out, 16)
        ctx.set(dut.start.payload.shift, layer.weight_frac_bits)
        ctx.set(dut.start.payload.relu, 1)
        ctx.set(dut.load.valid, 0)
        await ctx.tick()
        ctx.set(dut.start.valid, 0)
        ctx.set(dut.load.valid, 1)
        ready_seen, start_ready_seen, vals = 0, 0, []
        ctx.set(dut.o.ready, 1)
        while len(vals) < 16:
            ready_seen += ctx.get(dut.load.ready)
            start_ready_seen += ctx.get(dut.start.ready)
            if ctx.get(dut.o.valid):
                vals.append(ctx.get(dut.o.payload.value))
            await ctx.tick()
        seen.update(vals=vals, ready=ready_seen, start_ready=start_ready_seen, after=ctx.get(dut.load.ready))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["ready"] == 0 and seen["start_ready"] == 0
    assert seen["vals"] == spmv(layer, a).tolist()
    assert seen["after"] == 1
