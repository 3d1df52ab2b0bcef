"""Stream driver and combinational checker shared by the RTL tests (test_fp_support,
test_tensor_support, test_tensor_adder_tree, test_tensor_alignment_planner).

:func:`drive_stream` pushes raw payload words through any stream core (``i``/``o``,
valid/ready) in the Amaranth simulator with random input gaps and random output
back-pressure, checks the stream contract on both sides and returns the output words in
order; :func:`fields_of`, :func:`pack` and :func:`unpack` convert between payload words
and manifest fields (``a[0]``, ``c``, ``d[1][0]``...). :func:`check_combinational` applies
vectors to a combinational component and compares what it reads back with a model.
:func:`vector_count` scales CI-sized vector counts with ``TF_VECTORS``.
"""

from __future__ import annotations

import os
import random

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from tensorforge.gen.manifest import payload_fields


def vector_count(default: int, minimum: int = 8) -> int:
    """``default`` scaled by TF_VECTORS (default 1000 = the CI size): TF_VECTORS=10000 gives 10x."""
    scale = int(os.environ.get("TF_VECTORS", "1000"))
    return max(minimum, default * scale // 1000)


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


def check_combinational(dut, vectors, *, apply, observe, model, seed: int, describe=repr):
    """For each vector: ``apply(ctx, vector)`` sets the inputs of the combinational ``dut``,
    ``observe(ctx)`` reads its outputs, and they must equal ``model(vector)``. Asserts at
    the end, naming the seed, the mismatch count and the first mismatches."""
    bad = []

    async def bench(ctx):
        for vector in vectors:
            apply(ctx, vector)
            got, want = observe(ctx), model(vector)
            if got != want:
                bad.append(f"{describe(vector)}: got {got} expected {want}")

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, f"seed {seed}: {len(bad)} mismatches of {len(vectors)}:\n" + "\n".join(bad[:8])


def drive_stream(core, words, *, seed: int, p_valid: float, p_ready: float) -> list[int]:
    """Stream the payload ``words`` (ints, the whole ``i`` payload each) through ``core``;
    return the ``o`` payload words in output order.

    Random input gaps (valid low with probability 1 - p_valid) and random back-pressure
    (ready low with probability 1 - p_ready). The bench obeys the stream rules as a source
    (valid held with a stable payload until accepted) and asserts that the core does too
    (output valid and payload stable while stalled), and that every input comes out within
    20 cycles per vector + 200."""
    n = len(words)
    top = Module()
    top.submodules.dut = core
    heartbeat = Signal()                      # gives stages=0 cores a clock domain to tick
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
            # a stream source keeps valid (and its payload) until the transfer happens
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
                    errors.append(f"cycle {cycles}: output changed while stalled: {stalled:#x} -> {word:#x}")
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
    return outputs
