"""``tensorforge sim`` and ``tensorforge demo`` (registered through ``gen.cli.COMMAND_MODULES``).

``tensorforge sim GENERATOR [--param value ...] [--vectors N] [--seed S]
[--gap P] [--stall P] [--json]`` builds the configuration in Verilator
(cached under ``build/sim/<top>``), drives N vectors through the generated
Verilog with random input gaps and output back-pressure, and compares every
output bit with the golden model. It prints vectors checked, mismatches (the
first few in hex with their inputs), cycles and simulated vectors/s; ``--json``
prints the same as one JSON object. Exit status: 0 all vectors match, 1 any
mismatch or stream-protocol error, 2 bad command line.

``tensorforge demo`` generates the FP16 x FP16 + FP32 FMA into
``build/demo/``, lints it, runs 100k vectors through it in Verilator against
the golden model, does the same for the 4x4x4 Volta MMA block (5k blocks), then
synthesizes the FMA for ecp5-25k (one seed) and prints a short summary.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

from ..gen.cli import non_negative_int, positive_int, probability
from ..gen.registry import ParamError

__all__ = ["add_commands", "format_results", "SIM_BENCHES"]

#: Generators the generic stream bench cannot drive (several streams, a workload such as a
#: GEMM instead of random vectors), by ``Generator.bench`` -> module that defines
#: ``SIM_ARGUMENTS`` (extra ``tensorforge sim`` options as (args, kwargs), each with default
#: None), ``run_sim(args, gen, params) -> exit status`` and optionally ``add_commands(cli)``.
SIM_BENCHES = {
    "systolic": "tensorforge.sim.systolic_driver",
    "eie": "tensorforge.sim.eie_driver",
}


def _sim_bench(gen):
    """The ``SIM_BENCHES`` module of ``gen`` (None: the generic stream bench)."""
    module = SIM_BENCHES.get(gen.bench)
    return importlib.import_module(module) if module else None








def _default_vectors():
    try:
        return max(1, int(os.environ.get("TF_VECTORS", "20000")))
    except ValueError:
        return 20000


def _simulable():
    from ..gen import registry
    from . import models
    known = models.models()
    return [name for name, gen in registry.generators().items() if name in known or gen.bench in SIM_BENCHES]


class _Progress:
    """tqdm bar over vectors (disabled for --json and on non-terminals)."""

    def __init__(self, total, label, disable):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc=label, unit="vec", unit_scale=True, disable=disable,
                        dynamic_ncols=True, leave=False)

    def __call__(self, k):
        self.bar.update(max(0, k - self.bar.n))

    def close(self):
        self.bar.close()


def format_results(res: dict) -> list[str]:
    """Human-readable lines of a ``runner.simulate`` result."""
    lines = [
        f"vectors checked   {res['received']} of {res['vectors']}",
        f"mismatches        {res['mismatches']}",
        f"protocol errors   {res['protocol_errors']}",
        f"cycles            {res['cycles']} (latency {res['latency']}, observed "
        f"{(res['latency_observed'] or {}).get('min')}..{(res['latency_observed'] or {}).get('max')} "
        f"with back-pressure)",
        f"simulated         {res['sim_vectors_per_second']:.0f} vectors/s "
        f"({res['wall_seconds']:.1f} s in the simulator)",
        f"seed {res['seed']}, gap {res['gap']}, stall {res['stall']}",
    ]
    for m in res["first_mismatches"]:
        ins = " ".join(f"{k}={v}" for k, v in m["inputs"].items())
        exp = " ".join(f"{k}={v}" for k, v in m["expected"].items())
        got = " ".join(f"{k}={v}" for k, v in m["got"].items())
        lines.append(f"MISMATCH vector {m['index']}: {ins}  expected {exp}  got {got}")
    for e in res["first_protocol_errors"]:
        lines.append(f"PROTOCOL {e}")
    return lines


def _run(gen, params, *, vectors, seed, gap, stall, build_root, quiet, label=None):
    from . import runner

    bar = None

    def on_build(b):
        if not quiet:
            args = " ".join(f"{k}={v}" for k, v in b.manifest["params"].items())
            print(f"{b.top}  ({gen.name} {args})")
            print(f"latency {b.manifest.get('latency')} cycles, initiation interval "
                  f"{b.manifest.get('initiation_interval')}; Verilator build in {b.directory}")

    bar = _Progress(vectors, label or "simulating", disable=True if quiet else None)
    try:
        t0 = time.perf_counter()
        res = runner.simulate(gen, params, vectors, seed=seed, gap=gap, stall=stall, build_root=build_root,
                              progress=bar, on_build=on_build)
        res["total_seconds"] = round(time.perf_counter() - t0, 2)
    finally:
        bar.close()
    return res


def _cmd_sim(args, gen, params):
    from . import runner
    special = _sim_bench(gen)
    if special is not None:
        return special.run_sim(args, gen, params)
    for module in SIM_BENCHES.values():
        for names, kw in importlib.import_module(module).SIM_ARGUMENTS:
            if getattr(args, kw.get("dest") or names[0].lstrip("-").replace("-", "_")) is not None:
                raise ParamError(f"{names[0]} does not apply to generator {gen.name!r}")
    gap = 0.2 if args.gap is None else args.gap
    stall = 0.2 if args.stall is None else args.stall
    try:
        res = _run(gen, params, vectors=args.vectors, seed=args.seed, gap=gap, stall=stall,
                   build_root=args.build_dir, quiet=args.json)
    except runner.SimError as exc:
        print(f"tensorforge: simulation failed: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(res, sort_keys=True))
    else:
        build = f"compiled in {res['build_seconds']:.1f} s" if res["compiled"] else "cached"
        print(f"{res['top']}: Verilator build {build}")
        for line in format_results(res):
            print(line)
        from .coverage import format_report
        for line in format_report(res.get("coverage")):
            print(line)
        print("PASS" if res["passed"] else "FAIL")
    return 0 if res["passed"] else 1


# ---------------------------------------------------------------------------------------------
# demo

#: Demo steps after the FMA: functions ``step(ctx) -> list[str]`` of summary lines, run in order.
#: ``ctx`` is a dict with ``args`` (parsed options), ``out`` (build/demo) and ``results`` (the


def _cmd_demo(args):
    from ..gen import registry
    from ..gen.manifest import elaborate, write
    from ..golden.formats import FP16, FP32
    from . import runner

    out = Path(args.output)
    gen = registry.get("fma")
    params = registry.resolve(gen, {"in_format": FP16, "acc_format": FP32, "rounding": "rne"})
    art = elaborate(gen, params)
    paths = write(art, out)
    print("tensorforge demo: FP16 x FP16 + FP32 fused multiply-add, round to nearest even")
    print(f"  generated {', '.join(str(p) for p in paths)}")
    runner.lint(paths[0])
    print(f"  verilator --lint-only -Wall (with {runner.WAIVER_FILE.name}): clean")
    try:
        res = _run(gen, params, vectors=args.vectors, seed=args.seed, gap=0.2, stall=0.2,
                   build_root=args.build_dir, quiet=False, label="FMA in Verilator")
    except runner.SimError as exc:
        print(f"tensorforge: simulation failed: {exc}", file=sys.stderr)
        return 3
    print()
    print("summary")
    print(f"  configuration     {art.top} (in e5m10, acc e8m23, rne, stages {params['stages']})")
    print(f"  latency           {art.manifest['latency']} cycles, one operation per cycle")
    print(f"  vectors           {res['received']} in Verilator with random gaps and back-pressure")
    print(f"  mismatches        {res['mismatches']} against tensorforge.golden.fp.fma (bits and flags)"
          + (f", {res['protocol_errors']} protocol errors" if res["protocol_errors"] else ""))
    print(f"  simulated         {res['sim_vectors_per_second']:.0f} vectors/s "
          f"(Verilator build {'%.1f s' % res['build_seconds'] if res['compiled'] else 'cached'})")
    if not res["passed"]:
        for line in format_results(res):
            print("  " + line)
    status = 0 if res["passed"] else 1

    # The headline tensor core: a 4x4x4 FP16 x FP16 + FP32 MMA block with Volta numerics.
    mma = registry.get("mma")
    mparams = registry.resolve(mma, {"m": 4, "n": 4, "k": 4, "semantics": "volta"})
    mart = elaborate(mma, mparams)
    mpaths = write(mart, out)
    print()
    print("tensorforge demo: 4x4x4 tensor-core MMA D = A*B + C, FP16 x FP16 + FP32, NVIDIA Volta numerics")
    print(f"  generated {mpaths[0]} (64 multipliers, one 4x4x4 block per cycle)")
    try:
        mres = _run(mma, mparams, vectors=args.mma_vectors, seed=args.seed, gap=0.2, stall=0.2,
                    build_root=args.build_dir, quiet=False, label="MMA in Verilator")
    except runner.SimError as exc:
        print(f"tensorforge: simulation failed: {exc}", file=sys.stderr)
        return 3
    print(f"  configuration     {mart.top}")
    print(f"  latency           {mart.manifest['latency']} cycles, one 4x4x4 block per cycle")
    print(f"  blocks            {mres['received']} in Verilator ({16 * mres['received']} dot products)")
    print(f"  mismatches        {mres['mismatches']} against tensorforge.golden.dot.mma (volta)")
    if not mres["passed"]:
        status = 1
        for line in format_results(mres):
            print("  " + line)

    # Out-of-context synthesis of the FMA for ECP5 (one seed).
    if not args.no_synth:
        from ..gen.synth import SynthError, format_result, synthesize
        print()
        print("tensorforge demo: synthesis of the FMA for ecp5-25k (Yosys + nextpnr from PyPI, 1 seed)")
        try:
            print(format_result(synthesize(gen, params, "ecp5-25k", seeds=1)))
        except SynthError as exc:
            print(f"tensorforge: synthesis failed: {exc}", file=sys.stderr)
            status = status or 1
    print("PASS" if status == 0 else "FAIL")
    return status


def add_commands(cli):
    common = [
        (("--seed",), dict(type=non_negative_int, default=1, help="random seed for vectors and traffic (default 1)")),
        (("--build-dir",), dict(metavar="DIR", default=None,
                                help="build root (default $TF_BUILD_DIR or ./build); builds go to DIR/sim/TOP")),
    ]
    cli.generator_command(
        "sim", _cmd_sim,
        "build (cached) and verify one configuration in Verilator against its golden model",
        [
            (("--vectors",), dict(type=positive_int, default=_default_vectors(),
                                  help="number of random vectors (default $TF_VECTORS or 20000)")),
            *common,
            (("--gap",), dict(type=probability, default=None,
                              help="input gap probability, 0 <= P < 1 (default 0.2; systolic: 0)")),
            (("--stall",), dict(type=probability, default=None,
                                help="output back-pressure probability, 0 <= P < 1 (default 0.2; systolic: 0)")),
            (("--json",), dict(action="store_true", help="print the results as one JSON object")),
            *[arg for module in SIM_BENCHES.values() for arg in importlib.import_module(module).SIM_ARGUMENTS],
        ],
        generators=_simulable,
    )
    for module in SIM_BENCHES.values():
        extra = getattr(importlib.import_module(module), "add_commands", None)
        if extra:
            extra(cli)
    cli.command(
        "demo", _cmd_demo,
        "generate the FP16xFP16+FP32 FMA and the 4x4x4 volta MMA into build/demo, verify them in Verilator, synthesize the FMA for ECP5",
        [
            (("--vectors",), dict(type=positive_int, default=100000, help="FMA vectors to simulate (default 100000)")),
            (("--mma-vectors",), dict(type=positive_int, default=5000, help="4x4x4 MMA blocks to simulate (default 5000)")),
            (("--no-synth",), dict(action="store_true", help="skip the ECP5 synthesis step")),
            *common,
            (("-o", "--output"), dict(metavar="DIR", default=str(Path("build") / "demo"),
                                      help="where the generated files go (default build/demo)")),
        ],
    )
