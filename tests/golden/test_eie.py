"""Golden EIE model: compression, bit-exact spmv and the cycle model (tensorforge.golden.eie).

Oracles are written independently of the module: a loop-based CSC encoder and
packer, nearest-codebook quantization by brute force, a dense matrix-vector
product in Python integers with Fraction rounding, and a cycle-by-cycle
simulator with explicit queues for the closed-form schedule.
"""

from __future__ import annotations

import os
from collections import deque
from fractions import Fraction

import numpy as np
import pytest

from tensorforge.golden import eie
from tensorforge.golden.eie import (
    accumulate, compress, cycles, decompress, entry_counts, round_shift_rne, run_layers,
    schedule, sparse_workload, spmv, to_fixed,
)
from tensorforge.golden.formats import INT16, IntFormat

N_RANDOM = int(os.environ.get("TF_VECTORS", "20"))


# ----------------------------------------------------------------------------------------
# independent oracles
# ----------------------------------------------------------------------------------------
def naive_encode(codes_local_col, index_bits):
    """(v, z) of one PE column, by the textual rule: count zeros, emit padding when the count hits the max."""
    M = (1 << index_bits) - 1
    v, z = [], []
    zeros = 0
    pads = 0                            # padding entries owed, emitted only if a non-zero follows
    for code in codes_local_col:
        if code == 0:
            if zeros == M:              # the (M+1)-th zero: it becomes a padding entry of its own
                pads += 1
                zeros = 0
            else:
                zeros += 1
        else:
            v += [0] * pads + [int(code)]
            z += [M] * pads + [zeros]
            zeros = pads = 0
    return v, z


def naive_csc(codes, n_pe, index_bits):
    out = []
    for pe in range(n_pe):
        vs, zs, p = [], [], [0]
        for j in range(codes.shape[1]):
            v, z = naive_encode([int(c) for c in codes[pe::n_pe, j]], index_bits)
            vs += v
            zs += z
            p.append(len(vs))
        out.append((vs, zs, p))
    return out


def naive_rows(v, z, codebook_bits, index_bits, row_bits):
    eb = codebook_bits + index_bits
    epr = row_bits // eb
    rows = []
    for k in range(0, len(v), epr):
        word = 0
        for lane, (vv, zz) in enumerate(zip(v[k:k + epr], z[k:k + epr])):
            word |= (vv | (zz << codebook_bits)) << (lane * eb)
        rows.append(word)
    return rows


def nearest_codes(W, codebook, frac_bits):
    """Brute force: each non-zero weight -> code 1.. of the nearest codebook value (first on ties)."""
    vals = [Fraction(int(c), 2 ** frac_bits) for c in codebook[1:]]
    codes = np.zeros(W.shape, dtype=np.int64)
    for (i, j), w in np.ndenumerate(W):
        if w != 0:
            wf = Fraction(float(w))
            d = [abs(wf - c) for c in vals]
            codes[i, j] = 1 + d.index(min(d))
    return codes


def dense_reference(Wq, a, acc_width, shift, out_fmt, relu):
    out = []
    for i in range(Wq.shape[0]):
        acc = sum(int(Wq[i, j]) * int(a[j]) for j in range(Wq.shape[1]))
        acc = ((acc + (1 << (acc_width - 1))) % (1 << acc_width)) - (1 << (acc_width - 1))
        r = round(Fraction(acc, 1 << shift))          # Python rounds half to even
        r = min(max(r, out_fmt.min), out_fmt.max)
        out.append(max(r, 0) if relu else r)
    return np.array(out, dtype=np.int64)


def simulate_cycles(counts, depth, slots=4, prefetch=3, stages=6):
    """Cycle-by-cycle simulation of the array rules (module docstring), explicit queues:
    activation queues, the in-flight pointer reads and descriptor FIFO of each PE (a
    slot counter read at the start of the cycle) and the walker."""
    n_pe, K = counts.shape
    queues = [deque() for _ in range(n_pe)]        # (k, cycle it can be popped from)
    descs = [deque() for _ in range(n_pe)]         # (k, cycle it can be taken from)
    used = [0] * n_pe                              # popped, not yet taken
    remaining = [0] * n_pe                         # entries the walker still has to issue
    last = [-1] * n_pe
    b = []
    q = [[None] * K for _ in range(n_pe)]
    s = [[None] * K for _ in range(n_pe)]
    busy = [0] * n_pe
    t = 0
    nxt = 0
    while True:
        push = nxt < K and all(len(qq) < depth for qq in queues)
        for p in range(n_pe):
            used_at_start = used[p]
            free = remaining[p] <= 1               # idle, or issuing its last entry
            if remaining[p] > 0:
                remaining[p] -= 1
                busy[p] += 1
                last[p] = max(last[p], t + stages)     # R, E, M, A1, A2, W
            if free and descs[p] and descs[p][0][1] <= t:
                k, _ = descs[p].popleft()
                s[p][k] = t
                remaining[p] = counts[p, k]            # issued from t+1 on
                used[p] -= 1
                last[p] = max(last[p], t)
            if queues[p] and queues[p][0][1] <= t and used_at_start < slots:
                k, _ = queues[p].popleft()
                q[p][k] = t
                descs[p].append((k, t + prefetch))
                used[p] += 1
        if push:
            b.append(t)
            for qq in queues:
                qq.append((nxt, t + 1))
            nxt += 1
        t += 1
        if nxt == K and not any(queues) and not any(descs) and not any(remaining):
            break
        if t > 10 ** 6:
            raise RuntimeError("simulation did not finish")
    compute = max(last) + 1 if K else 0
    return (np.array(b), np.array(q, dtype=np.int64).reshape(n_pe, K),
            np.array(s, dtype=np.int64).reshape(n_pe, K), np.array(busy), compute)


# ----------------------------------------------------------------------------------------
# encoding
# ----------------------------------------------------------------------------------------
def test_paper_example_exact():
    """NUMERICS.md / paper: one PE, v = [1, 2, 0, 3], z = [2, 0, 15, 2].

    The printed column reads "[0,0,1,2,0 (x15 more zeros...),3]"; for that encoding the
    gap between the 2 and the 3 must be 18 zeros, not 15: the padding entry (v=0, z=15)
    stands for 15 skipped zeros *plus its own zero slot* (16 rows), and z=2 then skips two
    more. So the column is 2 zeros, 1, 2, 18 zeros, 3 (length 23; the 3 at row 22).
    A gap of exactly 15 zeros would need no padding (z=15 fits in 4 bits).
    Codes equal the values here (codebook[c] = c, 0 fraction bits), as in the paper's figure.
    """
    col = np.zeros(23)
    col[[2, 3, 22]] = [1, 2, 3]
    layer = compress(col[:, None], 1, codebook=np.arange(16), weight_frac_bits=0)
    assert layer.v[0].tolist() == [1, 2, 0, 3]
    assert layer.z[0].tolist() == [2, 0, 15, 2]
    assert layer.p[0].tolist() == [0, 4]
    # one 64-bit row, lane 0 in the low byte, entry byte = v | z << 4
    assert layer.matrix_rows[0].tolist() == [0x23F00221]
    assert layer.ptr_even[0].tolist() == [0] and layer.ptr_odd[0].tolist() == [4]
    assert decompress(layer)[:, 0].tolist() == col.astype(int).tolist()
    # the literal 15-zero reading encodes without padding
    col15 = np.zeros(20)
    col15[[2, 3, 19]] = [1, 2, 3]
    layer15 = compress(col15[:, None], 1, codebook=np.arange(16), weight_frac_bits=0)
    assert layer15.v[0].tolist() == [1, 2, 3] and layer15.z[0].tolist() == [2, 0, 15]


@pytest.mark.parametrize("gap,expect", [
    (0, ([5], [0])), (15, ([5], [15])), (16, ([0, 5], [15, 0])), (17, ([0, 5], [15, 1])),
    (31, ([0, 5], [15, 15])), (32, ([0, 0, 5], [15, 15, 0])), (50, ([0, 0, 0, 5], [15, 15, 15, 2])),
])
def test_padding_for_long_gaps(gap, expect):
    col = np.zeros(gap + 1)
    col[gap] = 5
    layer = compress(col[:, None], 1, codebook=np.arange(16), weight_frac_bits=0)
    assert (layer.v[0].tolist(), layer.z[0].tolist()) == expect
    assert decompress(layer)[:, 0].tolist() == col.astype(int).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_csc_and_images_match_naive_encoder(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 90)), int(rng.integers(1, 40))
    n_pe = int(rng.choice([1, 2, 3, 4, 8, 64]))
    cbits, ibits = [(4, 4), (2, 2), (3, 5), (4, 4), (1, 3), (4, 4)][seed]
    row_bits = {(4, 4): 64, (2, 2): 16, (3, 5): 32, (1, 3): 32}[(cbits, ibits)]
    density = float(rng.choice([0.02, 0.1, 0.5, 1.0]))
    W = np.where(rng.random((n_rows, n_cols)) < density, rng.standard_normal((n_rows, n_cols)), 0.0)
    layer = compress(W, n_pe, codebook_bits=cbits, index_bits=ibits, row_bits=row_bits)
    codes = nearest_codes(W, layer.codebook, layer.weight_frac_bits)
    for pe, (v, z, p) in enumerate(naive_csc(codes, n_pe, ibits)):
        msg = f"seed={seed} pe={pe}"
        assert layer.v[pe].tolist() == v, msg
        assert layer.z[pe].tolist() == z, msg
        assert layer.p[pe].tolist() == p, msg
        assert layer.ptr_even[pe].tolist() == p[0::2] and layer.ptr_odd[pe].tolist() == p[1::2], msg
        assert [int(r) for r in layer.matrix_rows[pe]] == naive_rows(v, z, cbits, ibits, row_bits), msg
    assert np.array_equal(entry_counts(W != 0, n_pe, ibits), layer.column_entries())


def test_pointer_banks_give_both_pointers():
    W, _ = sparse_workload(40, 33, 0.3, 1.0, seed=3)
    layer = compress(W, 4)
    for pe in range(4):
        ev, od, p = layer.ptr_even[pe], layer.ptr_odd[pe], layer.p[pe]
        assert len(ev) == (33 + 2) // 2 and len(od) == (33 + 1) // 2
        for j in range(33):
            e, o = int(ev[(j + 1) >> 1]), int(od[j >> 1])
            start, end = (e, o) if j % 2 == 0 else (o, e)
            assert (start, end) == (p[j], p[j + 1])


# ----------------------------------------------------------------------------------------
# weight sharing and round trip
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_roundtrip_equals_nearest_codebook_quantization(seed):
    rng = np.random.default_rng(100 + seed)
    W = np.where(rng.random((37, 29)) < 0.4, rng.standard_normal((37, 29)) * 0.3, 0.0)
    n_pe = [1, 2, 4, 5][seed]
    layer = compress(W, n_pe)
    assert layer.codebook[0] == 0 and len(layer.codebook) == 16
    assert layer.codebook.min() >= -32768 and layer.codebook.max() <= 32767
    codes = nearest_codes(W, layer.codebook, layer.weight_frac_bits)
    assert np.array_equal(decompress(layer), layer.codebook[codes])
    assert np.all(decompress(layer)[W == 0] == 0)
    assert layer.nnz == np.count_nonzero(W)
    # deterministic
    again = compress(W, n_pe)
    assert np.array_equal(again.codebook, layer.codebook)
    assert all(np.array_equal(x, y) for x, y in zip(again.matrix_rows, layer.matrix_rows))


def test_kmeans_recovers_fifteen_exact_values():
    # 15 unevenly spaced levels (multiples of 1/64): the linear initialisation is off by up to
    # a quarter spacing, so Lloyd has to move the centroids onto the levels.
    rng = np.random.default_rng(7)
    levels = (np.arange(-7, 8) * 4 + np.array([1, -1, 0, 1, 1, -1, 0, 0, 1, -1, -1, 0, 1, 0, -1])) / 64.0
    W = np.where(rng.random((60, 50)) < 0.5, rng.choice(levels, (60, 50)), 0.0)
    layer = compress(W, 4, weight_frac_bits=6)
    assert layer.codebook[1:].tolist() == (levels * 64).astype(int).tolist()
    assert np.array_equal(decompress(layer), (W * 64).astype(np.int64))


def test_kmeans_reaches_a_lloyd_fixed_point():
    rng = np.random.default_rng(8)
    x = rng.standard_normal(5000)
    cent = eie._kmeans_1d(x, 15, 500)
    labels = np.argmin(np.abs(x[:, None] - cent[None, :]), axis=1)
    for k in range(15):
        assert np.isclose(cent[k], x[labels == k].mean(), rtol=0, atol=1e-12)


def test_auto_weight_frac_bits_uses_the_range():
    W = np.array([[0.0, 0.75], [-0.5, 0.25]])
    layer = compress(W, 1)
    # largest centroid 0.75 -> 0.75 * 2**15 = 24576 fits, 2**16 would not
    assert layer.weight_frac_bits == 15
    assert np.array_equal(decompress(layer), np.array([[0, 24576], [-16384, 8192]]))


def test_multi_pe_interleaving_and_empty_pes():
    W = np.arange(1, 7 * 3 + 1, dtype=float).reshape(7, 3)
    layer = compress(W, 4, codebook_bits=5, index_bits=3, weight_frac_bits=0, codebook=np.arange(32))
    for pe in range(4):
        # PE pe holds rows pe, pe+4: every column stores them in order with z = 0
        assert layer.local_rows(pe) == len(range(pe, 7, 4))
        assert layer.v[pe].tolist() == [int(W[i, j]) for j in range(3) for i in range(pe, 7, 4)]
        assert layer.z[pe].tolist() == [0] * (3 * layer.local_rows(pe))
    wide = compress(W, 16, codebook_bits=5, index_bits=3, weight_frac_bits=0, codebook=np.arange(32))
    assert [len(v) for v in wide.v] == [3] * 7 + [0] * 9
    assert np.array_equal(decompress(wide), W.astype(int))


# ----------------------------------------------------------------------------------------
# arithmetic
# ----------------------------------------------------------------------------------------
def test_round_shift_rne_against_fractions():
    xs = np.arange(-70, 71, dtype=np.int64)
    for s in range(0, 5):
        got = round_shift_rne(xs, s)
        assert got.tolist() == [round(Fraction(int(x), 1 << s)) for x in xs]
    big = np.array([2 ** 47 - 1, -2 ** 47, 3 << 20, -(3 << 20)], dtype=np.int64)
    assert round_shift_rne(big, 21).tolist() == [round(Fraction(int(x), 1 << 21)) for x in big]


@pytest.mark.parametrize("case", range(N_RANDOM))
def test_spmv_matches_dense_reference(case):
    seed = 1000 + case
    rng = np.random.default_rng(seed)
    n_rows, n_cols = int(rng.integers(1, 48)), int(rng.integers(1, 48))
    n_pe = int(rng.choice([1, 2, 4, 16]))
    acc_width = int(rng.choice([48, 40, 24, 20]))       # small widths exercise wrapping
    relu = bool(rng.integers(2))
    W = np.where(rng.random((n_rows, n_cols)) < rng.uniform(0.05, 1.0),
                 rng.standard_normal((n_rows, n_cols)), 0.0)
    a = np.where(rng.random(n_cols) < rng.uniform(0.1, 1.0), rng.integers(-32768, 32768, n_cols), 0)
    layer = compress(W, n_pe)
    codes = nearest_codes(W, layer.codebook, layer.weight_frac_bits)
    Wq = layer.codebook[codes]
    shift = int(rng.integers(0, 20))
    ref = dense_reference(Wq, a, acc_width, shift, INT16, relu)
    got = spmv(layer, a, acc_width=acc_width, out_shift=shift, relu=relu)
    bad = np.flatnonzero(got != ref)
    assert not bad.size, f"seed={seed}: {bad.size} mismatches, first row {bad[:1]}"


def test_spmv_saturates_rounds_and_relus():
    # one weight 1.0 in Q1.14 (16384) and activations near the limits
    W = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5]])
    layer = compress(W, 2, weight_frac_bits=14, codebook=np.array([0, 16384, -16384, 8192] + [0] * 12))
    a = np.array([32767, 3])
    assert spmv(layer, a, relu=False).tolist() == [32767, -32767, 2]     # 1.5 rounds to even 2
    assert spmv(layer, a).tolist() == [32767, 0, 2]
    a = np.array([-32768, 5])
    assert spmv(layer, a, relu=False).tolist() == [-32768, 32767, 2]     # 2.5 -> 2
    acc = accumulate(layer, a)
    assert acc.tolist() == [-32768 * 16384, 32768 * 16384, 5 * 8192]
    # saturation of the 16-bit output: 2 * 32767 with no shift
    assert spmv(layer, np.array([32767, 32767]), out_shift=0, relu=False).tolist() == [32767, -32768, 32767]


def test_zero_activations_skip_work():
    W, _ = sparse_workload(20, 30, 0.5, 1.0, seed=5)
    layer = compress(W, 4)
    assert spmv(layer, np.zeros(30, dtype=np.int64)).tolist() == [0] * 20


def test_run_layers_chains_two_layers():
    rng = np.random.default_rng(11)
    W1, a = sparse_workload(40, 24, 0.3, 0.6, seed=11)
    W2 = np.where(rng.random((16, 40)) < 0.4, rng.standard_normal((16, 40)), 0.0)
    l1, l2 = compress(W1, 4), compress(W2, 4)
    outs = run_layers([l1, l2], a, relu=[True, False])
    Wq1 = l1.codebook[nearest_codes(W1, l1.codebook, l1.weight_frac_bits)]
    Wq2 = l2.codebook[nearest_codes(W2, l2.codebook, l2.weight_frac_bits)]
    h = dense_reference(Wq1, a, 48, l1.weight_frac_bits, INT16, True)
    y = dense_reference(Wq2, h, 48, l2.weight_frac_bits, INT16, False)
    assert outs[0].tolist() == h.tolist() and outs[1].tolist() == y.tolist()
    assert np.count_nonzero(h) and np.count_nonzero(y)
    with pytest.raises(ValueError, match="layer 1 has 40 columns but layer 0 produces 16 activations"):
        run_layers([l2, l2], np.zeros(40, dtype=np.int64))


def test_to_fixed_rounds_half_even_and_saturates():
    assert to_fixed([0.5 / 256, 1.5 / 256, 2.5 / 256, 200.0, -200.0], 8).tolist() == [0, 2, 2, 32767, -32768]


# ----------------------------------------------------------------------------------------
# cycle model
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_schedule_matches_cycle_by_cycle_simulation(seed):
    rng = np.random.default_rng(seed)
    n_pe, K = int(rng.integers(1, 6)), int(rng.integers(1, 40))
    depth = int(rng.integers(1, 6))
    counts = rng.integers(0, 6, (n_pe, K)) * (rng.random((n_pe, K)) < 0.8)
    b_sim, q_sim, s_sim, busy_sim, compute_sim = simulate_cycles(counts, depth)
    b, q, s = schedule(counts, depth)
    assert b.tolist() == b_sim.tolist(), f"seed={seed}"
    assert q.tolist() == q_sim.tolist(), f"seed={seed}"
    assert s.tolist() == s_sim.tolist(), f"seed={seed}"
    r = cycles(counts, np.ones(K), queue_depth=depth)
    assert r.compute == compute_sim and r.busy.tolist() == busy_sim.tolist(), f"seed={seed}"


def test_schedule_one_entry_columns_run_at_one_column_per_cycle():
    # four descriptor slots cover the 3-cycle pop -> take distance: no bubble at all
    K = 30
    b, q, s = schedule(np.ones((1, K), dtype=np.int64), 64)
    assert b.tolist() == list(range(K))
    assert q[0].tolist() == list(range(1, K + 1))
    assert s[0].tolist() == list(range(4, K + 4))
    # last take K+3, last issue K+4, its write at the end of K+10
    assert cycles(np.ones((1, K), dtype=np.int64), np.ones(K), queue_depth=64).compute == K + 11


def test_cycles_single_column_by_hand():
    # broadcast 0, pop 1, pointers registered 2, decoded 3, taken 4, entries issued 5..c+4,
    # last write at the end of c+4+6 -> c+11 cycles; an empty column: taken at 4 -> 5 cycles
    for c in range(0, 5):
        r = cycles(np.array([[c]]), np.array([1]), queue_depth=1)
        assert r.compute == (c + 11 if c else 5)
        assert (r.pop_cycle.tolist(), r.take_cycle.tolist()) == ([[1]], [[4]])
    # two PEs, one column each: the longer one decides
    assert cycles(np.array([[3], [7]]), np.array([1])).compute == 18


def test_cycles_all_zero_activations():
    W, _ = sparse_workload(32, 32, 0.3, 1.0, seed=2)
    r = cycles(compress(W, 4), np.zeros(32, dtype=np.int64), start_latency=2, finish_latency=9)
    assert (r.compute, r.total, r.broadcasts, r.busy.sum()) == (0, 11, 0, 0)


def test_cycles_deep_queue_decouples_pes():
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 9, (4, 50))
    r = cycles(counts, np.ones(50), queue_depth=64)
    assert r.broadcast_cycle.tolist() == list(range(50))
    for p in range(4):                                   # each PE alone, by the stated rules
        s_prev, q_prev = None, None
        for k in range(50):
            qk = max(k + 1, q_prev + 1 if k else 0, int(r.take_cycle[p, k - 4]) + 1 if k >= 4 else 0)
            sk = max(qk + 3, s_prev + max(1, counts[p, k - 1]) if k else 0)
            assert (r.pop_cycle[p, k], r.take_cycle[p, k]) == (qk, sk)
            q_prev, s_prev = qk, sk


def test_cycles_depth_effect_and_efficiency_bounds():
    W, a = sparse_workload(256, 512, 0.09, 0.35, seed=9)
    layer = compress(W, 16)
    reports = [cycles(layer, a, queue_depth=d) for d in (1, 2, 4, 8, 16)]
    comp = [r.compute for r in reports]
    assert comp == sorted(comp, reverse=True) and comp[0] > comp[-1]
    for r in reports:
        assert r.busy.sum() == layer.column_entries()[:, np.flatnonzero(a)].sum()
        assert r.macs.sum() == layer.column_nonzeros()[:, np.flatnonzero(a)].sum()
        assert 0 < r.mac_efficiency <= r.load_balance_efficiency <= 1
        assert r.compute >= int(np.maximum(layer.column_entries()[:, np.flatnonzero(a)], 1).sum(axis=1).max())


LOAD_BALANCE_PES = (4, 16, 64)
LOAD_BALANCE_DEPTHS = tuple(range(1, 17))


def load_balance_table(n_rows=4096, n_cols=9216, dw=0.09, da=0.35, seed=1):
    """Efficiency for the paper's workload shape (Alex-6: 4096 x 9216, 9% weights, 35% activations)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols), dtype=np.float32) < dw
    a = (rng.random(n_cols) < da).astype(np.int64)
    table = {}
    for n_pe in LOAD_BALANCE_PES:
        counts = entry_counts(mask, n_pe)
        real = np.stack([np.bincount(np.nonzero(mask[pe::n_pe].T)[0], minlength=n_cols)
                         for pe in range(n_pe)])
        for d in LOAD_BALANCE_DEPTHS:
            r = cycles(counts, a, queue_depth=d, nonzeros=real)
            table[n_pe, d] = (r.load_balance_efficiency, r.mac_efficiency, r.compute)
    return table


def test_load_balance_sweep_paper_workload(capsys):
    table = load_balance_table()
    with capsys.disabled():
        print("\nEIE load balance, 4096x9216, dw=9%, da=35% (entries / (PEs x cycles); useful MACs in brackets)")
        print("depth " + "".join(f"{n:>18}" for n in LOAD_BALANCE_PES))
        for d in LOAD_BALANCE_DEPTHS:
            print(f"{d:>5} " + "".join(f"{table[n, d][0]:>10.3f} [{table[n, d][1]:.3f}]" for n in LOAD_BALANCE_PES))
    assert table[16, 8][0] >= 0.90                      # the target
    for n in LOAD_BALANCE_PES:
        eff = [table[n, d][0] for d in LOAD_BALANCE_DEPTHS]
        assert eff[0] <= eff[7] <= eff[15] + 1e-12      # deeper never hurts here
        assert n == 4 or eff[0] < eff[7]            # (4 PEs: the 4 descriptor slots already suffice)
        assert eff[15] - eff[7] < 0.02                  # flat beyond 8


# ----------------------------------------------------------------------------------------
# parameter validation (messages pinned)
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(n_pe=0), ValueError, "n_pe must be an integer between 1 and 4096, not 0"),
    (dict(codebook_bits=9), ValueError, "codebook_bits must be an integer between 1 and 8, not 9"),
    (dict(index_bits=0), ValueError, "index_bits must be an integer between 1 and 8, not 0"),
    (dict(weight_format="i16"), TypeError, "weight_format must be an IntFormat"),
    (dict(weight_format=IntFormat(16, signed=False)), ValueError,
     "weight_format must be a signed IntFormat of 2 to 32 bits, not u16"),
    (dict(row_bits=48), ValueError, "row_bits must be a multiple of codebook_bits \\+ index_bits = 8 holding "
                                    "a power-of-two number of entries, at most 64, not 48"),
    (dict(pointer_bits=40), ValueError, "pointer_bits must be an integer between 1 and 32, not 40"),
    (dict(weight_frac_bits=31), ValueError, "weight_frac_bits must be an integer between 0 and 30, not 31"),
])
def test_compress_rejects_bad_parameters(kwargs, exc, msg):
    args = dict(n_pe=2)
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        compress(np.eye(4), **args)


def test_compress_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"W must be a 2-D matrix, not an array of shape \(4,\)"):
        compress(np.ones(4), 1)
    with pytest.raises(ValueError, match="W must be finite"):
        compress(np.array([[np.nan]]), 1)
    with pytest.raises(ValueError, match="PE 0 needs 16 sparse-matrix entries but pointer_bits=4 addresses at most 15"):
        compress(np.ones((4, 4)), 1, pointer_bits=4)
    with pytest.raises(ValueError, match="weight_frac_bits must be given together with codebook"):
        compress(np.ones((4, 4)), 1, codebook=np.arange(16))


def test_spmv_and_cycles_reject_bad_inputs():
    layer = compress(np.eye(4), 2)
    with pytest.raises(ValueError, match=r"a must have shape \(4,\) \(n_cols\), not \(3,\)"):
        spmv(layer, np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="a must hold integers"):
        spmv(layer, np.zeros(4))
    with pytest.raises(ValueError, match=r"a must be within i16 \(-32768..32767\)"):
        spmv(layer, np.array([0, 0, 40000, 0]))
    with pytest.raises(ValueError, match="acc_width must be an integer between 1 and 64, not 65"):
        spmv(layer, np.zeros(4, dtype=np.int64), acc_width=65)
    with pytest.raises(ValueError, match="queue_depth must be an integer between 1 and 1024, not 0"):
        cycles(layer, np.ones(4), queue_depth=0)
    with pytest.raises(ValueError, match=r"n_pe must match the layer's interleaving \(2 PEs\), not 4"):
        cycles(layer, np.ones(4), n_pe=4)
    assert cycles(layer, np.ones(4), n_pe=2).compute == cycles(layer, np.ones(4)).compute
