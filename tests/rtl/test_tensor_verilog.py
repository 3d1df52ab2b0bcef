"""The tensor-core generators: registry entries, top names, manifests, deterministic Verilog that
``verilator --lint-only -Wall`` passes with the project's waiver file (sim/tensorforge.vlt)."""

from __future__ import annotations

import pytest

from tensorforge.gen import manifest, registry
from tensorforge.golden import dot as gd
from tensorforge.golden.formats import BF16, FP8_E4M3, FP16, FP32
from tensorforge.sim import runner


def test_generators_registered_with_parameters():
    gens = registry.generators()
    assert {"dot", "mma"} <= set(gens)
    assert [p.name for p in gens["dot"].params] == ["k", "in_format", "acc_format", "semantics", "F", "L", "stages"]
    assert [p.name for p in gens["mma"].params][:3] == ["m", "n", "k"]
    assert gens["dot"].bench == "stream" and gens["mma"].bench == "stream"
    assert gens["dot"].param("semantics").choices == ("chain", "exact", "volta", "ampere", "hopper", "hopper_fp8")


@pytest.mark.parametrize("gen,params,top", [
    ("dot", {}, "dot_k4_e5m10_e8m23_volta_s7"),
    ("dot", {"k": 8, "in_format": BF16, "semantics": "exact", "stages": 7}, "dot_k8_e8m7_e8m23_exact_s7"),
    ("dot", {"k": 8, "F": 24, "L": 8, "stages": 5}, "dot_k8_e5m10_e8m23_volta_f24_l8_s5"),
    ("dot", {"acc_format": FP16, "semantics": "ampere"}, "dot_k4_e5m10_e5m10_ampere_s7"),
    ("mma", {}, "mma_m4n4k4_e5m10_e8m23_volta_s7"),
    ("mma", {"m": 2, "n": 2, "in_format": FP8_E4M3, "semantics": "hopper_fp8"}, "mma_m2n2k4_e4m3fn_e8m23_hopper_fp8_s7"),
])
def test_top_names(gen, params, top):
    g = registry.get(gen)
    assert g.top(registry.resolve(g, params)) == top


def test_overrides_make_custom_nvidia_semantics():
    comp, _, _ = registry.build("dot", {"k": 8, "F": 24, "L": 8, "stages": 1})
    comp._MustUse__silence = True
    assert comp.semantics == gd.Nvidia(F=24, L=8, e_zero=-131, out_rounding="rtz")
    comp, _, _ = registry.build("dot", {"acc_format": FP16, "stages": 1})
    comp._MustUse__silence = True
    assert comp.semantics == gd.VOLTA_FP16


@pytest.mark.parametrize("params,message", [
    ({"semantics": "chain", "F": 20}, "F and L apply only to nvidia semantics, not to chain"),
    ({"stages": 9}, "stages must be an integer between 0 and 7 for k=4 volta semantics, not 9"),
    ({"semantics": "hopper_fp8", "acc_format": FP16}, "out_frac_bits of hopper_fp8 must be at most"),
    ({"in_format": FP32}, "--in-format must be one of e5m10, e8m7, tf32, e4m3fn, e5m2, not FloatFormat(e8m23)"),
])
def test_registry_rejects_bad_combinations(params, message):
    with pytest.raises(registry.ParamError) as info:
        registry.resolve("dot", params)
    assert str(info.value).startswith(message), str(info.value)


def test_cli_text_parameters():
    values = registry.resolve("dot", {"k": "8", "in_format": "bf16", "semantics": "Ampere", "F": "0",
                                      "L": "0", "stages": "4"}, from_text=True)
    assert values["k"] == 8 and values["in_format"] == BF16 and values["semantics"] == "ampere"


LINT = [
    ("dot", {"k": 2, "stages": 2}),
    ("dot", {"k": 2, "in_format": FP8_E4M3, "acc_format": FP16, "semantics": "exact", "stages": 3}),
    ("dot", {"k": 2, "semantics": "chain", "stages": 3}),
    ("mma", {"m": 1, "n": 2, "k": 4, "semantics": "volta", "stages": 4}),
]


def test_verilog_is_deterministic():
    params = {"k": 2, "in_format": FP8_E4M3, "semantics": "volta", "stages": 1}
    first, again = manifest.elaborate("dot", params), manifest.elaborate("dot", params)
    assert first.verilog == again.verilog and first.sha256 == again.sha256
    assert "/work" not in first.verilog and "src =" not in first.verilog


@pytest.mark.parametrize("gen,params", LINT, ids=[f"{g}-{'-'.join(map(str, p.values()))}" for g, p in LINT])
def test_verilog_manifest_and_lint(gen, params, tmp_path):
    art = manifest.elaborate(gen, params)
    assert art.manifest["latency"] == params["stages"] and art.manifest["initiation_interval"] == 1
    payload = {p["name"]: p for p in art.manifest["ports"]}
    fields = {f["name"]: f["format"] for f in payload["i__payload"]["fields"]}
    assert fields["c" if gen == "dot" else "c[0][0]"] == str(params.get("acc_format", FP32))
    assert fields["a[1]" if gen == "dot" else "a[0][1]"] == str(params.get("in_format", FP16))
    path = tmp_path / f"{art.top}.v"
    path.write_text(art.verilog)
    runner.lint(path)          # raises LintError on any warning the waiver file does not cover
