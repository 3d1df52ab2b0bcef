"""Shared harness for the tensor-core RTL tests (tests/rtl/test_tensor_*.py).

- :func:`run_stream` drives any stream core (``i``/``o``) in the Amaranth simulator with
  random input gaps and random output back-pressure. Payloads are packed and unpacked
  by the manifest's field list (``a[0]``, ``c``, ``d[1][0]``...), so the same harness
  serves DotProductAdd and MMA; it checks the stream contract (a stalled output keeps
  valid and payload) and returns the output fields in order.
- :func:`check` compares against expected field arrays and prints the seed and the
  first mismatches with their inputs in hex.
- :func:`vector_count` scales CI-sized counts with ``TF_VECTORS`` (default 1000 = 1x).
"""

from __future__ import annotations

import os
import random

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from tensorforge.gen.manifest import payload_fields


def vector_count(default: int) -> int:
    """``default`` scaled by TF_VECTORS (default 1000 = the CI size): TF_VECTORS=10000 gives 10x."""
    scale = int(os.environ.get("TF_VECTORS", "1000"))
    return max(8, default * scale // 1000)


def fields_of(port):
    """[(name, offset, width)] of a stream's payload."""
    return payload_fields(port.payload.shape())


def pack(fields, values: dict, idx: int) -> int:
    word = 0
    for name, off, width in fields:
        word |= (int(values[name][idx]) & ((1 << width) - 1)) << off
    return word


def unpack(fields, word: int) -> dict:
    return {name: (word >> off) & ((1 << width) - 1) for name, off, width in fields}


def run_stream(core, inputs: dict, *, seed: int, p_valid: float = 0.8, p_ready: float = 0.8):
    """Stream ``inputs`` (manifest field name -> sequence of ints) through ``core``; return
    {output field: np.array(object)} in output order."""
    fin, fout = fields_of(core.i), fields_of(core.o)
    n = len(next(iter(inputs.values())))
    words = [pack(fin, inputs, k) for k in range(n)]
    top = Module()
    top.submodules.dut = core
    heartbeat = Signal()
    top.d.sync += heartbeat.eq(~heartbeat)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    outputs, errors = [], []
    i_payload, o_payload = core.i.payload.as_value(), core.o.payload.as_value()

    async def bench(ctx):
        rng = random.Random(seed)
        sent = cycles = 0
        stalled = None
        valid = False
        while len(outputs) < n:
            if not valid:
                valid = sent < n and rng.random() < p_valid
            ready = rng.random() < p_ready
            ctx.set(core.i.valid, valid)
            if sent < n:
                ctx.set(i_payload, words[sent])
            ctx.set(core.o.ready, ready)
            if ctx.get(core.o.valid):
                word = ctx.get(o_payload)
                if stalled is not None and stalled != word:
                    errors.append(f"cycle {cycles}: output changed while stalled")
                if ready:
                    outputs.append(word)
                    stalled = None
                else:
                    stalled = word
            elif stalled is not None:
                errors.append(f"cycle {cycles}: output valid dropped while stalled")
                stalled = None
            if valid and ctx.get(core.i.ready):
                sent += 1
                valid = False
            await ctx.tick()
            cycles += 1
            if cycles > 20 * n + 200:
                errors.append(f"timeout after {cycles} cycles: {sent} sent, {len(outputs)} received")
                break

    sim.add_testbench(bench)
    sim.run()
    assert not errors, f"seed {seed}: " + "; ".join(errors[:5])
    out = {name: np.array([unpack(fout, w)[name] for w in outputs], dtype=object) for name, _, _ in fout}
    return out


def check(got: dict, expected: dict, inputs: dict, *, seed: int, label: str):
    """Assert every expected field bit-exact; report the seed and the first mismatches in hex."""
    n = len(next(iter(inputs.values())))
    bad = []
    for k in range(n):
        diffs = [f"{f}: got {int(got[f][k]):#x} expected {int(expected[f][k]):#x}"
                 for f in expected if int(got[f][k]) != int(expected[f][k])]
        if diffs:
            ins = " ".join(f"{f}={int(v[k]):#x}" for f, v in inputs.items())
            bad.append(f"#{k} {ins}: " + "; ".join(diffs))
    assert not bad, f"{label} seed {seed}: {len(bad)} mismatches of {n}:\n" + "\n".join(bad[:8])


def dot_fields(a, b, c) -> dict:
    """(n, k), (n, k), (n,) arrays -> the DotProductAdd input field dict."""
    k = a.shape[1]
    out = {f"a[{j}]": a[:, j] for j in range(k)}
    out.update({f"b[{j}]": b[:, j] for j in range(k)})
    out["c"] = c
    return out


def test_pack_roundtrip():
    fields = [("x", 0, 4), ("y[0]", 4, 8), ("y[1]", 12, 8)]
    vals = {"x": [5], "y[0]": [0xAB], "y[1]": [0x1FF]}
    word = pack(fields, vals, 0)
    assert unpack(fields, word) == {"x": 5, "y[0]": 0xAB, "y[1]": 0xFF}
