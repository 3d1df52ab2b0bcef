"""The flexpoint generators ``flexdot`` and ``maxabs``: registry entries, top names, manifests and
deterministic Verilog that ``verilator --lint-only -Wall`` passes with sim/tensorforge.vlt."""

from __future__ import annotations

import pytest

from tensorforge.gen import manifest, registry
from tensorforge.sim import runner


def test_generators_registered_with_parameters():
    gens = registry.generators()
    assert [p.name for p in gens["flexdot"].params] == ["mode", "k", "lanes", "man_bits", "acc_bits", "shift_bits",
                                                        "stages"]
    assert [p.name for p in gens["maxabs"].params] == ["lanes", "man_bits", "stages"]
    assert gens["flexdot"].bench == gens["maxabs"].bench == "stream"
    assert gens["flexdot"].param("mode").choices == ("flex", "dfp16")


@pytest.mark.parametrize("gen,params,top", [
    ("flexdot", {}, "flexdot_flex_k4_l1_m16_a34_sh8_s4"),
    ("flexdot", {"mode": "dfp16", "k": 64, "lanes": 4, "stages": 5}, "flexdot_dfp16_k64_l4_m16_a38_sh8_s5"),
    ("flexdot", {"acc_bits": 48, "shift_bits": 7, "stages": 2}, "flexdot_flex_k4_l1_m16_a48_sh7_s2"),
    ("maxabs", {}, "maxabs_l1_m16_s1"),
    ("maxabs", {"lanes": 8, "man_bits": 8, "stages": 0}, "maxabs_l8_m8_s0"),
])
def test_top_names(gen, params, top):
    g = registry.get(gen)
    assert g.top(registry.resolve(g, params)) == top


@pytest.mark.parametrize("params,message", [
    ({"acc_bits": 30}, "acc_bits must be an integer between 34 (2*man_bits + ceil(log2 k): exact accumulation of "
                       "k=4 products of 16-bit mantissas) and 96, not 30"),
    ({"mode": "flex", "stages": 5}, "stages must be an integer between 0 and 4, not 5"),
    ({"mode": "dfp16", "shift_bits": 4}, "shift_bits must be at least 6 in dfp16 mode"),
    ({"mode": "fixed"}, "--mode must be one of flex, dfp16, not 'fixed'"),
])
def test_registry_rejects_bad_combinations(params, message):
    with pytest.raises(registry.ParamError) as info:
        registry.resolve("flexdot", params)
    assert str(info.value).startswith(message), str(info.value)


def test_verilog_is_deterministic():
    params = {"mode": "dfp16", "k": 2, "lanes": 2, "stages": 3}
    first, again = manifest.elaborate("flexdot", params), manifest.elaborate("flexdot", params)
    assert first.verilog == again.verilog and first.sha256 == again.sha256
    assert "/work" not in first.verilog and "src =" not in first.verilog


LINT = [
    ("flexdot", {"k": 2, "lanes": 2, "stages": 2}),
    ("flexdot", {"mode": "dfp16", "k": 3, "lanes": 2, "stages": 5}),
    ("flexdot", {"k": 1, "stages": 0}),
    ("maxabs", {"lanes": 3, "stages": 2}),
    ("maxabs", {"lanes": 1, "stages": 0}),
]


@pytest.mark.parametrize("gen,params", LINT, ids=[f"{g}-{'-'.join(map(str, p.values()))}" for g, p in LINT])
def test_verilog_manifest_and_lint(gen, params, tmp_path):
    art = manifest.elaborate(gen, params)
    assert art.manifest["latency"] == params["stages"] and art.manifest["initiation_interval"] == 1
    payload = {p["name"]: p for p in art.manifest["ports"]}
    fin = {f["name"]: f["format"] for f in payload["i__payload"]["fields"]}
    fout = {f["name"]: f["format"] for f in payload["o__payload"]["fields"]}
    if gen == "flexdot":
        assert fin[f"a[{params.get('lanes', 1) - 1}][{params['k'] - 1}]"] == "i16"
        assert fout["out[0]"] == "i16" and fout["overflow[0]"] is None
        assert ("shift" in fin) == (params.get("mode", "flex") == "flex") != ("shift" in fout)
    else:
        assert fin["man[0]"] == "i16" and fin["start"] is None and fout["gamma"] == "u16"
    path = tmp_path / f"{art.top}.v"
    path.write_text(art.verilog)
    runner.lint(path)          # raises LintError on any warning the waiver file does not cover
