"""golden/systolic.py: GEMM reference against independent oracles, tiling, stream protocol, cycle model.

Oracles: Python big integers (integer GEMM modulo 2**acc_width), Berkeley SoftFloat
(softfloatpy) for the floating-point accumulation orders, an independent pure-Python
interpreter of the stream protocol, and the closed-form cycle formulas.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import deque

import numpy as np
import pytest
import softfloatpy as sf

from tensorforge.golden import systolic as gs
from tensorforge.golden.formats import FP16, FP32, INT8, INT32, IntFormat

VECTORS = int(os.environ.get("TF_VECTORS", "1"))


# -- integer GEMM vs Python big integers ---------------------------------------------------
INT_CASES = [
    (INT8, INT8, INT32),
    (IntFormat(8, False), IntFormat(8, False), INT32),
    (IntFormat(4), IntFormat(3, False), IntFormat(10)),
    (IntFormat(16), IntFormat(16), IntFormat(24)),         # products overflow the accumulator: wraps
    (IntFormat(32), IntFormat(32), IntFormat(64)),         # full uint64 ring
    (IntFormat(64), IntFormat(64), IntFormat(64, False)),
    (IntFormat(1), IntFormat(1), IntFormat(2)),
]


def bigint_gemm(x, w, acc):
    M, K = x.shape
    N = w.shape[1]
    out = np.zeros((M, N), np.uint64)
    for m in range(M):
        for n in range(N):
            out[m, n] = sum(int(x[m, k]) * int(w[k, n]) for k in range(K)) & acc.mask
    return out


def rand_fmt(rng, shape, fmt):
    return np.array([[rng.randint(fmt.min, fmt.max) for _ in range(shape[1])] for _ in range(shape[0])], dtype=object)


@pytest.mark.parametrize("in_f,w_f,acc_f", INT_CASES, ids=[f"{a}x{b}-{c}" for a, b, c in INT_CASES])
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_int_gemm_against_bigints(in_f, w_f, acc_f, dataflow):
    for i in range(3 * VECTORS):
        seed = hash((str(in_f), str(w_f), str(acc_f), dataflow, i)) & 0xFFFF
        rng = random.Random(seed)
        M, K, N = rng.randint(1, 7), rng.randint(1, 20), rng.randint(1, 6)
        x, w = rand_fmt(rng, (M, K), in_f), rand_fmt(rng, (K, N), w_f)
        # extremes too
        x[0, 0], w[0, 0] = in_f.min, w_f.min
        # the golden model takes bit patterns (signed numpy values are two's complement)
        xb = np.array([[v & in_f.mask for v in row] for row in x], dtype=np.uint64)
        wb = np.array([[v & w_f.mask for v in row] for row in w], dtype=np.uint64)
        got = gs.gemm(xb, wb, in_format=in_f, weight_format=w_f, acc_format=acc_f, rows=3, cols=2,
                      dataflow=dataflow)
        np.testing.assert_array_equal(got, bigint_gemm(x, w, acc_f), err_msg=f"seed {seed}")


def test_int_gemm_accepts_signed_numpy_values_and_to_signed():
    x = np.array([[-128, 127]], np.int64)
    w = np.array([[-128], [-1]], np.int64)
    y = gs.gemm(x, w, rows=2, cols=2)
    assert gs.to_signed(y, INT32).tolist() == [[16384 - 127]]
    assert gs.to_signed(np.array([0x8000], np.uint64), IntFormat(16)).tolist() == [-32768]
    assert gs.to_signed(np.array([0xFFFF], np.uint64), IntFormat(16, False)).tolist() == [65535]


# -- floating point vs SoftFloat -----------------------------------------------------------
def _f16_as_f32(bits):
    return sf.f16_to_f32(sf.Float16.from_bytes(int(bits).to_bytes(2, "big")))


def _f32_bits(v):
    return int.from_bytes(v.to_bytes(), "big")


def sf_chain(xs, ws, acc):
    for a, b in zip(xs, ws):
        acc = sf.f32_mul_add(_f16_as_f32(a), _f16_as_f32(b), acc)
    return acc


def sf_gemm(x, w, rows, dataflow):
    sf.set_rounding_mode(sf.RoundingMode.NEAR_EVEN)
    sf.set_tininess_mode(sf.TininessMode.AFTER_ROUNDING)
    M, K = x.shape
    N = w.shape[1]
    zero = sf.Float32.from_bytes(bytes(4))
    out = np.zeros((M, N), np.uint32)
    for m in range(M):
        for n in range(N):
            if dataflow == "os":
                out[m, n] = _f32_bits(sf_chain(x[m], w[:, n], zero))
                continue
            total = None
            for k0 in range(0, K, rows):
                xs = [int(v) for v in x[m, k0:k0 + rows]]
                ws_ = [int(v) for v in w[k0:k0 + rows, n]]
                pad = rows - len(xs)
                p = sf_chain(xs + [0] * pad, ws_ + [0] * pad, zero)
                total = p if total is None else sf.f32_add(total, p)
            out[m, n] = _f32_bits(total)
    return out


SPECIALS16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00,
              0xFC00, 0x7E00, 0x3555, 0x1000, 0x9000]


def random_f16(rng, shape, p_special=0.2):
    vals = rng.normal(size=shape) * np.exp2(rng.integers(-10, 10, size=shape))
    bits = vals.astype(np.float16).view(np.uint16).copy()
    mask = rng.random(shape) < p_special
    bits[mask] = rng.choice(SPECIALS16, size=int(mask.sum()))
    return bits


@pytest.mark.parametrize("dataflow,rows", [("os", 2), ("ws", 1), ("ws", 2), ("ws", 3), ("ws", 8)])
def test_fp16_fp32_gemm_against_softfloat(dataflow, rows):
    for i in range(2 * VECTORS):
        seed = 100 * rows + i + (0 if dataflow == "ws" else 50)
        rng = np.random.default_rng(seed)
        M, K, N = 4, 7, 3
        x = random_f16(rng, (M, K))
        w = random_f16(rng, (K, N))
        got = gs.gemm(x, w, in_format=FP16, acc_format=FP32, rows=rows, cols=2, dataflow=dataflow)
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, sf_gemm(x, w, rows, dataflow), err_msg=f"seed {seed}")


def test_fp_ws_and_os_orders_differ_as_documented():
    # products 1, 0, 2^-24, 2^-24 (2^-12 * 2^-12). OS chain: 1 + 2^-24 ties to even -> 1, twice.
    # WS with rows=2: tile sums 1 and 2^-23, then 1 + 2^-23 is exact.
    one, t = 0x3C00, 0x0C00     # FP16 1.0 and 2^-12
    x = np.array([[one, 0, t, t]], np.uint16)
    w = np.array([[one], [0], [t], [t]], np.uint16)
    assert gs.gemm(x, w, in_format=FP16, acc_format=FP32, rows=2, cols=1, dataflow="os")[0, 0] == 0x3F800000
    assert gs.gemm(x, w, in_format=FP16, acc_format=FP32, rows=2, cols=1, dataflow="ws")[0, 0] == 0x3F800001
    # K within one tile: WS is the same chain as OS
    assert gs.gemm(x, w, in_format=FP16, acc_format=FP32, rows=4, cols=1, dataflow="ws")[0, 0] == 0x3F800000


def test_fp_padding_turns_negative_zero_positive():
    # -0 products: the chain starts at +0, so (+0) + (-0) = +0 in RNE, for every order
    x = np.array([[0x8000]], np.uint16)
    w = np.array([[0x3C00]], np.uint16)
    for df in ("ws", "os"):
        assert gs.gemm(x, w, in_format=FP16, acc_format=FP32, rows=2, cols=1, dataflow=df)[0, 0] == 0


# -- tiling --------------------------------------------------------------------------------
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_schedule_covers_every_mac_once(dataflow):
    for M, K, N, R, C, depth in [(1, 1, 1, 1, 1, 1), (7, 9, 5, 4, 3, 3), (16, 16, 16, 4, 4, 256),
                                 (5, 3, 11, 2, 4, 2), (33, 17, 9, 8, 8, 16)]:
        count = np.zeros((M, K, N), int)
        passes = gs.schedule(M, K, N, rows=R, cols=C, dataflow=dataflow, acc_depth=depth)
        for p in passes:
            rows = range(p.m0, p.m0 + p.m_count)
            ks = range(p.k0, min(K, p.k0 + R)) if dataflow == "ws" else range(K)
            for m, k, n in itertools.product(rows, ks, range(p.n0, min(N, p.n0 + C))):
                count[m, k, n] += 1
            if dataflow == "ws":
                assert 1 <= p.m_count <= depth
                assert p.start == (p.k0 == 0) and p.emit == (p.k0 + R >= K)
            else:
                assert p.m_count == min(R, M - p.m0) and p.start and p.emit
        assert (count == 1).all()
        n_tiles = -(-N // C)
        if dataflow == "ws":
            assert len(passes) == n_tiles * -(-M // depth) * -(-K // R)
        else:
            assert len(passes) == n_tiles * -(-M // R)


def protocol_interpreter(beats, rows, cols, dataflow, acc_width):
    """Independent pure-Python reading of the stream protocol (SystolicArray docstring)."""
    mask = (1 << acc_width) - 1
    w_beats = [list(map(int, b)) for b in beats["w"]]
    x_beats = [list(map(int, b)) for b in beats["x"]]
    y = []
    if dataflow == "ws":
        queue = deque()
        wi = 0
        xi = 0
        while xi < len(x_beats):
            tile = w_beats[wi:wi + rows]
            wi += rows
            while True:
                row = x_beats[xi]
                sums = [sum(row[r] * tile[r][c] for r in range(rows)) for c in range(cols)]
                if not beats["start"][xi]:
                    prev = queue.popleft()
                    sums = [a + b for a, b in zip(prev, sums)]
                sums = [v & mask for v in sums]
                (y.append if beats["emit"][xi] else queue.append)(sums)
                last = beats["last"][xi]
                xi += 1
                if last:
                    break
        assert wi == len(w_beats) and not queue
    else:
        acc = [[0] * cols for _ in range(rows)]
        for k, (xr, wr) in enumerate(zip(x_beats, w_beats)):
            for r in range(rows):
                for c in range(cols):
                    acc[r][c] += xr[r] * wr[c]
            if beats["last"][k]:
                y.extend([v & mask for v in row] for row in acc)
                acc = [[0] * cols for _ in range(rows)]
    return y


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_stream_beats_follow_the_protocol(dataflow):
    for seed in range(4 * VECTORS):
        rng = random.Random(seed)
        M, K, N = rng.randint(1, 12), rng.randint(1, 12), rng.randint(1, 9)
        R, C, depth = rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 6)
        x = np.array([[rng.randint(0, 255) for _ in range(K)] for _ in range(M)], np.uint64)   # u8 bits
        w = np.array([[rng.randint(0, 255) for _ in range(N)] for _ in range(K)], np.uint64)
        beats = gs.stream_beats(x, w, rows=R, cols=C, dataflow=dataflow, acc_depth=depth)
        assert beats["w"].shape[1] == C and beats["x"].shape[1] == R
        y = protocol_interpreter(beats, R, C, dataflow, 32)
        got = gs.assemble(y, beats["y"], M, N)
        u8 = IntFormat(8, False)
        ref = gs.gemm(x, w, in_format=u8, acc_format=INT32, rows=R, cols=C, dataflow=dataflow)
        np.testing.assert_array_equal(got, ref, err_msg=f"seed {seed}")
        n_x = len(beats["x"])
        if dataflow == "ws":
            passes = beats["passes"]
            assert len(beats["w"]) == R * len(passes) and n_x == sum(p.m_count for p in passes)
            assert len(beats["y"]) == sum(p.m_count for p in passes if p.emit)
        else:
            assert len(beats["w"]) == n_x == K * len(beats["passes"])
            assert len(beats["y"]) == R * len(beats["passes"])


def test_stream_beats_ws_example():
    # 3x3 GEMM on a 2x2 array: K tiles [0,1], [2,pad]; N tiles [0,1], [2,pad]
    x = np.arange(1, 10).reshape(3, 3)
    w = np.arange(10, 19).reshape(3, 3)
    b = gs.stream_beats(x, w, rows=2, cols=2, dataflow="ws")
    assert b["w"].tolist() == [[10, 11], [13, 14], [16, 17], [0, 0], [12, 0], [15, 0], [18, 0], [0, 0]]
    assert b["x"].tolist() == [[1, 2], [4, 5], [7, 8], [3, 0], [6, 0], [9, 0]] * 2
    assert b["last"].tolist() == [0, 0, 1] * 4
    assert b["start"].tolist() == [1, 1, 1, 0, 0, 0] * 2
    assert b["emit"].tolist() == [0, 0, 0, 1, 1, 1] * 2
    assert b["y"] == [(0, 0), (1, 0), (2, 0), (0, 2), (1, 2), (2, 2)]


def test_assemble_checks_the_count():
    with pytest.raises(ValueError, match=r"^expected 2 y beats, got 1$"):
        gs.assemble([[1, 2]], [(0, 0), (1, 0)], 2, 2)


# -- cycle model ---------------------------------------------------------------------------
def ceil_div(a, b):
    return -(-a // b)


@pytest.mark.parametrize("L", [1, 2])
def test_ws_closed_form_without_bubbles(L):
    for M, K, N, R, C in [(256, 256, 256, 16, 16), (40, 9, 7, 4, 4), (30, 64, 64, 8, 8), (12, 5, 3, 2, 5)]:
        assert all(p.m_count >= max(R, (R - 1) * L + C - 1) for p in gs.schedule(M, K, N, rows=R, cols=C))
        folds = ceil_div(K, R) * ceil_div(N, C)
        assert gs.cycles(M, K, N, R, C, "ws", mac_latency=L) == R + folds * M + R * L + C - 1


@pytest.mark.parametrize("L,A", [(2, 1), (3, 2), (3, 1)])
def test_ws_closed_form_with_a_late_addend(L, A):
    # the partial sum is sampled A cycles after the operands: H = L - A cycles per PE row
    H = L - A
    for M, K, N, R, C in [(256, 256, 256, 16, 16), (40, 9, 7, 4, 4), (30, 64, 64, 8, 8), (12, 5, 3, 2, 5)]:
        assert all(p.m_count >= max(R, (R - 1) * H + C - 1) for p in gs.schedule(M, K, N, rows=R, cols=C))
        folds = ceil_div(K, R) * ceil_div(N, C)
        assert gs.cycles(M, K, N, R, C, "ws", mac_latency=L, addend_delay=A) == R + folds * M + R * H + C - 1 + A
        assert gs.ws_pipeline_depth(R, C, L, A) == R * H + C - 1 + A
    # with H = 1 the bank-release bubbles are those of L = 1; only the tail grows by A
    for M, K, N, R, C in [(3, 8, 6, 2, 6), (2, 16, 8, 4, 4), (1, 3, 2, 1, 1), (5, 40, 30, 3, 7)]:
        assert gs.cycles(M, K, N, R, C, "ws", mac_latency=L, addend_delay=L - 1) == gs.cycles(M, K, N, R, C, "ws") + L - 1


def test_ws_weight_load_bubbles_when_passes_are_short():
    # 2 rows per pass on a 4x4 array: weights of pass p+2 wait for pass p's last row
    M, K, N, R, C = 2, 16, 8, 4, 4
    folds = ceil_div(K, R) * ceil_div(N, C)
    no_bubble = R + folds * M + R + C - 1
    n = gs.cycles(M, K, N, R, C, "ws")
    assert n > no_bubble
    # the weight stream is the bottleneck here (R = 4 beats per pass, 2 x rows): pass 0 loads
    # in cycles 0..3 and streams x in 4..5; every later pass ends 4 cycles after the previous
    assert n == 4 + 4 * (folds - 1) + 2 + R + C - 1


def test_ws_bank_release_bubbles():
    # R=2, C=6: row i of a bank frees i + 5 cycles after the last x row of the pass that used it
    M, K, N, R, C = 3, 8, 6, 2, 6
    # pass 0: w 0,1  x 2..4 (xl0 = 4); pass 1: w 2,3  x 5..7 (xl1 = 7);
    # pass 2: w row 0 >= xl0 + 5 = 9, row 1 >= xl0 + 6 = 10, x 11..13;
    # pass 3: w row 0 >= xl1 + 5 = 12, row 1 >= 13, x 14..16; last y = 16 + R + C - 1 = 23
    assert gs.cycles(M, K, N, R, C, "ws") == 24
    no_bubble = R + 4 * M + R + C - 1
    assert no_bubble == 21


def test_ws_accumulator_spacing_holds_short_passes(monkeypatch):
    # 1x1 array (latency 1), one-row passes: pass p+1 (start=0) adds to the sum pass p queued,
    # which it may read ACC_SPACING = 3 cycles after pass p's row was accepted. K = 3: w 0,
    # x 1; w 1, x at max(w + 1, previous x + 1, 1 + 3) = 4; w 2, x at 7; last y at 8
    assert gs.ACC_SPACING == 3
    assert gs.cycles(1, 3, 1, 1, 1, "ws") == 9
    monkeypatch.setattr(gs, "ACC_SPACING", 1)
    assert gs.cycles(1, 3, 1, 1, 1, "ws") == 5          # x at 1, 2, 3


def test_ws_accumulator_spacing_costs_nothing_from_three_rows(monkeypatch):
    # passes of 1 or 2 rows are paced by their R weight beats once R >= 3: the spacing never
    # adds a cycle there, while 1- and 2-row arrays do lose cycles to it
    rng = random.Random(7)
    shapes = [(rng.randint(1, 6), rng.randint(1, 14), rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 6),
               rng.randint(1, 3), rng.randint(1, 4)) for _ in range(400)]
    spaced = [gs.cycles(M, K, N, R, C, "ws", acc_depth=d, mac_latency=L) for M, K, N, R, C, L, d in shapes]
    monkeypatch.setattr(gs, "ACC_SPACING", 1)
    free = [gs.cycles(M, K, N, R, C, "ws", acc_depth=d, mac_latency=L) for M, K, N, R, C, L, d in shapes]
    slower = {shape[3] for shape, a, b in zip(shapes, spaced, free) if a != b}
    assert all(a >= b for a, b in zip(spaced, free))
    assert slower == {1, 2}


def test_os_closed_form():
    for M, K, N, R, C in [(256, 256, 256, 16, 16), (9, 3, 7, 4, 4), (5, 20, 5, 2, 3), (1, 1, 1, 1, 1)]:
        P = ceil_div(M, R) * ceil_div(N, C)
        assert gs.cycles(M, K, N, R, C, "os") == K + (P - 1) * max(K, R, C) + R + C


def test_benchmark_figures_16x16_int8_ws_256_cubed():
    n = gs.cycles(256, 256, 256, 16, 16, "ws")
    s = gs.scalesim_cycles(256, 256, 256, 16, 16, "ws")
    assert n == 256 * 256 + 2 * 16 + 16 - 1 == 65583
    assert s == 256 * (2 * 16 + 16 + 256 - 2) == 77312
    assert gs.utilization(256, 256, 256, 16, 16, n) >= 0.95
    assert 0.84 < gs.utilization(256, 256, 256, 16, 16, s) < 0.86


def test_scalesim_formulas():
    assert gs.scalesim_cycles(10, 20, 30, 4, 8, "ws") == 5 * 4 * (8 + 8 + 10 - 2)
    assert gs.scalesim_cycles(10, 20, 30, 4, 8, "is") == 5 * 2 * (8 + 8 + 30 - 2)
    assert gs.scalesim_cycles(10, 20, 30, 4, 8, "os") == 3 * 4 * (4 + 8 + 20 - 2)


def test_model_never_beats_the_ideal():
    rng = random.Random(3)
    for _ in range(200):
        M, K, N, R, C = (rng.randint(1, 40) for _ in range(5))
        for df in ("ws", "os"):
            n = gs.cycles(M, K, N, R, C, df, acc_depth=rng.randint(1, 50))
            assert gs.utilization(M, K, N, R, C, n) < 1.0


def test_errors():
    with pytest.raises(ValueError, match=r"^rows must be an integer >= 1, not 0$"):
        gs.schedule(1, 1, 1, rows=0, cols=1)
    with pytest.raises(ValueError, match=r"^M must be an integer >= 1, not -2$"):
        gs.cycles(-2, 1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"^dataflow must be one of ws, os, not 'rs'$"):
        gs.cycles(1, 1, 1, 2, 2, "rs")
    with pytest.raises(ValueError, match=r"^mac_latency must be 1 for the output-stationary dataflow, not 2$"):
        gs.cycles(1, 1, 1, 2, 2, "os", mac_latency=2)
    for bad in (2, -1, True):
        with pytest.raises(ValueError, match=rf"^addend_delay must be an integer between 0 and mac_latency - 1 "
                                             rf"\(1\), not {bad!r}$"):
            gs.cycles(1, 1, 1, 2, 2, mac_latency=2, addend_delay=bad)
    with pytest.raises(ValueError, match=r"^addend_delay must be an integer between 0 and mac_latency - 1 "
                                         r"\(0\), not 1$"):
        gs.ws_pipeline_depth(2, 2, 1, 1)
    with pytest.raises(ValueError, match=r"^x is 2x3 but w is 2x2: the inner dimensions must agree$"):
        gs.gemm(np.zeros((2, 3), np.int64), np.zeros((2, 2), np.int64), rows=2, cols=2)
    with pytest.raises(TypeError, match=r"^x must be an integer \(bit pattern\) array, not dtype float64$"):
        gs.stream_beats(np.zeros((2, 2)), np.zeros((2, 2), np.int64), rows=2, cols=2)
    with pytest.raises(TypeError, match=r"^in_format must be an IntFormat or FloatFormat"):
        gs.gemm(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), in_format="i8", rows=1, cols=1)
