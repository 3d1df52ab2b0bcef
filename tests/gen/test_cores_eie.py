"""Generators ``eie`` and ``eie_pe``: registry entries, top names, manifest, parameter errors; the load-balance experiment."""

from __future__ import annotations

import numpy as np
import pytest

from tensorforge.gen import registry
from tensorforge.gen.cli import main as cli_main
from tensorforge.gen.cores_eie import pe_top_name, top_name
from tensorforge.gen.experiments import eie_load_balance as exp
from tensorforge.gen.manifest import elaborate
from tensorforge.golden.eie import cycles, entry_counts
from tensorforge.golden.formats import IntFormat


def test_registered_with_defaults():
    gen = registry.get("eie")
    p = registry.resolve(gen, {})
    assert (p["n_pe"], p["queue_depth"], p["rows"], p["max_cols"]) == (4, 8, 64, 1024)
    assert top_name(p) == "eie_4pe_d8_r64_c1024_m1024"
    p2 = registry.resolve(gen, {"n_pe": 16, "acc_width": 40, "act_format": IntFormat(12)})
    assert top_name(p2) == "eie_16pe_d8_r64_c1024_m1024_acc40_ai12"


def test_pe_generator_registered_with_defaults_and_manifest():
    gen = registry.get("eie_pe")
    p = registry.resolve(gen, {})
    assert (p["queue_depth"], p["rows"], p["max_cols"], p["matrix_depth"]) == (8, 64, 1024, 1024)
    assert pe_top_name(p) == "eie_pe_d8_r64_c1024_m1024"
    assert pe_top_name(registry.resolve(gen, {"queue_depth": 2, "acc_width": 40})) == "eie_pe_d2_r64_c1024_m1024_acc40"
    with pytest.raises(registry.ParamError, match="--queue-depth must be an integer between 1 and 64, not 0"):
        registry.resolve("eie_pe", {"queue_depth": "0"}, from_text=True)
    art = elaborate("eie_pe", {"rows": 4, "max_cols": 16, "matrix_depth": 8})
    assert art.top == "eie_pe_d8_r4_c16_m8"
    ports = {q["name"]: q for q in art.manifest["ports"]}
    assert {"act__payload", "load__payload", "rd__payload", "o__payload", "shift", "relu", "clear", "idle",
            "error", "pop", "take", "issue"} <= set(ports)
    assert ports["o__payload"]["fields"][0]["format"] == "i16"
    assert "module eie_pe_d8_r4_c16_m8" in art.verilog


@pytest.mark.parametrize("params,message", [
    ({"n_pe": "0"}, "--n-pe must be an integer between 1 and 256, not 0"),
    ({"queue_depth": "65"}, "--queue-depth must be an integer between 1 and 64, not 65"),
    ({"row_bits": "24"}, "row_bits must be a multiple of codebook_bits + index_bits = 8 holding a power-of-two"),
    ({"act_format": "u16"}, "act_format must be a signed IntFormat"),
])
def test_bad_params(params, message):
    with pytest.raises(registry.ParamError, match=message.replace("+", r"\+")):
        registry.resolve("eie", params, from_text=True)


def test_manifest_ports_and_formats():
    art = elaborate("eie", {"n_pe": 2, "rows": 4, "max_cols": 16, "matrix_depth": 8})
    ports = {p["name"]: p for p in art.manifest["ports"]}
    assert art.top == "eie_2pe_d8_r4_c16_m8"
    assert [f["name"] for f in ports["load__payload"]["fields"]] == ["target", "pe", "addr", "data"]
    assert ports["o__payload"]["fields"][0]["format"] == "i16"
    assert {"start__payload", "busy", "done", "error", "cycles", "broadcast"} <= set(ports)
    assert "module eie_2pe_d8_r4_c16_m8" in art.verilog


def test_generate_command(tmp_path, capsys):
    assert cli_main(["generate", "eie", "--n-pe", "2", "--rows", "4", "--max-cols", "16", "--matrix-depth", "8",
                     "-o", str(tmp_path)]) == 0
    assert (tmp_path / "eie_2pe_d8_r4_c16_m8.v").is_file()


def test_load_balance_experiment_small(tmp_path):
    res = exp.run(tmp_path, seed=1, shapes=((256, 512),), depths=(1, 2, 8), pes=(4, 16), rtl_checks=False)
    table = res["table"]["256x512"]
    for n_pe in (4, 16):
        lb = [table[n_pe][d]["load_balance"] for d in (1, 2, 8)]
        assert lb == sorted(lb) and 0 < lb[0] and lb[-1] <= 1      # deeper queues never hurt here
    mask, a = exp._pattern(256, 512, 1)
    r = cycles(entry_counts(mask, 16), a, queue_depth=8)
    assert table[16][8]["compute"] == r.compute
    assert (tmp_path / "eie_load_balance.png").is_file()
    assert "| 8 |" in exp.summary(res)


def test_rtl_run_matches_model():
    from tensorforge.golden.eie import compress, sparse_workload, spmv
    W, a = sparse_workload(32, 48, 0.2, 0.5, seed=4)
    layer = compress(W, 2)
    vals, cyc = exp.rtl_run(layer, a, 2)
    assert np.array_equal(vals, spmv(layer, a))
    assert cyc == cycles(layer, a, queue_depth=2).total
