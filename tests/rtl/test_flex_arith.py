"""FlexArith: the systolic array (rtl/systolic) running on flex16 mantissas, against golden.flex.

The array's results are the exact wide accumulators of ``golden.flex.flex_gemm_int``;
``FlexArith.convert`` turns them into mantissas + overflow flags exactly as
``golden.flex.round_shift`` (so array + convert == ``flex_gemm_int``, bit for bit).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from tensorforge.golden import systolic as gs
from tensorforge.golden.flex import flex_gemm_int, round_shift
from tensorforge.golden.formats import FLEX16_5, FlexFormat, IntFormat
from tensorforge.rtl.flex import FlexArith
from tensorforge.rtl.systolic import SystolicArray

from test_systolic_array import run_array

SEED = 606


def _convert(arith, accs, shifts):
    """Run FlexArith.convert combinationally over (acc, shift) pairs; return (out, overflow) lists."""
    m = Module()
    acc = Signal(arith.acc_shape, name="acc")
    shift = Signal(signed(8), name="shift")
    out, ovf = arith.convert(m, acc=acc, shift=shift, name="cv")
    outs, ovfs = [], []

    async def bench(ctx):
        for a, s in zip(accs, shifts):
            ctx.set(acc, int(a))
            ctx.set(shift, int(s))
            outs.append(ctx.get(out))
            ovfs.append(ctx.get(ovf))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return np.array(outs), np.array(ovfs, dtype=bool)


def _signed(v, bits):
    v = int(v)
    return v - (1 << bits) if v >> (bits - 1) else v


@pytest.mark.parametrize("dataflow,M,K,N,rows,cols", [("ws", 5, 7, 3, 2, 2), ("os", 4, 9, 3, 2, 3)])
def test_flex_gemm_on_the_systolic_array(dataflow, M, K, N, rows, cols):
    arith = FlexArith()
    rng = np.random.default_rng(SEED)
    x = rng.integers(-32768, 32768, size=(M, K))
    w = rng.integers(-32768, 32768, size=(K, N))
    x[0, :] = -32768                       # the largest products: (-2**15)**2 = 2**30, K of them
    w[:, 0] = -32768
    dut = SystolicArray(rows=rows, cols=cols, dataflow=dataflow, arith=arith)
    beats = gs.stream_beats(x, w, rows=rows, cols=cols, dataflow=dataflow, in_width=16, weight_width=16)
    y_rows, _ = run_array(dut, beats, seed=SEED, p_valid=0.8, p_ready=0.8, max_cycles=20000)
    got = gs.assemble(y_rows, beats["y"], M, N)
    acc = np.vectorize(lambda v: _signed(v, arith.acc_bits), otypes=[object])(got)
    exact = x.astype(object) @ w.astype(object)
    assert (acc == exact).all(), f"seed {SEED}: array accumulators differ from the exact products"
    # the output conversion: one shift per operation, around full scale (overflow and not)
    flat = np.array(exact.ravel(), dtype=np.int64)
    top = max(int(abs(v)).bit_length() for v in flat)
    for shift in (top - 16, top - 15, top - 14, top + 3, 0, -3):
        out, ovf = _convert(arith, flat, [shift] * len(flat))
        g_out, g_ovf = flex_gemm_int(x, w, shift)
        assert out.tolist() == g_out.ravel().tolist() and ovf.tolist() == g_ovf.ravel().tolist(), \
            f"seed {SEED}, shift {shift}"


def test_convert_boundaries():
    arith = FlexArith(acc_bits=40)
    accs = [65535, 65534, 65533, -65536, -65537, -65538, -65539, 1 << 38, -(1 << 38), 0, 3, -3, 1]
    shifts = [1, 1, 1, 1, 1, 1, 1, 23, 23, 5, -13, -14, -16]
    out, ovf = _convert(arith, accs, shifts)
    g_out, g_ovf = round_shift(np.array(accs), np.array(shifts), 16)
    assert out.tolist() == g_out.tolist() and ovf.tolist() == g_ovf.tolist()
    assert ovf.tolist() == [True, False, False, False, False, True, True, True, False, False, False, True, True]


def test_properties_and_errors():
    a = FlexArith()
    assert (a.in_format, a.weight_format, a.acc_format, a.mac_latency, a.zero) == \
        (FLEX16_5, FLEX16_5, IntFormat(48), 1, 0)
    assert a.tag == "flex16p5_i48" and repr(a) == "FlexArith(in_format=flex16+5, acc_bits=48)"
    assert FlexArith(in_format=FlexFormat(8, 4), acc_bits=16).acc_shape.width == 16
    with pytest.raises(TypeError, match=r"^in_format must be a FlexFormat \(e\.g\. FlexFormat\(16, 5\) for "
                                        r"flex16\+5\), not IntFormat\(i16\)$"):
        FlexArith(in_format=IntFormat(16))
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer between 32 and 64, not 31$"):
        FlexArith(acc_bits=31)
