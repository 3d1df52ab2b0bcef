"""Formal proofs (SymbiYosys, smtbmc + yices) of the stream cores, and the harness catching a broken core.

Default tier (``make test``, about 2-3 minutes on a loaded 2-core machine):
- FMA e5m2 x e5m2 + e5m2, stages=2: output stability, counting, latency by
  k-induction; pipelined == unpipelined (stages=0) by k-induction with
  o.ready high, and by BMC (depth 5) under free back-pressure.
- FMA e5m2 (stages=0, combinational): the protocol properties.
- A deliberately broken core (ignores back-pressure, overwrites its stalled
  output) must FAIL output stability and counting.
Slow tier: every ``stages`` value 1..7 for e5m2 and e4m3 (e4m3 accumulator),
and the e4m3 x e4m3 + FP16 configuration with bounded depths.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from tensorforge.gen.formal import PROPERTIES, HarnessError, plan, prove
from tensorforge.gen.formal.harness import pipeline_valid_registers, stream_ports
from tensorforge.gen.registry import Generator
from tensorforge.golden.formats import FP8_E4M3, FP8_E5M2, FP16

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


def test_broken_core_fails_the_harness():
    top, results = prove(BROKEN, {}, build_root=BUILD_ROOT, bmc_depth=8, timeout=300)
    got = _by_name(results)
    assert got["output_stable"].status == "failed", _show(results)
    assert got["count"].status == "failed", _show(results)
    # a 1-deep core with an o__valid register: the valid-chain invariant is assumed to hold -- and fails
    assert got["count"].mode == "prove"
    assert got["output_stable"].trace and Path(got["output_stable"].trace).is_file()
    # with o.ready held high the broken core behaves: the latency property alone cannot see the bug
    assert got["latency"].status == "proved", _show(results)


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
    assert [(p["property"], p["status"]) for p in out["properties"]] == [("output_stable", "proved")]


def test_prove_cli_rejects_unknown_property(capsys):
    from tensorforge.gen.cli import main
    status = main(["prove", "fma", "--in-format", "fp8e5m2", "--acc-format", "fp8e5m2", "--property", "nope"])
    assert status == 2
    assert "--property must be one of output_stable, count, latency, equiv_flow, equiv_backpressure, not 'nope'" \
        in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("in_format,acc_format", [(FP8_E5M2, FP8_E5M2), (FP8_E4M3, FP8_E4M3)])
@pytest.mark.parametrize("stages", range(1, 8))
def test_every_stages_value_equals_unpipelined(in_format, acc_format, stages):
    params = {"in_format": in_format, "acc_format": acc_format, "stages": stages}
    top, results = prove("fma", params, build_root=BUILD_ROOT,
                         properties=["output_stable", "count", "latency", "equiv_flow"], timeout=3600)
    assert all(r.status == "proved" for r in results), _show(results)


@pytest.mark.slow
def test_fp8_with_fp16_accumulator_bounded():
    """e4m3 x e4m3 + FP16: protocol proofs; the equivalence is bounded (BMC) -- k-induction of the
    miter does not finish in reasonable time with yices (the limit found: > 15 min)."""
    params = {"in_format": FP8_E4M3, "acc_format": FP16, "stages": 2}
    top, results = prove("fma", params, build_root=BUILD_ROOT, bmc_depth=4,
                         properties=["output_stable", "count", "latency", "equiv_backpressure"], timeout=7200)
    got = _by_name(results)
    assert all(got[p].status == "proved" for p in ("output_stable", "count", "latency")), _show(results)
    assert got["equiv_backpressure"].status == "bmc-passed", _show(results)
