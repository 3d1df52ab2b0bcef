"""cocotb on Verilator: the generated EIE array runs random compressed layers against golden.eie.

One 4-PE build (cached under build/sim/<top>) runs every job of a list in one simulator
process (:func:`tensorforge.sim.eie_driver.run_layers_sim`). Per job: every result equals
``golden.eie.spmv`` bit for bit, the cycles from ``start`` to ``done`` (bench count and the
``cycles`` output) equal ``golden.eie.cycles(...).total`` exactly, the broadcast count equals
the number of non-zero activations, no stream-protocol error, error flags 0 -- while the load
stream has random valid gaps and the read-out stream random back-pressure. Chained jobs take
the previous job's *received* results as input. Corrupted images raise their flag; with the
checked start they are not executed at all (every result 0); a clean checked start costs
exactly the check pass (``cycles(layer, ones).compute + 2``) more.
The 16-PE 256x256 configuration is ``slow``. ``TF_SEED`` changes layers and traffic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tensorforge.gen.cli import main as cli_main
from tensorforge.sim import eie_driver as drv
from tensorforge.sim.eie_driver import LayerJob

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"
SEED = int(os.environ.get("TF_SEED", "5"))

PE4 = dict(n_pe=4, queue_depth=8, rows=32, max_cols=128, matrix_depth=512)
PE4_TOP = "eie_4pe_d8_r32_c128_m512"


def _check(res):
    msgs = []
    for k, j in enumerate(res["jobs"]):
        if not j["passed"]:
            msgs.append(f"job {k}: " + "; ".join(drv.format_job(j, res["params"]["n_pe"])))
    assert res["passed"], f"seed {SEED}:\n" + "\n".join(msgs)


@pytest.mark.verilator
@pytest.mark.xdist_group("eie-4pe")
def test_eie_4pe_random_layers_chained_and_malformed():
    s = SEED
    jobs = [
        LayerJob(64, 64, 0.05, 0.1, seed=s),
        LayerJob(64, 64, 0.5, 1.0, seed=s + 1, gap=0.3, stall=0.4),
        LayerJob(128, 128, 0.09, 0.35, seed=s + 2),
        LayerJob(128, 96, 1.0, 0.5, seed=s + 3, gap=0.2, stall=0.5, relu=False),
        LayerJob(100, 128, 0.3, 0.7, seed=s + 4, stall=0.2),
        LayerJob(64, 100, 0.2, 0.4, seed=s + 5, gap=0.1, stall=0.3),          # chained pair:
        LayerJob(64, 64, 0.2, 0.4, seed=s + 6, gap=0.1, stall=0.3, chain=True),  # input = received results
        LayerJob(64, 64, 0.5, 1.0, seed=s + 7, corrupt="ptr_order", check=True),   # refused, all 0
        LayerJob(64, 65, 0.5, 1.0, seed=s + 8, corrupt="ptr_range"),               # run, flagged
        LayerJob(128, 32, 1.0, 1.0, seed=s + 9, corrupt="row_range", check=True),  # refused, all 0
        LayerJob(64, 64, 0.3, 0.5, seed=s + 10, check=True, stall=0.3),           # clean checked run
        LayerJob(64, 64, 0.3, 0.5, seed=s + 11),                                  # clean run after errors
    ]
    res = drv.run_layers_sim(PE4, jobs, build_root=BUILD_ROOT)
    _check(res)
    assert res["top"] == PE4_TOP
    clean = [j for j in res["jobs"] if not j["corrupt"]]
    assert all(j["mismatches"] == 0 and j["cycles"] == j["model_cycles"] for j in clean)
    assert [j["error"] & j["expected_error"] for j in res["jobs"] if j["corrupt"]] == [1, 2, 4]
    assert res["jobs"][-1]["error"] == 0


@pytest.mark.verilator
@pytest.mark.xdist_group("eie-4pe")
def test_sim_eie_command_json(capsys):
    argv = ["sim", "eie", *[f"--{k.replace('_', '-')}={v}" for k, v in PE4.items()],
            "--layer-rows", "96", "--layer-cols", "128", "--weight-density", "0.09", "--act-density", "0.35",
            "--layers", "2", "--check", "--gap", "0.2", "--stall", "0.2", "--seed", str(SEED),
            "--build-dir", str(BUILD_ROOT), "--json"]
    status = cli_main(argv)
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["passed"], f"seed {SEED}: " + json.dumps(
        [{k: j[k] for k in ("mismatches", "first_mismatches", "cycles", "cycles_port", "model_cycles", "error",
                            "protocol_errors", "broadcasts", "model_broadcasts", "first_protocol_errors")}
         for j in out["jobs"]])
    assert len(out["jobs"]) == 2 and out["jobs"][1]["chain"]
    for j in out["jobs"]:
        assert j["mismatches"] == 0 and j["cycles"] == j["model_cycles"] == j["cycles_port"]
        assert 0 < j["load_balance_efficiency"] <= 1


@pytest.mark.parametrize("argv,message", [
    (["sim", "eie", "--layer-rows", "8"], "needs --layer-rows R --layer-cols C"),
    (["sim", "eie", "--n-pe", "2", "--rows", "4", "--layer-rows", "64", "--layer-cols", "8",
      "--weight-density", "0.5", "--act-density", "0.5"], "needs n_pe * rows >= 64"),
    (["sim", "eie", "--layer-rows", "8", "--layer-cols", "8", "--weight-density", "1.5",
      "--act-density", "0.5"], "--weight-density: must be a number between 0 and 1, not '1.5'"),
])
def test_sim_eie_command_errors(argv, message, capsys):
    assert cli_main(argv + ["--build-dir", str(BUILD_ROOT)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.xdist_group("eie-16pe")
def test_eie_16pe_256x256():
    params = dict(n_pe=16, queue_depth=8, rows=16, max_cols=256, matrix_depth=512)
    s = SEED
    jobs = [LayerJob(256, 256, 0.09, 0.35, seed=s), LayerJob(256, 256, 1.0, 0.1, seed=s + 1, gap=0.2, stall=0.3),
            LayerJob(256, 256, 0.3, 1.0, seed=s + 2, stall=0.3),
            LayerJob(256, 256, 0.05, 0.5, seed=s + 3, gap=0.2, stall=0.2, chain=True)]
    res = drv.run_layers_sim(params, jobs, build_root=BUILD_ROOT)
    _check(res)
