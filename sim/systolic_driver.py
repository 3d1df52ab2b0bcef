"""Host side of the systolic-array verification: GEMM tiling, golden results, runs, figures.

:func:`run_gemms` verifies one array configuration (registry generator ``systolic``) on a
list of GEMMs of any ``M x K x N`` (sizes need not be multiples of the array):

1. per GEMM, random operands (:func:`operands`: integers over the whole range with a share
   of extremes; floating point mostly normal values near 1 with zeros, subnormals, large
   values and a few infinities/NaNs), the exact stream transactions
   (:func:`tensorforge.golden.systolic.stream_beats`: tiling, zero padding of ragged
   edges, ``last``/``start``/``emit`` flags) and the expected ``y`` beats, padding lanes
   included (:func:`expected_beats`, from :func:`tensorforge.golden.systolic.gemm` on the
   padded operands);
2. one Verilator build per configuration (``runner.prepare``/``runner.build``, cached in
   ``build/sim/<top>``) and one simulator process for all GEMMs of the list
   (:mod:`tensorforge.sim.systolic_bench`, the array is reset between GEMMs);
3. the received beats are reassembled into ``Y`` (:func:`tensorforge.golden.systolic.assemble`)
   and compared with an independent reference (:func:`reference`: numpy's integer matrix
   product modulo ``2**acc_width`` for integers, the golden ``gemm`` for floating point);
4. measured cycles (first ``w``/``x`` handshake to last ``y`` handshake, inclusive) against
   the cycle model (:func:`tensorforge.golden.systolic.cycles`; equal without input gaps and
   back-pressure, ``>=`` with them) and SCALE-Sim's (:func:`~tensorforge.golden.systolic.scalesim_cycles`);
   utilization ``M*K*N / (rows*cols*cycles)``.

``tensorforge sim systolic [array params] --gemm M,K,N [--gemm ...] [--seed S] [--gap P]
[--stall P] [--json]`` is :func:`run_sim`; ``tensorforge bench systolic`` (:func:`run_bench`)
runs the 16x16 int8 weight-stationary array on a 256x256x256 GEMM and prints measured
utilization next to the model's and SCALE-Sim's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..gen.registry import ParamError
from ..golden import systolic as gsys
from ..golden.formats import FloatFormat, IntFormat

__all__ = ["Gemm", "parse_gemm", "operands", "expected_beats", "reference", "model_cycles",
           "write_jobs", "run_gemms", "format_gemm", "run_sim", "run_bench", "SIM_ARGUMENTS",
           "BENCH_MODULE", "BENCHMARK"]

BENCH_MODULE = "tensorforge.sim.systolic_bench"

#: The benchmark of ``tensorforge bench systolic``: (array parameters, GEMM).
BENCHMARK = ({"rows": 16, "cols": 16, "dataflow": "ws"}, (256, 256, 256))


@dataclass(frozen=True)
class Gemm:
    """One GEMM job: ``Y[M, N] = X[M, K] @ W[K, N]``; ``seed`` makes operands and traffic;
    ``gap``/``stall``: input-gap and ``y`` back-pressure probabilities (0 <= p < 1)."""

    M: int
    K: int
    N: int
    seed: int = 1
    gap: float = 0.0
    stall: float = 0.0

    def __post_init__(self):
        for name in ("M", "K", "N"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        for name in ("gap", "stall"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be a number >= 0 and < 1, not {v!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")

    @property
    def shape(self):
        return (self.M, self.K, self.N)


def parse_gemm(text: str) -> tuple:
    """``"M,K,N"`` (also ``MxKxN``) -> ``(M, K, N)``; argparse type (raises ArgumentTypeError)."""
    parts = str(text).replace("x", ",").split(",")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"must be three positive integers M,K,N, not {text!r}")
    return dims


# ---------------------------------------------------------------------------------------------
# operands, golden beats, reference


def _arith(params):
    from ..rtl.systolic import arith_for
    return arith_for(params["in_format"], params["acc_format"], weight_format=params.get("weight_format"),
                     rounding=params.get("rounding", "rne"), stages=params.get("stages", 1))


def _formats(params):
    fin, facc = params["in_format"], params["acc_format"]
    fw = params.get("weight_format") or fin
    return fin, fw, facc


def _int_operands(fmt: IntFormat, shape, rng, extreme=0.15):
    bits = rng.integers(0, 1 << fmt.width, size=shape, dtype=np.uint64) if fmt.width < 64 else \
        rng.integers(0, 1 << 63, size=shape, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, size=shape, dtype=np.uint64)
    lo = (1 << (fmt.width - 1)) if fmt.signed else 0            # bit pattern of the minimum
    hi = ((1 << (fmt.width - 1)) - 1) if fmt.signed else fmt.mask
    pool = np.array(sorted({lo, hi, 0, 1, fmt.mask}), dtype=np.uint64)   # min, max, 0, 1, -1/max
    pick = rng.random(shape) < extreme
    return np.where(pick, pool[rng.integers(0, len(pool), size=shape)], bits)


def _float_operands(fmt: FloatFormat, shape, rng, special=0.003):
    from .models import float_special_pool
    n = int(np.prod(shape))
    m = fmt.man_bits

    def compose(sign, exp_field, man):
        word = (sign.astype(np.uint64) << np.uint64(fmt.exp_bits)) | exp_field.astype(np.uint64)
        return ((word << np.uint64(m)) | man.astype(np.uint64)) << np.uint64(fmt.pad_bits)

    sign = rng.integers(0, 2, size=n)
    man = rng.integers(0, 1 << m, size=n, dtype=np.uint64)
    top = fmt.exp_max_field - 1 if fmt.has_inf else fmt.exp_max_field
    near = np.clip(fmt.bias + rng.integers(-4, 5, size=n), 1, top)
    anywhere = rng.integers(0, top + 1, size=n)
    kind = rng.random(n)
    exp_field = np.where(kind < 0.80, near, np.where(kind < 0.86, 0, anywhere))   # normal / subnormal / any
    bits = compose(sign, exp_field, man)
    bits = np.where(rng.random(n) < 0.05, compose(sign, np.zeros(n, np.int64), np.zeros(n, np.uint64)), bits)  # +-0
    pool = float_special_pool(fmt)
    bits = np.where(rng.random(n) < special, pool[rng.integers(0, len(pool), size=n)], bits)
    return bits.astype(np.uint64).reshape(shape)


def operands(params: dict, M: int, K: int, N: int, rng: np.random.Generator):
    """Random ``x`` (M x K) and ``w`` (K x N) bit patterns for the configuration's formats."""
    fin, fw, _ = _formats(params)
    if isinstance(fin, IntFormat):
        return _int_operands(fin, (M, K), rng), _int_operands(fw, (K, N), rng)
    return _float_operands(fin, (M, K), rng), _float_operands(fw, (K, N), rng)


def _golden(params, x, w):
    fin, fw, facc = _formats(params)
    return gsys.gemm(x, w, in_format=fin, weight_format=fw, acc_format=facc, rows=params["rows"],
                     cols=params["cols"], dataflow=params["dataflow"], rounding=params.get("rounding", "rne"))


def expected_beats(params: dict, x, w, beats: dict) -> np.ndarray:
    """Expected ``y`` beats (n_y x cols, uint64): the golden GEMM of the zero-padded operands
    (M padded to the tile height in OS, N to the tile width), so padding lanes are checked too."""
    R, C = params["rows"], params["cols"]
    M, K = x.shape
    N = w.shape[1]
    Mp = -(-M // R) * R if params["dataflow"] == "os" else M
    Np = -(-N // C) * C
    xp = np.zeros((Mp, K), np.uint64)
    xp[:M] = x
    wp = np.zeros((K, Np), np.uint64)
    wp[:, :N] = w
    full = np.asarray(_golden(params, xp, wp)).astype(np.uint64)
    rows = np.array([m for m, _ in beats["y"]], dtype=np.int64)
    cols = np.array([n0 for _, n0 in beats["y"]], dtype=np.int64)
    return full[rows[:, None], cols[:, None] + np.arange(C)[None, :]]


def reference(params: dict, x, w) -> np.ndarray:
    """Independent reference ``Y`` (M x N bit patterns): integers -> numpy's matrix product of
    the sign-extended values in uint64 (arithmetic modulo 2**64) reduced modulo
    ``2**acc_width``; floating point -> :func:`tensorforge.golden.systolic.gemm`."""
    fin, fw, facc = _formats(params)
    if isinstance(fin, IntFormat):
        def values(bits, fmt):
            u = np.asarray(bits, dtype=np.uint64) & np.uint64(fmt.mask)
            if fmt.signed and fmt.width < 64:
                s = np.uint64(1 << (fmt.width - 1))
                u = (u ^ s) - s
            return u
        with np.errstate(over="ignore"):
            return (values(x, fin) @ values(w, fw)) & np.uint64(facc.mask)
    return np.asarray(_golden(params, x, w)).astype(np.uint64)


def model_cycles(params: dict, M: int, K: int, N: int) -> int:
    """The cycle model's prediction for this configuration."""
    arith = _arith(params)
    return gsys.cycles(M, K, N, params["rows"], params["cols"], params["dataflow"],
                       acc_depth=params["acc_depth"], mac_latency=arith.mac_latency,
                       addend_delay=getattr(arith, "addend_delay", 0))


# ---------------------------------------------------------------------------------------------
# jobs file and simulator runs


def write_jobs(path, params: dict, gemms: list[Gemm]) -> list[dict]:
    """Compute the stream beats and expected results of every GEMM and save them for the bench.

    Returns per-GEMM host data (``x``, ``w``, ``beats``, ``model_cycles``) for scoring."""
    fin, fw, _ = _formats(params)
    arrays, meta, host = {}, [], []
    for j, g in enumerate(gemms):
        rng = np.random.default_rng([g.seed, g.M, g.K, g.N])
        x, w = operands(params, g.M, g.K, g.N, rng)
        beats = gsys.stream_beats(x, w, rows=params["rows"], cols=params["cols"], dataflow=params["dataflow"],
                                  acc_depth=params["acc_depth"], in_width=fin.width, weight_width=fw.width)
        exp = expected_beats(params, x, w, beats)
        cyc = model_cycles(params, g.M, g.K, g.N)
        arrays.update({
            f"w_{j}": beats["w"], f"x_{j}": beats["x"], f"last_{j}": beats["last"], f"start_{j}": beats["start"],
            f"emit_{j}": beats["emit"], f"y_expected_{j}": exp,
            f"y_rows_{j}": np.array([m for m, _ in beats["y"]], np.int64),
            f"y_cols_{j}": np.array([n0 for _, n0 in beats["y"]], np.int64),
        })
        meta.append({"M": g.M, "K": g.K, "N": g.N, "seed": g.seed, "traffic_seed": g.seed * 1000003 + j, "gap": g.gap, "stall": g.stall,
                     "model_cycles": cyc})
        host.append({"x": x, "w": w, "beats": beats, "model_cycles": cyc, "expected": exp})
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = Path(str(path) + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return host


def _launch(b, jobs_path: Path, rundir: Path, progress: Callable[[int, int], None] | None):
    """Run the systolic bench on build ``b`` (the caller holds the build's lock); return (results, received)."""
    from . import runner
    from .systolic_bench import ENV

    runner.verilator_env()
    results, received = rundir / "results.json", rundir / "received.npz"
    progress_file, log = rundir / "progress", rundir / "sim.log"
    for p in (results, received, progress_file):
        p.unlink(missing_ok=True)
    env = {
        ENV["manifest"]: str(b.manifest_path.resolve()), ENV["jobs"]: str(jobs_path.resolve()),
        ENV["results"]: str(results.resolve()), ENV["received"]: str(received.resolve()),
        ENV["progress"]: str(progress_file.resolve()),
        "COCOTB_REDUCED_LOG_FMT": "1", "COCOTB_ANSI_OUTPUT": "0",
    }
    stop = threading.Event()

    def poll():
        last = None
        while not stop.wait(0.25):
            try:
                job, beats = (int(v) for v in progress_file.read_text().split())
            except (OSError, ValueError):
                continue
            if (job, beats) != last:
                last = (job, beats)
                progress(job, beats)

    poller = threading.Thread(target=poll, daemon=True) if progress else None
    if poller:          # the caller holds the build's lock (jobs file, bench run and results belong together)
        poller.start()
    try:
        runner._runner().test(
            test_module=BENCH_MODULE, hdl_toplevel=b.top, hdl_toplevel_lang="verilog",
            build_dir=b.directory / "obj", test_dir=rundir, extra_env=env, seed=1, log_file=log,
            results_xml=str((rundir / "results.xml").resolve()),
        )
    except (SystemExit, RuntimeError):
        pass        # a failing cocotb test exits non-zero: the verdict is in results.json
    finally:
        stop.set()
        if poller:
            poller.join()
    if not results.is_file() or not received.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.is_file() else ""
        raise runner.SimError(f"simulation of {b.top} wrote no results; log {log}:\n{tail}")
    out = json.loads(results.read_text())
    data = np.load(received)
    return out, [data[f"y_{j}"] for j in range(len(out["jobs"]))]


def run_gemms(params: dict | None, gemms, *, build_root=None, label: str = "gemm",
              progress: Callable[[int, int], None] | None = None, on_build: Callable | None = None) -> dict:
    """Verify one ``systolic`` configuration on a list of GEMMs (see the module docstring).

    ``params``: generator parameters (Python values; registry defaults for the rest);
    ``gemms``: :class:`Gemm` objects or ``(M, K, N)`` tuples; ``progress(job, y_beats)`` is
    called from a helper thread. Returns ``top``, ``params``, ``build_seconds``,
    ``compiled``, ``directory``, ``passed`` and ``gemms``: per GEMM the bench's results plus
    ``macs``, ``model_cycles``, ``cycles_exact`` (measured == model; None when gaps or
    back-pressure were on, then ``cycles_at_least_model``), ``utilization``,
    ``model_utilization``, ``scalesim_cycles``, ``scalesim_utilization``,
    ``reference_mismatches`` (elements of the assembled Y that differ from :func:`reference`)
    and ``passed``.
    """
    from . import runner

    gemms = [g if isinstance(g, Gemm) else Gemm(*g) for g in gemms]
    if not gemms:
        raise ValueError("gemms must hold at least one GEMM")
    b = runner.prepare("systolic", params, build_root=build_root)
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
        t0 = time.perf_counter()
        host = write_jobs(jobs_path, values, gemms)
        prep_seconds = time.perf_counter() - t0
        bench, received = _launch(b, jobs_path, rundir, progress)
    R, C = values["rows"], values["cols"]
    out_jobs = []
    for g, h, res, got in zip(gemms, host, bench["jobs"], received):
        res = dict(res)
        macs = g.M * g.K * g.N
        model = h["model_cycles"]
        ss = gsys.scalesim_cycles(g.M, g.K, g.N, R, C, values["dataflow"])
        ref = reference(values, h["x"], h["w"])
        if len(got) == len(h["beats"]["y"]):
            Y = gsys.assemble(got, h["beats"]["y"], g.M, g.N)
            ref_bad = int((Y != ref).sum())
        else:
            ref_bad = None
        exact_traffic = g.gap == 0 and g.stall == 0
        measured = res["cycles"]
        res.update(
            macs=macs, model_cycles=model, scalesim_cycles=ss,
            cycles_exact=(measured == model) if exact_traffic else None,
            cycles_at_least_model=(measured is not None and measured >= model),
            utilization=gsys.utilization(g.M, g.K, g.N, R, C, measured) if measured else None,
            model_utilization=gsys.utilization(g.M, g.K, g.N, R, C, model),
            scalesim_utilization=gsys.utilization(g.M, g.K, g.N, R, C, ss),
            reference_mismatches=ref_bad,
        )
        res["passed"] = bool(res["passed"] and ref_bad == 0
                             and (res["cycles_exact"] if exact_traffic else res["cycles_at_least_model"]))
        out_jobs.append(res)
    return {
        "top": b.top, "generator": "systolic", "params": dict(b.manifest["params"]),
        "latency": b.manifest.get("latency"), "build_seconds": round(b.build_seconds, 3), "compiled": b.compiled,
        "directory": str(b.directory), "prepare_seconds": round(prep_seconds, 3),
        "gemms": out_jobs, "passed": all(j["passed"] for j in out_jobs),
    }


# ---------------------------------------------------------------------------------------------
# command line


def format_gemm(res: dict, rows: int, cols: int) -> list[str]:
    """Human-readable lines for one GEMM result of :func:`run_gemms`."""
    M, K, N = res["M"], res["K"], res["N"]
    traffic = f"seed {res['seed']}, input gaps {res['gap']}, y back-pressure {res['stall']}"
    if res["cycles_exact"] is None:
        verdict = "measured >= model (gaps/back-pressure on)" if res["cycles_at_least_model"] else \
            "MEASURED < MODEL"
    else:
        verdict = "measured == model" if res["cycles_exact"] else "MEASURED != MODEL"
    pct = lambda u: "-" if u is None else f"{100 * u:.2f} %"
    lines = [
        f"GEMM {M}x{K}x{N} (M x K x N) on {rows}x{cols}: {traffic}",
        f"  mismatches        {res['mismatches']} of {res['y_beats'] * cols} y lanes (golden beats), "
        f"{res['reference_mismatches']} of {M * N} results vs reference",
        f"  protocol errors   {res['protocol_errors']}",
        f"  beats             w {res['w_beats']}, x {res['x_beats']}, y {res['received']} of {res['y_beats']}",
        f"  cycles            {res['cycles']} measured (first w/x handshake to last y handshake)",
        f"  model             {res['model_cycles']} (golden.systolic.cycles): {verdict}",
        f"  MACs              {res['macs']}",
        f"  utilization       {pct(res['utilization'])} measured, {pct(res['model_utilization'])} model",
        f"  SCALE-Sim         {res['scalesim_cycles']} cycles, {pct(res['scalesim_utilization'])}",
        f"  simulated         {res['sim_cycles']} cycles in {res['wall_seconds']:.1f} s "
        f"({res['cycles_per_second']:.0f} cycles/s)",
    ]
    for m in res["first_mismatches"]:
        lines.append(f"  MISMATCH y[{m['row']}, {m['col']}] (beat {m['beat']}, lane {m['lane']}): "
                     f"expected {m['expected']} got {m['got']}")
    for e in res["first_protocol_errors"]:
        lines.append(f"  PROTOCOL {e}")
    return lines


class _Progress:
    def __init__(self, totals, disable):
        from tqdm import tqdm
        self.offsets = np.concatenate([[0], np.cumsum(totals)]).tolist()
        self.bar = tqdm(total=self.offsets[-1], desc="y beats", unit="beat", disable=disable,
                        dynamic_ncols=True, leave=False)

    def __call__(self, job, beats):
        self.bar.update(max(0, self.offsets[job] + beats - self.bar.n))

    def close(self):
        self.bar.close()


def _y_beats(params, g):
    R, C = params["rows"], params["cols"]
    if params["dataflow"] == "os":
        return -(-g.M // R) * R * -(-g.N // C)
    return g.M * -(-g.N // C)


def _execute(params, gemms, *, build_root, quiet, label="gemm"):
    def on_build(b):
        if not quiet:
            print(f"{b.top}  (systolic " + " ".join(f"{k}={v}" for k, v in b.manifest["params"].items()) + ")")
            print(f"latency {b.manifest.get('latency')} cycles; Verilator build in {b.directory}", flush=True)

    bar = _Progress([_y_beats(params, g) for g in gemms], disable=True if quiet else None)
    try:
        t0 = time.perf_counter()
        res = run_gemms(params, gemms, build_root=build_root, progress=bar, on_build=on_build, label=label)
        res["total_seconds"] = round(time.perf_counter() - t0, 2)
    finally:
        bar.close()
    return res


def _report(res, params, as_json):
    if as_json:
        print(json.dumps(res, sort_keys=True))
    else:
        build = f"compiled in {res['build_seconds']:.1f} s" if res["compiled"] else "cached"
        print(f"{res['top']}: Verilator build {build}; {res['total_seconds']:.1f} s in total")
        for g in res["gemms"]:
            for line in format_gemm(g, params["rows"], params["cols"]):
                print(line)
        print("PASS" if res["passed"] else "FAIL")
    return 0 if res["passed"] else 1


#: Options that ``tensorforge sim`` adds for generators with ``bench == "systolic"`` (dest
#: defaults are None so the generic path can reject them for other generators).
SIM_ARGUMENTS = [
    (("--gemm",), dict(type=parse_gemm, action="append", default=None, metavar="M,K,N",
                       help="systolic: GEMM Y[M,N] = X[M,K] @ W[K,N] to run (repeatable)")),
]


def run_sim(args, gen, params) -> int:
    """``tensorforge sim systolic ... --gemm M,K,N``: exit 0 pass, 1 fail, 3 simulator failure."""
    from . import runner
    if not args.gemm:
        raise ParamError("`sim systolic` needs --gemm M,K,N (e.g. --gemm 64,64,64)")
    gap = 0.0 if args.gap is None else args.gap
    stall = 0.0 if args.stall is None else args.stall
    gemms = [Gemm(*shape, seed=args.seed, gap=gap, stall=stall) for shape in args.gemm]
    try:
        res = _execute(params, gemms, build_root=args.build_dir, quiet=args.json)
    except runner.SimError as exc:
        print(f"tensorforge: simulation failed: {exc}", file=sys.stderr)
        return 3
    return _report(res, params, args.json)


def run_bench(args) -> int:
    """``tensorforge bench systolic``: the 16x16 int8 WS array on a 256x256x256 GEMM in Verilator."""
    from ..gen import registry
    from . import runner
    array, shape = BENCHMARK
    params = registry.resolve("systolic", array)
    if not args.json:
        print(f"benchmark: {array['rows']}x{array['cols']} int8 weight-stationary array, "
              f"GEMM {shape[0]}x{shape[1]}x{shape[2]}, no gaps, y always ready")
    try:
        res = _execute(params, [Gemm(*shape, seed=args.seed)], build_root=args.build_dir, quiet=args.json,
                       label="bench")
    except runner.SimError as exc:
        print(f"tensorforge: simulation failed: {exc}", file=sys.stderr)
        return 3
    status = _report(res, params, args.json)
    if not args.json:
        g = res["gemms"][0]
        print()
        print(f"{'':22}{'cycles':>10}{'utilization':>14}")
        print(f"{'measured (Verilator)':22}{g['cycles']:>10}{100 * g['utilization']:>13.2f}%")
        print(f"{'model':22}{g['model_cycles']:>10}{100 * g['model_utilization']:>13.2f}%")
        print(f"{'SCALE-Sim':22}{g['scalesim_cycles']:>10}{100 * g['scalesim_utilization']:>13.2f}%")
    return status


def add_commands(cli):
    """``tensorforge bench systolic`` (added through ``sim.commands``)."""
    from ..gen.cli import non_negative_int
    cli.command("bench", run_bench, "benchmarks in Verilator: `bench systolic` = 16x16 int8 WS array on a "
                "256x256x256 GEMM, measured utilization vs the cycle model vs SCALE-Sim", [
                    (("what",), dict(choices=["systolic"], help="which benchmark")),
                    (("--seed",), dict(type=non_negative_int, default=1, help="random seed (default 1)")),
                    (("--build-dir",), dict(metavar="DIR", default=None,
                                            help="build root (default $TF_BUILD_DIR or ./build)")),
                    (("--json",), dict(action="store_true", help="print the results as one JSON object")),
                ])
