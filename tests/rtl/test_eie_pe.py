"""EIEPE in Amaranth simulation against golden.eie: output bits (spmv) and cycles (schedule).

Each run loads one PE's slice of a compressed layer through the load stream,
broadcasts the non-zero activations (optionally with random gaps), and checks
every pop and walker-take cycle against ``golden.eie.schedule``, every issue cycle,
the cycle in which the PE becomes idle, and the read-out values (with random back-pressure)
against ``golden.eie.spmv``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from tensorforge.golden.eie import (
    PIPELINE_STAGES, accumulate, compress, cycles, decompress, schedule, sparse_workload, spmv,
)
from tensorforge.golden.formats import IntFormat
from tensorforge.rtl.eie import EIEPE
from tensorforge.rtl.eie.pe import (
    ERR_PTR_ORDER, ERR_PTR_RANGE, ERR_ROW_RANGE, LOAD_CODEBOOK, LOAD_MATRIX, LOAD_PTR_EVEN, LOAD_PTR_ODD,
)

N_RANDOM = int(os.environ.get("TF_VECTORS", "6"))


def make_pe(layer, depth, acc_width=48, rows=None, readout_stages=3):
    return EIEPE(act_queue_depth=depth, readout_stages=readout_stages, rows=rows or max(1, layer.rows_per_pe), max_cols=layer.n_cols,
                 matrix_depth=max(1, max(len(r) for r in layer.matrix_rows)),
                 codebook_bits=layer.codebook_bits, index_bits=layer.index_bits, row_bits=layer.row_bits,
                 pointer_bits=layer.pointer_bits, weight_format=layer.weight_format, acc_width=acc_width)


def run_pe(dut, layer, pe, a, *, shift, relu, gap_prob=0.0, stall_prob=0.0, seed=0, images=None,
           read_rows=None):
    """Simulate one PE; returns dict with b, pops, issues, idle_cycle, values, error."""
    rng = np.random.default_rng(seed)
    ev, od, mat = images or (layer.ptr_even[pe], layer.ptr_odd[pe], layer.matrix_rows[pe])
    loads = ([(LOAD_CODEBOOK, c, int(w)) for c, w in enumerate(layer.codebook_image)]
             + [(LOAD_PTR_EVEN, k, int(x)) for k, x in enumerate(ev)]
             + [(LOAD_PTR_ODD, k, int(x)) for k, x in enumerate(od)]
             + [(LOAD_MATRIX, k, int(x)) for k, x in enumerate(mat)])
    cols = np.flatnonzero(a)
    n_read = layer.local_rows(pe) if read_rows is None else read_rows
    res = {"b": [], "pops": [], "takes": [], "issues": [], "idle_cycle": None, "values": [], "error": None}

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for target, addr, word in loads:
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.target, target)
            ctx.set(dut.load.payload.addr, addr)
            ctx.set(dut.load.payload.data, word)
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        ctx.set(dut.shift, shift)
        ctx.set(dut.relu, int(relu))
        k = 0
        t = 0
        while True:
            offer = k < len(cols) and rng.random() >= gap_prob
            ctx.set(dut.act.valid, int(offer))
            if offer:
                ctx.set(dut.act.payload.col, int(cols[k]))
                ctx.set(dut.act.payload.value, int(a[cols[k]]))
            if offer and ctx.get(dut.act.ready):
                res["b"].append(t)
                k += 1
            if ctx.get(dut.pop):
                res["pops"].append(t)
            if ctx.get(dut.take):
                res["takes"].append(t)
            if ctx.get(dut.issue):
                res["issues"].append(t)
            if k == len(cols) and not offer and ctx.get(dut.idle):
                res["idle_cycle"] = t
                break
            await ctx.tick()
            t += 1
            if t > 100000:
                raise RuntimeError("PE never became idle")
        ctx.set(dut.act.valid, 0)
        res["error"] = ctx.get(dut.error)
        # read-out with random back-pressure on o and random gaps on rd
        r = 0
        while len(res["values"]) < n_read:
            req = r < n_read and rng.random() >= gap_prob
            ctx.set(dut.rd.valid, int(req))
            ctx.set(dut.rd.payload.row, r if req else 0)
            take = rng.random() >= stall_prob
            ctx.set(dut.o.ready, int(take))
            if ctx.get(dut.o.valid) and take:
                res["values"].append(ctx.get(dut.o.payload.value))
            if req and ctx.get(dut.rd.ready):
                r += 1
            await ctx.tick()
        ctx.set(dut.rd.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return res


def check_against_golden(dut, layer, pe, a, depth, res, *, shift, relu, free_running, acc_width=48):
    cols = np.flatnonzero(a)
    counts = layer.column_entries()[pe, cols][None, :]
    if free_running:                        # broadcasts offered every cycle: the model decides them
        b_model, _, _ = schedule(counts, depth)
        assert res["b"] == b_model.tolist(), "broadcast cycles differ from the model"
    _, q, s = schedule(counts, depth, broadcast_cycle=np.array(res["b"], dtype=np.int64))
    assert res["pops"] == q[0].tolist(), "pop cycles differ from the model"
    assert res["takes"] == s[0].tolist(), "take cycles differ from the model"
    assert len(res["issues"]) == int(counts.sum())
    # issue cycles: s+1 .. s+c for each column
    expect_issue = [int(ss) + 1 + i for ss, c in zip(s[0], counts[0]) for i in range(int(c))]
    assert res["issues"] == expect_issue
    if len(cols):
        done = int(s[0, -1])
        if expect_issue:
            done = max(done, expect_issue[-1] + PIPELINE_STAGES)
        assert res["idle_cycle"] == done + 1, "idle cycle differs from the model"
    want = spmv(layer, a, acc_width=acc_width, out_shift=shift, relu=relu)[pe::layer.n_pe]
    got = np.array(res["values"], dtype=np.int64)
    bad = np.flatnonzero(got != want)
    assert not bad.size, f"{bad.size} value mismatches, first local row {bad[:1]}: got {got[bad[:3]]} want {want[bad[:3]]}"
    assert res["error"] == 0


@pytest.mark.parametrize("case", range(N_RANDOM))
def test_pe_random_layers(case):
    seed = 500 + case
    rng = np.random.default_rng(seed)
    n_pe = int(rng.choice([1, 4]))
    n_rows = int(rng.integers(8, 40)) * n_pe
    n_cols = int(rng.integers(8, 48))
    dw = float(rng.choice([0.05, 0.2, 0.6, 1.0]))
    da = float(rng.choice([0.1, 0.5, 1.0]))
    depth = int(rng.choice([1, 2, 8]))
    W, a = sparse_workload(n_rows, n_cols, dw, da, seed=seed)
    a = np.where(rng.random(n_cols) < 0.3, -a, a)        # signed inputs too
    layer = compress(W, n_pe)
    pe = int(rng.integers(n_pe))
    shift = layer.weight_frac_bits
    relu = bool(rng.integers(2))
    free = case % 2 == 0
    dut = make_pe(layer, depth, readout_stages=int(rng.integers(1, 4)))
    res = run_pe(dut, layer, pe, a, shift=shift, relu=relu, gap_prob=0.0 if free else 0.3,
                 stall_prob=0.3, seed=seed)
    check_against_golden(dut, layer, pe, a, depth, res, shift=shift, relu=relu, free_running=free)


def test_pe_back_to_back_hits_use_the_bypass():
    # one local row and every column non-zero: each entry hits accumulator 0 on consecutive cycles
    rng = np.random.default_rng(3)
    W = rng.standard_normal((1, 24))
    a = rng.integers(-3000, 3000, 24)
    layer = compress(W, 1)
    dut = make_pe(layer, 2)
    res = run_pe(dut, layer, 0, a, shift=layer.weight_frac_bits, relu=False, seed=3)
    check_against_golden(dut, layer, 0, a, 2, res, shift=layer.weight_frac_bits, relu=False, free_running=True)
    # hits two apart (rows 0,1 alternating per column pairs) and padding
    W = np.zeros((40, 30))
    W[0, ::2] = rng.standard_normal(15)
    W[1, 1::2] = rng.standard_normal(15)
    W[39, :] = rng.standard_normal(30)                  # needs padding (gap 37 > 15)
    a = rng.integers(1, 3000, 30)
    layer = compress(W, 1)
    dut = make_pe(layer, 1)
    res = run_pe(dut, layer, 0, a, shift=layer.weight_frac_bits, relu=False, seed=4)
    check_against_golden(dut, layer, 0, a, 1, res, shift=layer.weight_frac_bits, relu=False, free_running=True)


def test_pe_hits_two_cycles_apart_use_the_forwarding_from_w():
    """An entry whose accumulator was last written by the entry *two* cycles ahead (the
    write lands at the end of the cycle in which A1 reads it): a column ending in row r
    followed by a column [s < r, r], or by an empty column (one idle walker cycle) and a
    column starting at r. Also a few random layers of 1..3 rows, where such hits are frequent."""
    W = np.zeros((2, 12))
    W[1, 0] = 1.0                      # col 0: [1]
    W[:, 1] = [0.5, -1.0]              # col 1: [0, 1] -> row 1 two cycles after col 0's
    W[1, 3] = 0.75                     # col 2 empty (bubble), col 3: [1] -> two cycles after col 1's
    W[1, 4], W[1, 6], W[0, 7], W[1, 7] = 0.25, -0.5, 1.0, 0.5
    a = np.arange(1, 13, dtype=np.int64) * 37
    layer = compress(W, 1)
    dut = make_pe(layer, 8)
    res = run_pe(dut, layer, 0, a, shift=layer.weight_frac_bits, relu=False, seed=12)
    check_against_golden(dut, layer, 0, a, 8, res, shift=layer.weight_frac_bits, relu=False, free_running=True)
    for seed in range(3):
        rng = np.random.default_rng(70 + seed)
        n_rows = int(rng.integers(1, 4))
        W = np.where(rng.random((n_rows, 40)) < 0.5, rng.standard_normal((n_rows, 40)), 0.0)
        a = rng.integers(-2000, 2000, 40)
        a[a == 0] = 1
        layer = compress(W, 1)
        dut = make_pe(layer, 8)
        res = run_pe(dut, layer, 0, a, shift=layer.weight_frac_bits, relu=False, seed=seed)
        check_against_golden(dut, layer, 0, a, 8, res, shift=layer.weight_frac_bits, relu=False,
                             free_running=True)


def test_pe_wrapping_accumulator_and_shift_zero():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((8, 40))
    a = rng.integers(-32768, 32768, 40)
    layer = compress(W, 1)
    dut = make_pe(layer, 4, acc_width=33)
    res = run_pe(dut, layer, 0, a, shift=0, relu=False, seed=5)
    check_against_golden(dut, layer, 0, a, 4, res, shift=0, relu=False, free_running=True, acc_width=33)


@pytest.mark.parametrize("shift", [1, 2, 3])
def test_pe_rounding_ties_to_even(shift):
    # small shifts make exact ties (low bits 100..0) frequent: 1 in 2**shift outputs
    rng = np.random.default_rng(40 + shift)
    W = rng.standard_normal((96, 6))
    a = rng.integers(-40, 40, 6)
    layer = compress(W, 1, weight_frac_bits=3)
    dut = make_pe(layer, 2)
    res = run_pe(dut, layer, 0, a, shift=shift, relu=False, seed=shift)
    check_against_golden(dut, layer, 0, a, 2, res, shift=shift, relu=False, free_running=True)
    acc_low = accumulate(layer, a) & ((1 << shift) - 1)
    assert np.count_nonzero(acc_low == 1 << (shift - 1)) >= 3       # the ties really occur


@pytest.mark.parametrize("shift", [0, 1, 2, 5, 13])
def test_pe_readout_rounding_and_saturation_edges(shift):
    """Accumulators of the form X*2**shift + d + Y*2**(shift+1): every X at or next to the
    saturation bounds, every d around the rounding half (ties both ways), Y pushing far
    beyond the bounds. Read out with and without ReLU against spmv (RNE, saturate, ReLU)."""
    half = 1 << max(0, shift - 1)
    ds = sorted({-half - 1, -half, -half + 1, half - 1, half, half + 1} - {0})
    xs = [32767, 32766, -32768, -32767, 12345]
    ys = [32767, -32768]
    cb = np.zeros(16, dtype=np.int64)
    vals = sorted(set(xs) | set(ds) | set(ys))
    cb[1:len(vals) + 1] = vals
    rows = [(x, d, y) for x in [0] + xs for d in [0] + ds for y in [0] + ys]
    W = np.array(rows, dtype=np.float64)
    a = np.array([1 << shift, 1, 1 << (shift + 1)], dtype=np.int64)
    layer = compress(W, 1, codebook=cb, weight_frac_bits=0)
    assert (decompress(layer) == W).all()
    acc = accumulate(layer, a)
    for relu in (False, True):
        dut = make_pe(layer, 4)
        res = run_pe(dut, layer, 0, a, shift=shift, relu=relu, seed=shift, stall_prob=0.2)
        check_against_golden(dut, layer, 0, a, 4, res, shift=shift, relu=relu, free_running=True)
    out = spmv(layer, a, out_shift=shift, relu=False)
    assert (out == 32767).sum() >= 5 and (out == -32768).sum() >= 5       # saturation both ways
    if shift:
        assert ((acc & ((1 << shift) - 1)) == half).sum() >= 4               # exact ties occur


def test_pe_all_zero_activations_and_unwritten_rows():
    W, _ = sparse_workload(16, 16, 0.5, 1.0, seed=6)
    layer = compress(W, 1)
    dut = make_pe(layer, 8)
    a = np.zeros(16, dtype=np.int64)
    res = run_pe(dut, layer, 0, a, shift=layer.weight_frac_bits, relu=True, seed=6)
    assert res["b"] == [] and res["pops"] == [] and res["idle_cycle"] == 0
    assert res["values"] == [0] * 16


def _bad_images(layer, kind):
    ev, od, mat = (x.copy() for x in (layer.ptr_even[0], layer.ptr_odd[0], layer.matrix_rows[0]))
    if kind == "order":
        ev[1] = od[1] + 1                 # p[2] > p[3]
    elif kind == "range":
        ev[-1] = len(mat) * layer.entries_per_row + 1     # p[n_cols] (n_cols even) beyond the matrix
    return ev, od, mat


@pytest.mark.parametrize("kind,flag", [("order", ERR_PTR_ORDER), ("range", ERR_PTR_RANGE),
                                       ("row", ERR_ROW_RANGE)])
def test_pe_flags_malformed_images(kind, flag):
    rng = np.random.default_rng(7)
    W = np.where(rng.random((12, 8)) < 0.6, rng.standard_normal((12, 8)), 0.0)
    W[11, :] = 1.0                        # every column reaches row 11
    layer = compress(W, 1)
    a = np.full(8, 100, dtype=np.int64)
    rows = 8 if kind == "row" else None   # too few accumulators for rows 8..11
    dut = make_pe(layer, 4, rows=rows)
    res = run_pe(dut, layer, 0, a, shift=layer.weight_frac_bits, relu=False, seed=7,
                 images=_bad_images(layer, kind), read_rows=1)
    if kind == "order":
        # raising p[2] also stretches column 1 over column 2's entries, which decode past row 11
        assert res["error"] == ERR_PTR_ORDER | ERR_ROW_RANGE
    else:
        assert res["error"] == flag
    if kind != "row":
        # broadcasting only the malformed column: it is skipped entirely (nothing accumulated)
        bad_col = {"order": 2, "range": 7}[kind]
        only = np.zeros(8, dtype=np.int64)
        only[bad_col] = 100
        dut = make_pe(layer, 4)
        res = run_pe(dut, layer, 0, only, shift=0, relu=False, seed=8, images=_bad_images(layer, kind))
        assert res["error"] == flag
        assert res["values"] == [0] * 12
        assert res["issues"] == [] and len(res["pops"]) == 1 and len(res["takes"]) == 1


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(act_queue_depth=0), ValueError, "act_queue_depth must be an integer between 1 and 64, not 0"),
    (dict(rows=0), ValueError, "rows must be an integer between 1 and 4096, not 0"),
    (dict(row_bits=40), ValueError, "row_bits must be a multiple of codebook_bits \\+ index_bits = 8 holding "
                                    "a power-of-two number of entries, at most 64, not 40"),
    (dict(weight_format=16), TypeError, "weight_format must be an IntFormat"),
    (dict(act_format=IntFormat(8, signed=False)), ValueError,
     "act_format must be a signed IntFormat of 2 to 32 bits, not u8"),
    (dict(acc_width=31), ValueError, "acc_width must be an integer between 32 and 64, not 31"),
    (dict(readout_stages=0), ValueError, "readout_stages must be an integer between 1 and 3, not 0"),
])
def test_pe_rejects_bad_parameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        EIEPE(**kwargs)


@pytest.mark.parametrize("depth", [1, 3])
def test_four_pes_with_shared_broadcast_match_the_array_cycle_model(depth):
    """Four PEs side by side, the testbench acting as the central unit: it broadcasts
    when every PE is ready. Pops, compute cycles and results equal golden.eie.cycles/spmv."""
    seed = 900 + depth
    W, a = sparse_workload(48, 40, 0.2, 0.5, seed=seed)
    layer = compress(W, 4)
    pes = [make_pe(layer, depth, rows=layer.rows_per_pe) for _ in range(4)]
    top = Module()
    for i, pe in enumerate(pes):
        top.submodules[f"pe{i}"] = pe
    cols = np.flatnonzero(a)
    got = {"b": [], "pops": [[] for _ in pes], "takes": [[] for _ in pes], "done": None,
           "values": [[] for _ in pes]}

    async def bench(ctx):
        for pe_idx, pe in enumerate(pes):
            ctx.set(pe.clear, 1)
        await ctx.tick()
        for pe_idx, pe in enumerate(pes):
            ctx.set(pe.clear, 0)
        words = [[(LOAD_CODEBOOK, c, int(w)) for c, w in enumerate(layer.codebook_image)]
                 + [(LOAD_PTR_EVEN, k, int(x)) for k, x in enumerate(layer.ptr_even[p])]
                 + [(LOAD_PTR_ODD, k, int(x)) for k, x in enumerate(layer.ptr_odd[p])]
                 + [(LOAD_MATRIX, k, int(x)) for k, x in enumerate(layer.matrix_rows[p])] for p in range(4)]
        for p, pe in enumerate(pes):
            for target, addr, word in words[p]:
                ctx.set(pe.load.valid, 1)
                ctx.set(pe.load.payload.target, target)
                ctx.set(pe.load.payload.addr, addr)
                ctx.set(pe.load.payload.data, word)
                await ctx.tick()
            ctx.set(pe.load.valid, 0)
        for pe in pes:
            ctx.set(pe.shift, layer.weight_frac_bits)
            ctx.set(pe.relu, 1)
        k, t = 0, 0
        while True:
            go = k < len(cols) and all(ctx.get(pe.act.ready) for pe in pes)
            for pe in pes:
                ctx.set(pe.act.valid, int(go))
                if go:
                    ctx.set(pe.act.payload.col, int(cols[k]))
                    ctx.set(pe.act.payload.value, int(a[cols[k]]))
            if go:
                got["b"].append(t)
                k += 1
            for p, pe in enumerate(pes):
                if ctx.get(pe.pop):
                    got["pops"][p].append(t)
                if ctx.get(pe.take):
                    got["takes"][p].append(t)
            if k == len(cols) and not go and all(ctx.get(pe.idle) for pe in pes):
                got["done"] = t
                break
            await ctx.tick()
            t += 1
        for pe in pes:
            ctx.set(pe.act.valid, 0)
            ctx.set(pe.o.ready, 1)
        for p, pe in enumerate(pes):
            n = layer.local_rows(p)
            for r in range(n + pe.readout_latency):       # full throughput: one row per cycle
                ctx.set(pe.rd.valid, int(r < n))
                ctx.set(pe.rd.payload.row, min(r, n - 1))
                if r >= pe.readout_latency:
                    assert ctx.get(pe.o.valid)
                    got["values"][p].append(ctx.get(pe.o.payload.value))
                await ctx.tick()
            ctx.set(pe.rd.valid, 0)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    model = cycles(layer, a, queue_depth=depth)
    assert got["b"] == model.broadcast_cycle.tolist()
    assert got["pops"] == model.pop_cycle.tolist()
    assert got["takes"] == model.take_cycle.tolist()
    assert got["done"] == model.compute                  # first all-idle cycle == compute cycles
    want = spmv(layer, a)
    for p in range(4):
        assert got["values"][p] == want[p::4].tolist(), f"PE {p}"
