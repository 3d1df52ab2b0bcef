"""CreditOutputQueue behind a free-running delay line: every result comes out once, in order,
under random offers, random retirement and random back-pressure; full throughput with
``o.ready`` high; a stalled output holds; parameter errors."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from tensorforge.rtl.output_queue import CreditOutputQueue


class _FreeRunningPipe(Elaboratable):
    """``latency`` registers (no enable) carrying (valid, emit, data) into a queue of
    ``latency + 1`` entries; a transaction with ``emit == 0`` is retired at the end."""

    def __init__(self, latency, width=12):
        self.latency = latency
        self.in_valid = Signal()
        self.in_emit = Signal()
        self.in_data = Signal(width)
        self.queue = CreditOutputQueue(width=width, depth=latency + 1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = q = self.queue
        accept = Signal()
        m.d.comb += [accept.eq(self.in_valid & q.can_accept), q.accept.eq(accept)]
        valid, emit, data = accept, self.in_emit, self.in_data
        for k in range(self.latency):
            v, e, d = Signal(name=f"v{k}"), Signal(name=f"e{k}"), Signal.like(data, name=f"d{k}")
            m.d.sync += [v.eq(valid), e.eq(emit), d.eq(data)]
            valid, emit, data = v, e, d
        m.d.comb += [q.retire.eq(valid & ~emit), q.result_valid.eq(valid & emit), q.result.eq(data)]
        return m


def _run(latency, *, seed, p_offer, p_emit, p_ready, cycles=1500, stall_first=0):
    """``stall_first``: ``o.ready`` is low for that many cycles first, then random."""
    rng = random.Random(seed)
    dut = _FreeRunningPipe(latency)
    q = dut.queue
    log = {"expected": [], "got": [], "refused_with_ready": 0, "hold_errors": 0}

    async def bench(ctx):
        counter = 0
        held = None     # (payload) of a stalled output beat
        for cycle in range(cycles):
            offer = rng.random() < p_offer
            emit = rng.random() < p_emit
            ready = rng.random() < p_ready and cycle >= stall_first
            ctx.set(dut.in_valid, offer)
            ctx.set(dut.in_emit, emit)
            ctx.set(dut.in_data, counter)
            ctx.set(q.o.ready, ready)
            can = ctx.get(q.can_accept)
            if offer and can and emit:
                log["expected"].append(counter)
            if offer and can:
                counter = (counter + 1) % 4096
            if ready and not can:
                log["refused_with_ready"] += 1
            valid = ctx.get(q.o.valid)
            payload = ctx.get(q.o.payload)
            if held is not None and (not valid or payload != held):
                log["hold_errors"] += 1
            held = payload if valid and not ready else None
            if valid and ready:
                log["got"].append(payload)
            await ctx.tick()
        ctx.set(dut.in_valid, 0)
        ctx.set(q.o.ready, 1)
        for _ in range(latency + 2 * (latency + 1)):
            if ctx.get(q.o.valid):
                log["got"].append(ctx.get(q.o.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return log


@pytest.mark.parametrize("latency", [1, 2, 5])
@pytest.mark.parametrize("seed", [1, 2])
def test_every_result_once_in_order_under_back_pressure(latency, seed):
    log = _run(latency, seed=100 * latency + seed, p_offer=0.8, p_emit=0.7, p_ready=0.5)
    assert log["hold_errors"] == 0, f"seed {seed}: a stalled output changed"
    assert len(log["expected"]) > 200, "too few transactions to mean anything"
    assert log["got"] == log["expected"], (f"seed {seed}: {len(log['got'])} results out, "
                                           f"{len(log['expected'])} expected")


@pytest.mark.parametrize("latency", [1, 4])
def test_full_throughput_when_output_is_always_ready(latency):
    log = _run(latency, seed=7, p_offer=1.0, p_emit=0.6, p_ready=1.0, cycles=300)
    assert log["refused_with_ready"] == 0
    assert len(log["expected"]) == len(log["got"]) > 150


def test_full_queue_takes_a_transaction_as_one_leaves():
    # after a stall has filled the queue, o.ready alone keeps one transaction per cycle moving
    log = _run(3, seed=5, p_offer=1.0, p_emit=1.0, p_ready=1.0, cycles=60, stall_first=20)
    assert log["refused_with_ready"] == 0
    assert log["got"] == log["expected"] and len(log["expected"]) == 4 + 40


def test_queue_fills_then_refuses():
    # o.ready never high: exactly depth = latency + 1 transactions are taken, then none
    log = _run(3, seed=3, p_offer=1.0, p_emit=1.0, p_ready=0.0, cycles=50)
    assert len(log["expected"]) == 4
    assert log["got"] == log["expected"]      # drained after the run


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=0, depth=4), "width must be an integer >= 1, not 0"),
    (dict(width=8, depth=1), "depth must be an integer >= 2, not 1"),
    (dict(width=8, depth=True), "depth must be an integer >= 2, not True"),
])
def test_parameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CreditOutputQueue(**kwargs)
