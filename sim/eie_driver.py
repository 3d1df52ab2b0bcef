"""Host side of the EIE-array verification in Verilator: layers, images, golden results, scoring.

:func:`run_layers_sim` verifies one ``eie`` configuration on a list of :class:`LayerJob` s:

1. per job a random layer and input (:func:`tensorforge.golden.eie.sparse_workload`),
   compressed for the configuration (:func:`~tensorforge.golden.eie.compress`), turned into
   load commands (clear, codebook, both pointer banks and the sparse-matrix rows of every PE,
   the non-zero activations; command format in :class:`tensorforge.rtl.eie.EIEArray`);
   optionally corrupted (``corrupt`` = ``"ptr_order"``, ``"ptr_range"``, ``"row_range"``)
   to check the error flags (with ``check``: the start's check pass must refuse to execute
   it, every result 0); a ``chain`` job takes the previous job's *received* results as
   its input (the bench loads them), and its golden input is the previous golden output;
2. one Verilator build (``runner.prepare``/``runner.build``, cached in ``build/sim/<top>``)
   and one simulator run of :mod:`tensorforge.sim.eie_bench` for all jobs;
3. scoring: every result against :func:`~tensorforge.golden.eie.spmv` (bit for bit),
   measured cycles (``start`` accepted -> ``done``; the bench's count and the ``cycles``
   output) against :func:`~tensorforge.golden.eie.cycles` ``.total`` (exact: back-pressure
   on the load and read-out streams does not touch the compute phase), the error flags
   (0, or the expected flag for a corrupted job), and the load-balance efficiency
   ``entries processed / (n_pe * compute cycles)`` with ``compute = cycles - 3``.

``tensorforge sim eie [array params] --layer-rows R --layer-cols C --weight-density dw
--act-density da [--layers L] [--check] [--seed S] [--gap P] [--stall P] [--json]`` is :func:`run_sim`
(``--rows``/``--cols`` are taken by generator parameters -- ``eie --rows`` is the local rows
per PE, ``systolic --rows/--cols`` the array shape -- hence ``--layer-rows``/``--layer-cols``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..gen.cli import fraction, positive_int
from ..gen.registry import ParamError
from ..golden import eie as geie

__all__ = ["LayerJob", "layer_for", "commands", "write_jobs", "run_layers_sim", "format_job", "run_sim",
           "SIM_ARGUMENTS", "BENCH_MODULE", "CORRUPTIONS"]

BENCH_MODULE = "tensorforge.sim.eie_bench"
#: corruption name -> the error bit it must raise (rtl.eie.array ERR_*)
CORRUPTIONS = {"ptr_order": 1, "ptr_range": 2, "row_range": 4}
_CLEAR, _CODEBOOK, _EVEN, _ODD, _MATRIX, _ACT = 5, 0, 1, 2, 3, 4


@dataclass(frozen=True)
class LayerJob:
    """One layer run: shape, densities, seeds, traffic, optional chaining/corruption."""

    n_rows: int
    n_cols: int
    weight_density: float
    act_density: float
    seed: int = 1
    gap: float = 0.0
    stall: float = 0.0
    relu: bool = True
    chain: bool = False
    corrupt: str | None = None
    check: bool = False


def layer_for(params: dict, job: LayerJob):
    """``(layer, a)`` of a job for a configuration; raises ParamError if it does not fit."""
    W, a = geie.sparse_workload(job.n_rows, job.n_cols, job.weight_density, job.act_density, seed=job.seed)
    layer = geie.compress(W, params["n_pe"], params["codebook_bits"], params["index_bits"], params["weight_format"],
                          row_bits=params["row_bits"], pointer_bits=params["pointer_bits"])
    if job.n_rows > params["n_pe"] * params["rows"]:
        raise ParamError(f"a {job.n_rows}-row layer needs n_pe * rows >= {job.n_rows}; the array has "
                         f"{params['n_pe']} x {params['rows']}")
    if job.n_cols > params["max_cols"]:
        raise ParamError(f"a {job.n_cols}-column layer needs --max-cols >= {job.n_cols}, not {params['max_cols']}")
    need = max(len(r) for r in layer.matrix_rows)
    if need > params["matrix_depth"]:
        raise ParamError(f"this layer needs --matrix-depth >= {need} (sparse-matrix rows of the fullest PE), "
                         f"not {params['matrix_depth']}")
    if int(max(p[-1] for p in layer.p)) >= 1 << params["pointer_bits"]:
        raise ParamError(f"this layer's pointers do not fit --pointer-bits {params['pointer_bits']}")
    return layer, a


def commands(layer, a, *, corrupt=None, act_width=16, include_acts=True) -> np.ndarray:
    """Load commands ``(n, 4)`` uint64: target, pe, addr, data (see EIEArray)."""
    ev = [e.copy() for e in layer.ptr_even]
    od = [o.copy() for o in layer.ptr_odd]
    mat = [m.copy() for m in layer.matrix_rows]
    if corrupt == "ptr_order":             # PE 0: p[2] > p[3] -> column 2 decreasing
        ev[0][1] = od[0][1] + 1
    elif corrupt == "ptr_range":           # PE 0: last pointer far beyond the matrix memory
        od[0][-1] = (1 << layer.pointer_bits) - 1 if layer.n_cols % 2 else od[0][-1]
        if layer.n_cols % 2 == 0:
            ev[0][-1] = (1 << layer.pointer_bits) - 1
    elif corrupt == "row_range":           # PE 0: entry 0 gets z = max -> beyond its rows
        mat[0][0] |= np.uint64(((1 << layer.index_bits) - 1) << layer.codebook_bits)
    elif corrupt is not None:
        raise ValueError(f"corrupt must be one of {', '.join(CORRUPTIONS)} or None, not {corrupt!r}")
    rows = [(_CLEAR, 0, 0, 0)] + [(_CODEBOOK, 0, c, int(w)) for c, w in enumerate(layer.codebook_image)]
    for pe in range(layer.n_pe):
        rows += [(_EVEN, pe, k, int(x)) for k, x in enumerate(ev[pe])]
        rows += [(_ODD, pe, k, int(x)) for k, x in enumerate(od[pe])]
        rows += [(_MATRIX, pe, k, int(x)) for k, x in enumerate(mat[pe])]
    if include_acts:
        rows += [(_ACT, 0, j, int(v) & ((1 << act_width) - 1)) for j, v in enumerate(a) if v]
    return np.array(rows, dtype=np.uint64).reshape(-1, 4)


def write_jobs(path, params: dict, jobs: list[LayerJob]) -> list[dict]:
    """Images, golden results and model cycles of every job; saves the bench's jobs file."""
    arrays, meta, host = {}, [], []
    prev_out = None
    for j, job in enumerate(jobs):
        layer, a = layer_for(params, job)
        if job.chain:
            if prev_out is None or len(prev_out) != job.n_cols:
                raise ParamError(f"job {j} chains but the previous job does not produce {job.n_cols} activations")
            a = prev_out
        cmds = commands(layer, a, corrupt=job.corrupt, act_width=params["act_format"].width,
                        include_acts=not job.chain)
        expected = geie.spmv(layer, a, act_format=params["act_format"], acc_width=params["acc_width"], relu=job.relu)
        rep = geie.cycles(layer, a, queue_depth=params["queue_depth"])
        model = rep.total
        if job.check:       # check pass over every column, then the run (EIEArray docstring)
            model += geie.cycles(layer, np.ones(job.n_cols, np.int64), queue_depth=params["queue_depth"]).compute \
                + geie.ARRAY_START_LATENCY
        arrays[f"cmds_{j}"] = cmds
        meta.append({"n_out": job.n_rows, "shift": layer.weight_frac_bits, "relu": job.relu, "chain": job.chain,
                     "check": job.check, "n_cols": job.n_cols,
                     "gap": job.gap, "stall": job.stall, "traffic_seed": job.seed * 1000003 + j})
        host.append({"layer": layer, "a": a, "expected": expected, "report": rep, "model_cycles": model})
        prev_out = expected
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = Path(str(path) + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return host


def _check_jobs(values, jobs):
    for j, job in enumerate(jobs):
        layer_for(values, job)
        if job.chain and (j == 0 or jobs[j - 1].n_rows != job.n_cols):
            raise ParamError(f"job {j} chains but the previous job does not produce {job.n_cols} activations")


def _launch(b, jobs_path: Path, rundir: Path) -> dict:
    from . import runner
    from .eie_bench import ENV
    runner.verilator_env()
    results, log = rundir / "results.json", rundir / "sim.log"
    results.unlink(missing_ok=True)
    env = {ENV["manifest"]: str(b.manifest_path.resolve()), ENV["jobs"]: str(jobs_path.resolve()),
           ENV["results"]: str(results.resolve()), "COCOTB_REDUCED_LOG_FMT": "1", "COCOTB_ANSI_OUTPUT": "0"}
    try:        # the caller holds the build's lock (jobs file, bench run and results belong together)
        runner._runner().test(
            test_module=BENCH_MODULE, hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
            build_dir=b.directory / "obj", test_dir=rundir, extra_env=env, seed=1, log_file=log,
            results_xml=str((rundir / "results.xml").resolve()))
    except (SystemExit, RuntimeError):
        pass
    if not results.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.is_file() else ""
        raise runner.SimError(f"simulation of {b.top} wrote no results; log {log}:\n{tail}")
    return json.loads(results.read_text())


def run_layers_sim(params: dict | None, jobs, *, build_root=None, label="layers", on_build=None) -> dict:
    """Verify one ``eie`` configuration on ``jobs`` (see the module docstring). Returns ``top``,
    ``params``, ``build_seconds``, ``compiled``, ``passed`` and ``jobs``: per job ``n_rows``,
    ``n_cols``, ``weight_density``, ``act_density``, ``seed``, ``gap``, ``stall``, ``chain``,
    ``corrupt``, ``mismatches`` (None for corrupted jobs), ``first_mismatches``, ``cycles``,
    ``cycles_port``, ``model_cycles``, ``cycles_exact``, ``compute_cycles``, ``entries``
    (entries processed = sparse-matrix reads), ``useful_macs``, ``load_balance_efficiency``,
    ``mac_efficiency``, ``broadcasts``, ``model_broadcasts``, ``error``, ``expected_error``,
    ``protocol_errors``, ``passed``."""
    from . import runner
    from ..gen import registry
    jobs = list(jobs)
    if not jobs:
        raise ValueError("jobs must hold at least one LayerJob")
    _check_jobs(registry.resolve("eie", params), jobs)     # before any elaboration or build
    b = runner.prepare("eie", params, build_root=build_root)
    values = b.params
    if on_build:
        on_build(b)
    runner.build(b)
    rundir = b.directory / label
    # one run at a time per build directory: two concurrent runs (e.g. pytest-xdist workers)
    # would otherwise overwrite each other's jobs file between writing and simulating it
    with runner._locked(b.directory):
        rundir.mkdir(parents=True, exist_ok=True)
        jobs_path = rundir / "jobs.npz"
        host = write_jobs(jobs_path, values, jobs)
        t0 = time.perf_counter()
        bench = _launch(b, jobs_path, rundir)
        wall = time.perf_counter() - t0
    n_pe = values["n_pe"]
    out = []
    for job, h, res in zip(jobs, host, bench["jobs"]):
        rep = h["report"]
        got = np.array(res["values"], dtype=np.int64)
        exp_err = CORRUPTIONS.get(job.corrupt, 0)
        model = h["model_cycles"]
        if job.corrupt:
            mism, first = None, []
            err_ok = bool(res["error"] & exp_err)
            # checked: the layer must not have been executed at all (every result 0)
            not_run = (not job.check) or (len(got) == job.n_rows and not got.any())
            passed = err_ok and not_run and res["protocol_errors"] == 0
        else:
            bad = np.flatnonzero(got != h["expected"]) if len(got) == len(h["expected"]) else np.arange(job.n_rows)
            mism = int(bad.size)
            first = [{"row": int(r), "expected": int(h["expected"][r]), "got": int(got[r]) if r < len(got) else None}
                     for r in bad[:5]]
            exact = res["cycles"] == model == res["cycles_port"]
            passed = (mism == 0 and exact and res["error"] == 0 and res["protocol_errors"] == 0
                      and res["broadcasts"] == rep.broadcasts + (job.n_cols if job.check else 0))
        compute = rep.compute if job.check else res["cycles"] - geie.ARRAY_START_LATENCY - geie.ARRAY_FINISH_LATENCY
        entries = int(rep.busy.sum())
        out.append({
            "n_rows": job.n_rows, "n_cols": job.n_cols, "weight_density": job.weight_density,
            "act_density": job.act_density, "seed": job.seed, "gap": job.gap, "stall": job.stall,
            "chain": job.chain, "corrupt": job.corrupt, "check": job.check, "mismatches": mism, "first_mismatches": first,
            "cycles": res["cycles"], "cycles_port": res["cycles_port"], "model_cycles": model,
            "cycles_exact": res["cycles"] == model == res["cycles_port"], "compute_cycles": compute,
            "entries": entries, "useful_macs": int(rep.macs.sum()),
            "load_balance_efficiency": entries / (n_pe * compute) if compute > 0 else 1.0,
            "mac_efficiency": int(rep.macs.sum()) / (n_pe * compute) if compute > 0 else 1.0,
            "model_load_balance_efficiency": rep.load_balance_efficiency,
            "broadcasts": res["broadcasts"], "model_broadcasts": rep.broadcasts,
            "error": res["error"], "expected_error": exp_err, "protocol_errors": res["protocol_errors"],
            "first_protocol_errors": res["first_protocol_errors"], "load_wait_cycles": res["load_wait_cycles"],
            "output_stall_cycles": res["output_stall_cycles"], "passed": bool(passed),
        })
    return {"top": b.top, "generator": "eie", "params": dict(b.manifest["params"]),
            "build_seconds": round(b.build_seconds, 3), "compiled": b.compiled, "directory": str(b.directory),
            "sim_cycles": bench.get("sim_cycles"), "sim_seconds": round(wall, 2),
            "jobs": out, "passed": all(j["passed"] for j in out)}


def format_job(res: dict, n_pe: int) -> list[str]:
    """Human-readable lines for one job of :func:`run_layers_sim`."""
    head = (f"layer {res['n_rows']}x{res['n_cols']}, dw {res['weight_density']}, da {res['act_density']}, "
            f"seed {res['seed']}, load gaps {res['gap']}, read-out back-pressure {res['stall']}"
            + (", input = previous results (chained)" if res["chain"] else "")
            + (f", corrupted: {res['corrupt']}" if res["corrupt"] else "")
            + (", checked start" if res["check"] else ""))
    lines = [head]
    if res["corrupt"]:
        lines.append(f"  error flags       {res['error']:#x} (expected bit {res['expected_error']:#x}): "
                     + ("raised" if res["error"] & res["expected_error"] else "NOT RAISED"))
    else:
        verdict = "measured == model" if res["cycles_exact"] else "MEASURED != MODEL"
        lines += [
            f"  mismatches        {res['mismatches']} of {res['n_rows']} results (golden.eie.spmv)",
            f"  cycles            {res['cycles']} start->done (port {res['cycles_port']}), model "
            f"{res['model_cycles']}: {verdict}",
            f"  non-zeros         {res['broadcasts']} activations broadcast, {res['entries']} entries processed "
            f"({res['useful_macs']} useful MACs)",
            f"  load balance      {100 * res['load_balance_efficiency']:.1f} % (entries / ({n_pe} PEs x "
            f"{res['compute_cycles']} compute cycles)), useful MACs {100 * res['mac_efficiency']:.1f} %",
            f"  error flags       {res['error']:#x}",
        ]
    for m in res["first_mismatches"]:
        lines.append(f"  MISMATCH row {m['row']}: expected {m['expected']} got {m['got']}")
    for e in res["first_protocol_errors"]:
        lines.append(f"  PROTOCOL {e}")
    return lines






#: ``tensorforge sim`` options for ``bench == "eie"`` (defaults None: the generic path rejects them).
SIM_ARGUMENTS = [
    (("--layer-rows",), dict(type=positive_int, default=None, metavar="R", help="eie: layer rows (outputs)")),
    (("--layer-cols",), dict(type=positive_int, default=None, metavar="C", help="eie: layer columns (inputs)")),
    (("--weight-density",), dict(type=fraction, default=None, metavar="DW", help="eie: weight density 0..1")),
    (("--act-density",), dict(type=fraction, default=None, metavar="DA", help="eie: activation density 0..1")),
    (("--layers",), dict(type=positive_int, default=None, metavar="L",
                         help="eie: chain L layers (R x C, then R x R ...; default 1)")),
    (("--check",), dict(action="store_const", const=True, default=None,
                        help="eie: start every layer with the check pass (malformed images are not executed)")),
]


def run_sim(args, gen, params) -> int:
    """``tensorforge sim eie ...``: exit 0 pass, 1 fail, 3 simulator failure."""
    from . import runner
    for name in ("layer_rows", "layer_cols", "weight_density", "act_density"):
        if getattr(args, name, None) is None:
            raise ParamError("`sim eie` needs --layer-rows R --layer-cols C --weight-density DW --act-density DA")
    gap = 0.0 if args.gap is None else args.gap
    stall = 0.0 if args.stall is None else args.stall
    R, C = args.layer_rows, args.layer_cols
    check = bool(args.check)
    jobs = [LayerJob(R, C, args.weight_density, args.act_density, seed=args.seed, gap=gap, stall=stall, check=check)]
    for k in range(1, args.layers or 1):
        jobs.append(LayerJob(R, R, args.weight_density, args.act_density, seed=args.seed + k, gap=gap,
                             stall=stall, chain=True, check=check))

    def on_build(b):
        if not args.json:
            print(f"{b.top}  (eie " + " ".join(f"{k}={v}" for k, v in b.manifest["params"].items()) + ")", flush=True)

    try:
        res = run_layers_sim(params, jobs, build_root=args.build_dir, on_build=on_build)
    except runner.SimError as exc:
        print(f"tensorforge: simulation failed: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(res, sort_keys=True))
    else:
        build = f"compiled in {res['build_seconds']:.1f} s" if res["compiled"] else "cached"
        print(f"{res['top']}: Verilator build {build}; simulation {res['sim_seconds']:.1f} s")
        for j in res["jobs"]:
            for line in format_job(j, params["n_pe"]):
                print(line)
        print("PASS" if res["passed"] else "FAIL")
    return 0 if res["passed"] else 1
