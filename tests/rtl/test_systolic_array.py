"""Amaranth-simulation tests of the systolic array (rtl/systolic) against golden/systolic.

Every GEMM run checks, bit for bit, the RTL result against numpy (integers) and the golden
model, and (without back-pressure) that the measured cycles -- first accepted input beat to
last accepted output beat, inclusive -- equal ``golden.systolic.cycles`` exactly.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data
from amaranth.sim import Simulator

from tensorforge.golden import systolic as gs
from tensorforge.golden.formats import FP16, FP32, INT8, INT32, IntFormat
from tensorforge.rtl.systolic import PE, FloatArith, IntArith, Mesh, SystolicArray, arith_for
from tensorforge.rtl.systolic.array import ACC_SPACING

VECTORS = int(os.environ.get("TF_VECTORS", "1"))   # scales the number of random GEMMs

# components built only to inspect properties or provoke errors are never elaborated
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


# -- stream driver -----------------------------------------------------------------------
def _pack(layout, value) -> int:
    """Python value (dict / list / int) -> the integer bit pattern of ``layout``."""
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            out |= _pack(field.shape, value[name]) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width if not isinstance(layout.elem_shape, data.Layout) \
            else layout.elem_shape.size
        out = 0
        for i in range(layout.length):
            out |= _pack(layout.elem_shape, value[i]) << (i * width)
        return out
    width = Shape.cast(layout).width
    return int(value) & ((1 << width) - 1)


def _unpack_row(bits, n, width):
    mask = (1 << width) - 1
    return [(bits >> (i * width)) & mask for i in range(n)]


def run_array(dut: SystolicArray, beats, *, seed=0, p_valid=1.0, p_ready=1.0, max_cycles=200_000):
    """Drive the beats of ``golden.systolic.stream_beats`` through ``dut``.

    ``p_valid``: probability an input stream offers its next beat in a cycle (else a gap);
    ``p_ready``: probability ``y.ready`` is high. Returns ``(y_rows, cycles)`` where ``y_rows``
    are lists of ``cols`` bit patterns and ``cycles`` counts from the first accepted input
    beat to the last accepted y beat, inclusive.
    """
    rng = random.Random(seed)
    w_layout = dut.w.payload.shape()
    x_layout = dut.x.payload.shape()
    ws = dut.dataflow == "ws"
    w_words = [_pack(w_layout, {"w": list(map(int, row))}) for row in beats["w"]]
    x_words = []
    for i, row in enumerate(beats["x"]):
        fields = {"x": list(map(int, row)), "last": int(beats["last"][i])}
        if ws:
            fields.update(start=int(beats["start"][i]), emit=int(beats["emit"][i]))
        x_words.append(_pack(x_layout, fields))
    n_y = len(beats["y"])
    acc_width = Shape.cast(dut.arith.acc_shape).width
    result = {"y": [], "first": None, "last": None}

    async def bench(ctx):
        wi = xi = cycle = 0
        while len(result["y"]) < n_y:
            if cycle > max_cycles:
                raise AssertionError(f"timeout after {cycle} cycles: w {wi}/{len(w_words)}, "
                                     f"x {xi}/{len(x_words)}, y {len(result['y'])}/{n_y} (seed {seed})")
            w_valid = wi < len(w_words) and rng.random() < p_valid
            x_valid = xi < len(x_words) and rng.random() < p_valid
            ctx.set(dut.w.valid, w_valid)
            ctx.set(dut.w.payload.as_value(), w_words[wi] if wi < len(w_words) else 0)
            ctx.set(dut.x.valid, x_valid)
            ctx.set(dut.x.payload.as_value(), x_words[xi] if xi < len(x_words) else 0)
            ctx.set(dut.y.ready, rng.random() < p_ready)
            w_fire = w_valid and ctx.get(dut.w.ready)
            x_fire = x_valid and ctx.get(dut.x.ready)
            y_fire = ctx.get(dut.y.valid) and ctx.get(dut.y.ready)
            if (w_fire or x_fire) and result["first"] is None:
                result["first"] = cycle
            if y_fire:
                assert result["first"] is not None, "y beat before any input"
                result["y"].append(_unpack_row(ctx.get(dut.y.payload.as_value()), dut.cols, acc_width))
                result["last"] = cycle
            wi += w_fire
            xi += x_fire
            await ctx.tick()
            cycle += 1
        assert wi == len(w_words) and xi == len(x_words), f"unconsumed input beats: w {wi}, x {xi}"
        # the array must stay quiet afterwards: no duplicated results
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.x.valid, 0)
        ctx.set(dut.y.ready, 1)
        for _ in range(dut.rows + dut.cols + 4):
            assert not ctx.get(dut.y.valid), f"extra y beat after the last expected one (seed {seed})"
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return result["y"], result["last"] - result["first"] + 1


def random_ints(rng, shape, fmt: IntFormat):
    return rng.integers(fmt.min, fmt.max + 1, size=shape, dtype=np.int64)


def check_int_gemm(M, K, N, *, rows, cols, dataflow, arith=None, acc_depth=256, seed=0,
                   p_valid=1.0, p_ready=1.0, expect_cycles=True, logic_multipliers=0):
    arith = IntArith() if arith is None else arith
    dut = SystolicArray(rows=rows, cols=cols, dataflow=dataflow, arith=arith, acc_depth=acc_depth,
                        logic_multipliers=logic_multipliers)
    rng = np.random.default_rng(seed)
    x = random_ints(rng, (M, K), arith.in_format)
    w = random_ints(rng, (K, N), arith.weight_format)
    beats = gs.stream_beats(x, w, rows=rows, cols=cols, dataflow=dataflow, acc_depth=acc_depth,
                            in_width=arith.in_format.width, weight_width=arith.weight_format.width)
    model = gs.cycles(M, K, N, rows, cols, dataflow, acc_depth=acc_depth, mac_latency=arith.mac_latency,
                      addend_delay=getattr(arith, "addend_delay", 0))
    y_rows, n_cycles = run_array(dut, beats, seed=seed, p_valid=p_valid, p_ready=p_ready,
                                 max_cycles=20 * model + 200)
    got = gs.assemble(y_rows, beats["y"], M, N)
    acc = arith.acc_format
    expect_np = (x.astype(object) @ w.astype(object))
    expect_np = np.vectorize(lambda v: int(v) & acc.mask, otypes=[object])(expect_np).astype(np.uint64)
    golden = gs.gemm(x, w, in_format=arith.in_format, weight_format=arith.weight_format, acc_format=acc,
                     rows=rows, cols=cols, dataflow=dataflow)
    np.testing.assert_array_equal(golden, expect_np, err_msg=f"golden vs numpy, seed {seed}")
    mismatches = int(np.count_nonzero(got != golden))
    assert mismatches == 0, f"{mismatches} mismatches for {M}x{K}x{N} on {rows}x{cols} {dataflow} (seed {seed})"
    if expect_cycles:
        assert n_cycles == model, (f"measured {n_cycles} cycles, model {model} for {M}x{K}x{N} on "
                                   f"{rows}x{cols} {dataflow}")
    return n_cycles, model


# -- GEMMs, no back-pressure: bit-exact and cycle-exact ------------------------------------
SHAPES = [
    # (M, K, N, rows, cols)
    (1, 1, 1, 2, 2),
    (4, 4, 4, 4, 4),
    (5, 3, 2, 2, 2),       # ragged K, M
    (9, 7, 6, 4, 4),       # ragged everything
    (3, 10, 5, 2, 3),      # non-square array, several K tiles with few rows (weight-load bound)
    (12, 9, 7, 3, 4),
    (20, 8, 8, 4, 4),      # long passes: no weight-load bubbles
    (2, 17, 3, 4, 2),      # weight stream bound (R weight beats per 2-row pass)
    (3, 8, 6, 2, 6),       # bank-release bound (wide array, short passes)
    (1, 3, 2, 1, 1),       # 1x1 array: one-row passes back to back (queue read-during-write)
    (3, 2, 4, 2, 1),       # single column / single row arrays
    (2, 5, 3, 1, 2),
    (9, 2, 7, 4, 3),       # OS: K < max(R, C), the drain paces the passes
]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("M,K,N,rows,cols", SHAPES)
def test_int8_gemm_exact_and_cycles(M, K, N, rows, cols, dataflow):
    check_int_gemm(M, K, N, rows=rows, cols=cols, dataflow=dataflow, seed=M * 1000 + K * 10 + N)


def test_ws_small_acc_depth_chunks_m():
    # M = 7 with acc_depth = 3: chunks of 3, 3, 1 rows, each through all K tiles
    check_int_gemm(7, 9, 5, rows=4, cols=3, dataflow="ws", acc_depth=3, seed=11)
    # queue pointers wrapping every entry or every other one (read pointer +1/+2 registers)
    for depth in (1, 2):
        check_int_gemm(5, 9, 4, rows=4, cols=3, dataflow="ws", acc_depth=depth, seed=20 + depth)


@pytest.mark.parametrize("rows,cols,depth", [(1, 1, 1), (1, 2, 1), (1, 2, 2), (2, 2, 1)])
def test_ws_back_to_back_passes_through_a_tiny_queue(rows, cols, depth):
    # one- or two-row arrays would run K passes of the same rows in consecutive cycles, so
    # the next pass would read a row while or right after it is written (with acc_depth 1
    # also while the same entry is rewritten): the array must hold those rows until the sum
    # is in the queue (ACC_SPACING) and the model must count the wait cycles
    check_int_gemm(depth, 7, cols + 1, rows=rows, cols=cols, dataflow="ws", acc_depth=depth,
                   seed=40 + 10 * rows + cols + depth)


def test_ws_accumulator_wait_is_exact_and_cannot_hang():
    # x.ready per cycle on a 1x1 array (latency 1, ACC_SPACING 3) with x offered every cycle:
    # row a (start, queue), row b (start=0: must wait 2 cycles for a's sum, x.ready depends on
    # its start flag), row c (start=0 with nothing queued -- a protocol error: not held)
    dut = SystolicArray(rows=1, cols=1, dataflow="ws")
    layout = dut.x.payload.shape()
    rows = [dict(x=[2], last=1, start=1, emit=0), dict(x=[3], last=1, start=0, emit=1),
            dict(x=[5], last=1, start=0, emit=1)]
    log = []

    async def bench(ctx):
        ctx.set(dut.y.ready, 1)
        ctx.set(dut.w.valid, 1)
        ctx.set(dut.w.payload.as_value(), 7)
        i = 0
        for cycle in range(14):
            ctx.set(dut.x.valid, i < len(rows))
            ctx.set(dut.x.payload.as_value(), _pack(layout, rows[min(i, len(rows) - 1)]))
            ready = ctx.get(dut.x.ready)
            if ctx.get(dut.y.valid):
                log.append(("y", cycle, ctx.get(dut.y.payload.as_value())))
            if ready and i < len(rows):
                log.append(("x", cycle, i))
                i += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    xs = [cycle for kind, cycle, _ in log if kind == "x"]
    assert xs[1] - xs[0] == gs.ACC_SPACING == ACC_SPACING == 3
    assert xs[2] - xs[1] <= 3          # released once the bank is loaded again: no hang
    ys = [value for kind, _, value in log if kind == "y"]
    assert ys[0] == 2 * 7 + 3 * 7      # b added to a's queued sum


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_other_int_widths(dataflow):
    # u4 activations x i3 weights -> i6 accumulators: wraps modulo 2**6
    arith = IntArith(in_format=IntFormat(4, signed=False), weight_format=IntFormat(3),
                     acc_format=IntFormat(6))
    check_int_gemm(6, 13, 5, rows=3, cols=2, dataflow=dataflow, arith=arith, seed=5)
    # i16 x i16 -> i24: products alone overflow the accumulator, the wrap is still exact
    arith = IntArith(in_format=IntFormat(16), acc_format=IntFormat(24))
    check_int_gemm(5, 6, 3, rows=2, cols=2, dataflow=dataflow, arith=arith, seed=6)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_extreme_values_wrap(dataflow):
    # all -128: every product is +16384; K = 2**17 + ... would overflow; use narrow acc instead
    arith = IntArith(in_format=INT8, acc_format=IntFormat(16))
    dut = SystolicArray(rows=2, cols=2, dataflow=dataflow, arith=arith)
    M, K, N = 3, 5, 3
    x = np.full((M, K), -128)
    w = np.full((K, N), -128)
    beats = gs.stream_beats(x, w, rows=2, cols=2, dataflow=dataflow)
    y_rows, _ = run_array(dut, beats)
    got = gs.assemble(y_rows, beats["y"], M, N)
    assert (got == (5 * 16384) % 65536).all()
    assert (gs.to_signed(got, IntFormat(16)) == 16384).all()     # 81920 wraps to 16384


# -- back-pressure and input gaps: nothing lost, nothing duplicated -------------------------
@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("seed", range(3))
def test_random_stalls(dataflow, seed):
    for i in range(VECTORS):
        s = seed * 1000 + i
        rng = random.Random(s)
        M, K, N = rng.randint(1, 9), rng.randint(1, 11), rng.randint(1, 7)
        rows, cols = rng.randint(2, 4), rng.randint(2, 4)
        n, model = check_int_gemm(M, K, N, rows=rows, cols=cols, dataflow=dataflow, seed=s,
                                  p_valid=0.7, p_ready=0.6, expect_cycles=False)
        assert n >= model, f"stalled run faster than the no-stall model (seed {s})"


# -- structure ---------------------------------------------------------------------------
def test_timing_properties():
    ws = SystolicArray(rows=4, cols=3, dataflow="ws")
    assert (ws.latency, ws.weight_load_cycles, ws.initiation_interval) == (6, 4, 1)
    assert [ws.weight_row_release(i) for i in range(4)] == [2, 3, 4, 5]
    assert ws.latency == gs.ws_pipeline_depth(4, 3)
    os_ = SystolicArray(rows=4, cols=3, dataflow="os")
    assert (os_.latency, os_.drain_cycles, os_.pass_interval) == (4, 4, 4)


def test_field_formats_and_ports():
    a = SystolicArray(rows=2, cols=3, dataflow="ws")
    ff = a.field_formats
    assert set(ff) == {"w", "x", "y"}
    assert ff["w"] == {"w[0]": INT8, "w[1]": INT8, "w[2]": INT8}
    assert ff["x"] == {"x[0]": INT8, "x[1]": INT8, "last": None, "start": None, "emit": None}
    assert ff["y"] == {"y[0]": INT32, "y[1]": INT32, "y[2]": INT32}
    assert Shape.cast(a.x.payload.shape()).width == 2 * 8 + 3
    o = SystolicArray(rows=2, cols=3, dataflow="os")
    assert set(o.field_formats["x"]) == {"x[0]", "x[1]", "last"}
    assert a.top_name == "systolic_ws_2x3_i8_i32"
    arith = IntArith(in_format=IntFormat(4, False), weight_format=IntFormat(3), acc_format=IntFormat(12))
    assert SystolicArray(rows=4, cols=4, dataflow="os", arith=arith).top_name == "systolic_os_4x4_u4_i3_i12"


def test_arith_for_picks_the_strategy():
    a = arith_for(INT8, INT32)
    assert isinstance(a, IntArith) and a.tag == "i8_i32"
    with pytest.raises(TypeError, match=r"^in_format and acc_format must both be IntFormat or both FloatFormat, "
                                        r"not i8 and e8m23$"):
        arith_for(INT8, FP32)
    if _fma_available():
        f = arith_for(FP16, FP32)
        assert isinstance(f, FloatArith) and f.tag == "e5m10_e8m23_rne_s1"


@pytest.mark.parametrize("rows,cols,dataflow", [
    (4, 4, "ws"), (4, 4, "os"),
    pytest.param(16, 16, "ws", marks=pytest.mark.slow), pytest.param(16, 16, "os", marks=pytest.mark.slow)])
def test_verilog_converts(rows, cols, dataflow):
    a = SystolicArray(rows=rows, cols=cols, dataflow=dataflow)
    v = verilog.convert(a, name=f"systolic_{rows}x{cols}_{dataflow}", emit_src=False)
    assert "module systolic_" in v
    for port in ("w__payload", "w__valid", "w__ready", "x__payload", "x__valid", "x__ready",
                 "y__payload", "y__valid", "y__ready"):
        assert port in v
    assert "/work" not in v     # no absolute source paths


def test_parameter_errors():
    with pytest.raises(ValueError, match=r"^rows must be an integer between 1 and 1024, not 0$"):
        SystolicArray(rows=0)
    with pytest.raises(ValueError, match=r"^cols must be an integer between 1 and 1024, not 2.5$"):
        SystolicArray(cols=2.5)
    with pytest.raises(ValueError, match=r"^dataflow must be one of ws, os, not 'is'$"):
        SystolicArray(dataflow="is")
    with pytest.raises(ValueError, match=r"^acc_depth must be an integer between 1 and 65536, not 0$"):
        SystolicArray(acc_depth=0)
    with pytest.raises(TypeError, match=r"^in_format must be an IntFormat \(e.g. IntFormat\(8\) for i8\), "
                                        r"not FloatFormat\(e5m10\)$"):
        IntArith(in_format=FP16)
    with pytest.raises(TypeError, match=r"^arith must be an arithmetic strategy"):
        SystolicArray(arith="i8")

    class SlowMac(IntArith):
        mac_latency = 2

    with pytest.raises(ValueError, match=r"^the output-stationary dataflow needs arith.mac_latency == 1 "):
        SystolicArray(dataflow="os", arith=SlowMac())
    with pytest.raises(ValueError, match=r"^rows must be an integer between 1 and 1024, not 2000$"):
        Mesh(rows=2000, cols=2, arith=IntArith())
    with pytest.raises(ValueError, match=r"^dataflow must be one of ws, os, not 'xs'$"):
        PE(arith=IntArith(), dataflow="xs")


# -- deeper MAC pipelines (WS): the array adapts its skew; model takes mac_latency ---------
class _PipelinedIntArith(IntArith):
    """IntArith with a 3-cycle MAC (stands in for a pipelined FMA)."""

    mac_latency = 3

    def mac(self, m, *, a, b, c, enable, name):
        from amaranth.hdl import Signal
        value = c + a * b
        for i in range(self.mac_latency):
            reg = Signal(self.acc_shape, name=f"{name}_p{i}", reset_less=True)
            with m.If(enable):
                m.d.sync += reg.eq(value)
            value = reg
        return value


def test_ws_deep_mac_pipeline():
    check_int_gemm(7, 10, 5, rows=3, cols=2, dataflow="ws", arith=_PipelinedIntArith(), seed=21)
    check_int_gemm(5, 6, 4, rows=2, cols=3, dataflow="ws", arith=_PipelinedIntArith(), seed=22,
                   p_valid=0.7, p_ready=0.6, expect_cycles=False)


# -- IntArith(stages=2, 3): registered product / operands, the partial sum joins late (WS) --
STAGES_SHAPES = [
    # (M, K, N, rows, cols)
    (1, 1, 1, 2, 2),
    (9, 7, 6, 4, 4),       # ragged everything
    (3, 10, 5, 2, 3),      # several K tiles with few rows (weight-load bound)
    (20, 8, 8, 4, 4),      # long passes
    (3, 8, 6, 2, 6),       # bank-release bound
    (2, 5, 3, 1, 2),       # one row
    (1, 3, 2, 1, 1),       # 1x1 array: one-row passes back to back
    (7, 9, 5, 4, 3),
]


@pytest.mark.parametrize("stages", [2, 3, 5])
@pytest.mark.parametrize("M,K,N,rows,cols", STAGES_SHAPES)
def test_int8_stages_ws_exact_and_cycles(M, K, N, rows, cols, stages):
    arith = IntArith(stages=stages)
    assert (arith.mac_latency, arith.addend_delay) == (stages, stages - 1)
    check_int_gemm(M, K, N, rows=rows, cols=cols, dataflow="ws", arith=arith,
                   seed=M * 1000 + K * 10 + N + 7 * stages)


@pytest.mark.parametrize("stages", [2, 3, 4, 5, 7])
def test_int_stages_other_widths_and_chunks(stages):
    # product narrower than, wider than and as wide as the accumulator
    for seed, arith in enumerate([
            IntArith(in_format=IntFormat(4, signed=False), weight_format=IntFormat(3), acc_format=IntFormat(6),
                     stages=stages),
            IntArith(in_format=IntFormat(16), acc_format=IntFormat(24), stages=stages),
            IntArith(in_format=INT8, acc_format=IntFormat(16), stages=stages),
            IntArith(in_format=IntFormat(8, signed=False), acc_format=INT32, stages=stages)]):
        check_int_gemm(6, 13, 5, rows=3, cols=2, dataflow="ws", arith=arith, seed=40 + seed)
    # M chunked by a short accumulator queue
    check_int_gemm(7, 9, 5, rows=4, cols=3, dataflow="ws", acc_depth=3, arith=IntArith(stages=stages), seed=12)


def test_int_stages_extreme_values_wrap():
    for stages in (2, 3, 5):
        arith = IntArith(in_format=INT8, acc_format=IntFormat(16), stages=stages)
        dut = SystolicArray(rows=2, cols=2, dataflow="ws", arith=arith, logic_multipliers=2)
        x = np.full((3, 5), -128)
        w = np.full((5, 3), -128)
        beats = gs.stream_beats(x, w, rows=2, cols=2, dataflow="ws")
        y_rows, _ = run_array(dut, beats)
        assert (gs.assemble(y_rows, beats["y"], 3, 3) == (5 * 16384) % 65536).all()


@pytest.mark.parametrize("stages", [2, 3, 5])
@pytest.mark.parametrize("seed", range(2))
def test_int_stages_random_stalls(seed, stages):
    for i in range(VECTORS):
        s = 500 + seed * 1000 + i
        rng = random.Random(s)
        M, K, N = rng.randint(1, 9), rng.randint(1, 11), rng.randint(1, 7)
        rows, cols = rng.randint(2, 4), rng.randint(2, 4)
        n, model = check_int_gemm(M, K, N, rows=rows, cols=cols, dataflow="ws", arith=IntArith(stages=stages),
                                  seed=s, p_valid=0.7, p_ready=0.6, expect_cycles=False)
        assert n >= model, f"stalled run faster than the no-stall model (seed {s})"


def test_int_stages_structure():
    for stages, tag in ((1, "i8_i32"), (2, "i8_i32_s2"), (3, "i8_i32_s3"), (4, "i8_i32_s4"), (5, "i8_i32_s5"),
                       (7, "i8_i32_s7")):
        a = IntArith(stages=stages)
        assert (a.stages, a.mac_latency, a.addend_delay, a.tag) == (stages, stages, stages - 1, tag)
        assert arith_for(INT8, INT32, stages=stages).tag == tag
        ws = SystolicArray(rows=4, cols=3, dataflow="ws", arith=a)
        ws._MustUse__silence = True     # built only to read its properties
        assert ws.top_name == f"systolic_ws_4x3_{tag}"
        # the partial sum still moves one row per cycle: only stages - 1 cycles of extra latency
        assert ws.latency == gs.ws_pipeline_depth(4, 3, stages, stages - 1) == 4 + 3 - 1 + stages - 1
        assert [ws.weight_row_release(i) for i in range(4)] == [2, 3, 4, 5]
    assert repr(IntArith(stages=2)) == "IntArith(in_format=i8, weight_format=i8, acc_format=i32, stages=2)"
    # stages 2: the product has its own register right after the multiplier (16 bits for
    # i8 x i8) and the partial sum input goes straight into the adder; stages 3 registers
    # the operands (the selected weight) as well
    v2 = verilog.convert(PE(arith=IntArith(stages=2), dataflow="ws"), name="pe_s2", emit_src=False)
    assert "reg [15:0] mac_product" in v2 and "mac_c" not in v2 and "mac_b" not in v2
    assert "$signed(psum_in) + $signed(mac_product)" in v2
    v3 = verilog.convert(PE(arith=IntArith(stages=3), dataflow="ws"), name="pe_s3", emit_src=False)
    assert "reg [15:0] mac_product" in v3 and "reg [7:0] mac_b" in v3 and "reg [7:0] mac_a" in v3
    assert "mac_product" not in verilog.convert(PE(arith=IntArith(), dataflow="ws"), name="pe_s1", emit_src=False)
    # stages 5: two operand and two product registers
    v5 = verilog.convert(PE(arith=IntArith(stages=5), dataflow="ws"), name="pe_s5", emit_src=False)
    for reg in ("reg [15:0] mac_product;", "reg [15:0] mac_product2;", "reg [7:0] mac_b;", "reg [7:0] mac_b2;",
                "reg [7:0] mac_a2;"):
        assert reg in v5.replace(" = 16'h0000;", ";").replace(" = 8'h00;", ";")
    assert "mac_product3" not in v5 and "mac_b3" not in v5
    # stages 7: three of each
    v7 = verilog.convert(PE(arith=IntArith(stages=7), dataflow="ws"), name="pe_s7", emit_src=False)
    for reg in ("reg [15:0] mac_product3;", "reg [7:0] mac_b3;", "reg [7:0] mac_a3;"):
        assert reg in v7.replace(" = 16'h0000;", ";").replace(" = 8'h00;", ";")
    assert "mac_product4" not in v7 and "mac_b4" not in v7
    # a multiplier built from logic keeps the register count: the first product register is
    # inside the Booth tree
    v5s = verilog.convert(PE(arith=IntArith(stages=5), dataflow="ws", soft_multiplier=True), name="pe_s5s",
                          emit_src=False)
    assert "mac_booth_stage0" in v5s and "mac_booth_stage_neg" in v5s and "mac_product2" not in v5s
    assert "reg [15:0] mac_product" in v5s


def test_int_stages_errors():
    for bad in (0, 8, True, 2.0, "2"):
        with pytest.raises(ValueError, match=rf"^stages must be an integer between 1 and 7 for integer arithmetic, "
                                             rf"not {bad!r}$"):
            IntArith(stages=bad)
    for stages in (2, 3, 5):
        with pytest.raises(ValueError, match=r"^the output-stationary dataflow needs arith.mac_latency == 1 \(the "
                                             rf"accumulator loops through the multiply-add\), not {stages}$"):
            SystolicArray(dataflow="os", arith=IntArith(stages=stages))

    class BadDelay(IntArith):
        addend_delay = 1      # with mac_latency 1

    with pytest.raises(ValueError, match=r"^arith.addend_delay must be an integer between 0 and mac_latency - 1 "
                                         r"\(0\), not 1$"):
        SystolicArray(arith=BadDelay())
    with pytest.raises(ValueError, match=r"^addend_delay must be an integer between 0 and mac_latency - 1 \(1\), "
                                         r"not 2$"):
        gs.cycles(1, 1, 1, 2, 2, mac_latency=2, addend_delay=2)


# -- multipliers built from logic (radix-4 Booth) ------------------------------------------
@pytest.mark.parametrize("dataflow,stages", [("ws", 1), ("ws", 2), ("ws", 3), ("ws", 4), ("ws", 5), ("os", 1)])
def test_logic_multipliers_exact_and_cycles(dataflow, stages):
    arith = IntArith(stages=stages)
    # some PEs soft, some inferred: the numerics and the timing are the same
    check_int_gemm(9, 7, 6, rows=4, cols=4, dataflow=dataflow, arith=arith, seed=70 + stages,
                   logic_multipliers=6)
    check_int_gemm(5, 6, 3, rows=2, cols=2, dataflow=dataflow, seed=80 + stages, logic_multipliers=4,
                   arith=IntArith(in_format=IntFormat(5, signed=False), weight_format=IntFormat(7),
                                  acc_format=IntFormat(12), stages=stages))


def test_logic_multipliers_structure_and_errors():
    a = SystolicArray(rows=3, cols=4, arith=IntArith(stages=3), logic_multipliers=5)
    a._MustUse__silence = True
    assert a.logic_multipliers == 5 and a.top_name == "systolic_ws_3x4_i8_i32_s3_lm5"
    mesh = Mesh(rows=3, cols=4, arith=IntArith(), logic_multipliers=5)
    mesh._MustUse__silence = True
    # the last 5 PEs in row-major order: (1, 3), (2, 0..3)
    v = verilog.convert(mesh, name="mesh", emit_src=False)
    modules = [line.split()[1] for line in v.splitlines() if line.startswith("module ")]
    booth_modules = {mname for mname in modules
                     if "mac_booth_pp0" in v.split(f"module {mname}")[1].split("endmodule")[0]}
    assert {mname.split(".")[-1] for mname in booth_modules} == {"pe_1_3", "pe_2_0", "pe_2_1", "pe_2_2", "pe_2_3"}
    with pytest.raises(ValueError, match=r"^logic_multipliers must be an integer between 0 and rows\*cols \(12\), "
                                         r"not 13$"):
        SystolicArray(rows=3, cols=4, logic_multipliers=13)
    with pytest.raises(ValueError, match=r"^logic_multipliers must be an integer between 0 and rows\*cols \(4\), "
                                         r"not -1$"):
        Mesh(rows=2, cols=2, arith=IntArith(), logic_multipliers=-1)
    with pytest.raises(TypeError, match=r"^soft_multiplier must be True or False, not 1$"):
        PE(arith=IntArith(), soft_multiplier=1)
    if _fma_available():
        with pytest.raises(ValueError, match=r"^logic_multipliers needs an arithmetic strategy that builds "
                                             r"multipliers from logic \(IntArith\), not FloatArith\("):
            SystolicArray(arith=FloatArith(), logic_multipliers=1)
        with pytest.raises(ValueError, match=r"^soft_multiplier needs an arithmetic strategy"):
            PE(arith=FloatArith(), soft_multiplier=True)


def _booth_products(sa, sb, pairs):
    """Simulate one booth_multiply(a, b) on every (a, b) of ``pairs``; returns the mismatches."""
    from amaranth.hdl import Module, Signal
    from tensorforge.rtl.systolic.booth import booth_multiply
    m = Module()
    a, b = Signal(sa, name="a"), Signal(sb, name="b")
    p = booth_multiply(m, a, b, name="bm")
    assert p.shape() == (a * b).shape()
    bad = []

    async def bench(ctx):
        for av, bv in pairs:
            ctx.set(a, av)
            ctx.set(b, bv)
            if ctx.get(p) != av * bv:
                bad.append((av, bv, ctx.get(p)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return bad


def _values(shape):
    """Every value of an integer shape."""
    w = shape.width
    return list(range(-(1 << (w - 1)), 1 << (w - 1))) if shape.signed else list(range(1 << w))


@pytest.mark.parametrize("sa,sb", [("s5", "s5"), ("u4", "s3"), ("s3", "u5"), ("s1", "s4"), ("u1", "u3"),
                                   ("u6", "u4"), ("s6", "u3"), ("s2", "s7")])
def test_booth_multiplier_exhaustive_small(sa, sb):
    from amaranth.hdl import signed, unsigned
    shapes = [(signed if t[0] == "s" else unsigned)(int(t[1:])) for t in (sa, sb)]
    pairs = [(x, y) for x in _values(shapes[0]) for y in _values(shapes[1])]
    assert _booth_products(*shapes, pairs) == []


@pytest.mark.parametrize("sa,sb", [("s8", "s8"), ("u8", "s8"), ("s8", "u8")])
def test_booth_multiplier_8x8(sa, sb):
    """Every a against the extreme and a few random b (all 65,536 pairs in the slow tier)."""
    from amaranth.hdl import signed, unsigned
    shapes = [(signed if t[0] == "s" else unsigned)(int(t[1:])) for t in (sa, sb)]
    avals, bvals = _values(shapes[0]), _values(shapes[1])
    rng = random.Random(8)
    picks = sorted(set(bvals[:3] + bvals[-3:] + [v for v in (-1, 0, 1, 2, 64, -64, 85, -86) if v in bvals]
                       + rng.sample(bvals, 4)))
    assert _booth_products(*shapes, [(x, y) for x in avals for y in picks]) == []


@pytest.mark.parametrize("sa,sb", [("s5", "s5"), ("u4", "s3"), ("s1", "s4"), ("u1", "u3"), ("s8", "u3")])
def test_booth_multiplier_registered(sa, sb):
    """register=enable: the product of the operands of the last enabled cycle, exact; a low
    enable holds it."""
    from amaranth.hdl import Module, Signal, signed, unsigned
    from tensorforge.rtl.systolic.booth import booth_multiply
    shapes = [(signed if t[0] == "s" else unsigned)(int(t[1:])) for t in (sa, sb)]
    m = Module()
    a, b, en = Signal(shapes[0], name="a"), Signal(shapes[1], name="b"), Signal(name="en")
    p = booth_multiply(m, a, b, name="bm", register=en)
    pairs = [(x, y) for x in _values(shapes[0]) for y in _values(shapes[1])]
    rng = random.Random(3)
    bad = []

    async def bench(ctx):
        expect = None
        for av, bv in pairs:
            ctx.set(a, av)
            ctx.set(b, bv)
            hold = expect is not None and rng.random() < 0.2
            ctx.set(en, 0 if hold else 1)
            await ctx.tick()
            if not hold:
                expect = av * bv
            if ctx.get(p) != expect:
                bad.append((av, bv, hold, ctx.get(p), expect))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert bad == []


@pytest.mark.slow
@pytest.mark.parametrize("sa,sb", [("s8", "s8"), ("u8", "s8"), ("u8", "u8")])
def test_booth_multiplier_8x8_exhaustive(sa, sb):
    from amaranth.hdl import signed, unsigned
    shapes = [(signed if t[0] == "s" else unsigned)(int(t[1:])) for t in (sa, sb)]
    pairs = [(x, y) for x in _values(shapes[0]) for y in _values(shapes[1])]
    assert _booth_products(*shapes, pairs) == []


# -- FP16 x FP16 + FP32 (needs rtl/fp/fma.py) ----------------------------------------------
def _fma_available():
    try:
        FloatArith()
    except ImportError:
        return False
    return True


def _fp_gemm(M, K, N, *, rows, cols, dataflow, stages=1, seed=7, p_valid=1.0, p_ready=1.0):
    arith = FloatArith(in_format=FP16, acc_format=FP32, stages=stages)
    rng = np.random.default_rng(seed)
    specials = np.array([0x0000, 0x8000, 0x0001, 0x83FF, 0x7BFF, 0xFC00, 0x7E00, 0x3C00], np.uint16)
    x = rng.normal(size=(M, K)).astype(np.float16).view(np.uint16)
    w = rng.normal(size=(K, N)).astype(np.float16).view(np.uint16)
    x[0, :] = specials[:K]          # signed zeros, subnormals, max finite, -inf, NaN in row 0
    w[:, 0] = 0x8000                # -0 weights in column 0 (the +0 start and padding keep +0)
    dut = SystolicArray(rows=rows, cols=cols, dataflow=dataflow, arith=arith)
    beats = gs.stream_beats(x, w, rows=rows, cols=cols, dataflow=dataflow, in_width=16)
    y_rows, n_cycles = run_array(dut, beats, seed=seed, p_valid=p_valid, p_ready=p_ready)
    got = gs.assemble(y_rows, beats["y"], M, N)
    golden = gs.gemm(x, w, in_format=FP16, acc_format=FP32, rows=rows, cols=cols, dataflow=dataflow)
    mismatches = int(np.count_nonzero(got != golden))
    assert mismatches == 0, f"{mismatches} mismatches (seed {seed})\n{got}\n{golden}"
    if p_ready == 1.0 and p_valid == 1.0:
        assert n_cycles == gs.cycles(M, K, N, rows, cols, dataflow, mac_latency=stages)


@pytest.mark.skipif(not _fma_available(), reason="rtl/fp/fma.py (FMA) not available yet")
def test_fp16_fp32_ws_gemm():
    # K = 5 on 2 rows: three K tiles (chain in the column, FP32 adds in the accumulator)
    _fp_gemm(3, 5, 3, rows=2, cols=2, dataflow="ws")


@pytest.mark.skipif(not _fma_available(), reason="rtl/fp/fma.py (FMA) not available yet")
def test_fp16_fp32_os_gemm():
    _fp_gemm(3, 5, 3, rows=2, cols=2, dataflow="os")
    _fp_gemm(3, 6, 3, rows=2, cols=2, dataflow="os", seed=8, p_valid=0.7, p_ready=0.6)


@pytest.mark.slow
@pytest.mark.skipif(not _fma_available(), reason="rtl/fp/fma.py (FMA) not available yet")
def test_fp16_fp32_ws_pipelined_fma():
    _fp_gemm(4, 5, 3, rows=2, cols=2, dataflow="ws", stages=2)
    _fp_gemm(4, 5, 3, rows=2, cols=2, dataflow="ws", stages=2, seed=9, p_valid=0.7, p_ready=0.6)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_int8_16x16(dataflow):
    # a 16x16 int8 array on a ragged GEMM with several tiles in every dimension
    check_int_gemm(40, 37, 35, rows=16, cols=16, dataflow=dataflow, seed=16)
