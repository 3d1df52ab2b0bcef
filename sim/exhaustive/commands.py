"""``tensorforge exhaustive`` and ``tensorforge coverage`` (listed in ``gen/cli.py`` COMMAND_MODULES).

``tensorforge exhaustive GENERATOR [--param value ...] [--space pairs|patterns] [--c VALUES]
[--a-range LO:HI] [--jobs N] [--chunk N] [--stall P] [--json]``

- ``--space pairs`` (default): every (a, b) bit-pattern pair of the input
  format (``--a-range`` restricts a, e.g. for a slice of the 2^32 FP16
  space), for each c of ``--c`` (FMA only; default ``zero`` = +0; also a
  comma list of bit patterns, ``specials``, ``level1``, ``all``).
- ``--space patterns``: TestFloat-style level-1 values of every input field,
  fully crossed (a x b x c for the FMA).

Inputs are generated inside the C++ driver (pairs) or streamed from a file
(patterns); outputs are compared with the golden model chunk by chunk in
``--jobs`` worker processes. Reports vectors, mismatches, vectors/s (end to
end and RTL-only per core), golden-model time and wall time. Exit status 0
when every vector matches, 1 on a mismatch, 2 bad command line, 3 a tool failure.

``tensorforge coverage GENERATOR [--param value ...] [--vectors N] [--stall P] [--json]``
builds the driver with Verilator ``--coverage-line --coverage-toggle`` and
runs the level-1 pattern cross plus N random bench vectors (with random input
gaps and output back-pressure, so the handshake logic toggles), then prints
line and toggle coverage of the generated Verilog with the uncovered points,
and the functional coverage (``tensorforge.sim.coverage``) of the same vectors.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ...gen.cli import positive_int, probability
from ...gen.registry import ParamError

__all__ = ["add_commands"]






def _float_inputs(manifest):
    from ..coverage import _float_format
    fields = next(p for p in manifest["ports"] if p["name"] == "i__payload").get("fields") or []
    out = [(f["name"], _float_format(f.get("format"))) for f in fields]
    if not out or any(fmt is None for _, fmt in out):
        raise ParamError(f"`exhaustive` needs a core whose input fields are floating-point formats "
                         f"({manifest['generator']} has {[f['name'] for f in fields]})")
    return out


class _Bar:
    """Progress on stderr; with ``quiet`` (``--json``) only when stderr is a terminal, so a
    redirected JSON run keeps its log clean while an interactive one still shows progress."""

    def __init__(self, total, quiet):
        from tqdm import tqdm
        disable = quiet and not sys.stderr.isatty()
        self.bar = tqdm(total=total, unit="vec", unit_scale=True, dynamic_ncols=True, disable=disable, leave=False)

    def __call__(self, n):
        self.bar.update(n)

    def close(self):
        self.bar.close()


#: Generators whose input fields are ``a``, ``b`` (and ``c``) floating-point operands.
SUPPORTED = ("fma", "mul", "add")


def _supported():
    from ...gen import registry
    return [name for name in SUPPORTED if name in registry.generators()]


def _check_c(gen, params, c):
    """Validate ``--c`` before anything is built."""
    from .patterns import c_values
    if gen.name == "fma":
        c_values(c, params["acc_format"])
    elif c != "zero":
        raise ParamError(f"--c applies to fma only (the {gen.name} core has no addend)")


def _jobs(args):
    return args.jobs or max(1, os.cpu_count() or 1)


def run_exhaustive(gen, params, *, space="pairs", c="zero", a_range=None, jobs=1, chunk=1 << 20, stall=0.0,
                   build_root=None, quiet=True):
    """Build (cached) and run one exhaustive space; returns the result dict (see the module docstring)."""
    from .harness import build_driver, run_grid, run_vectors
    from .patterns import c_values, level1_vectors

    if not quiet:
        print(f"building the Verilator driver ({gen.name}) ...", flush=True)
    db = build_driver(gen, params, build_root=build_root)
    fins = _float_inputs(db.manifest)
    t0 = time.perf_counter()
    if space == "pairs":
        fa = fins[0][1]
        n_a = 1 << (fa.width - fa.pad_bits)
        if fa.pad_bits:
            raise ParamError(f"--space pairs needs a format without padding bits, not {fa}")
        lo, hi = a_range if a_range else (0, n_a)
        if not (0 <= lo < hi <= n_a):
            raise ParamError(f"--a-range must be LO:HI with 0 <= LO < HI <= {n_a}, not {lo}:{hi}")
        fb = fins[1][1] if len(fins) > 1 else fa
        cs = c_values(c, fins[2][1]) if len(fins) > 2 else np.array([0], dtype=np.uint64)
        total = (hi - lo) * (1 << fb.width) * len(cs)
        bar = _Bar(total, quiet)
        try:
            res = run_grid(db, a_range=(lo, hi), b_range=(0, 1 << fb.width), cs=[int(x) for x in cs],
                           chunk=chunk, jobs=jobs, stall=stall, progress=bar)
        finally:
            bar.close()
        res["space"] = {"kind": "pairs", "a_range": [lo, hi], "b_values": 1 << fb.width,
                        "c_values": [f"0x{int(x):x}" for x in cs[:16]] + (["..."] if len(cs) > 16 else []),
                        "c_count": int(len(cs))}
    elif space == "patterns":
        vec = level1_vectors(fins)
        total = len(next(iter(vec.values())))
        bar = _Bar(total, quiet)
        try:
            res = run_vectors(db, vec, chunk=chunk, jobs=jobs, stall=stall, progress=bar)
        finally:
            bar.close()
        res["space"] = {"kind": "level1 patterns", "values_per_field": {n: int(len(np.unique(v))) for n, v in vec.items()}}
    else:
        raise ParamError(f"--space must be pairs or patterns, not {space!r}")
    res["total_seconds"] = round(time.perf_counter() - t0, 2)
    res["build_seconds"] = round(db.build_seconds, 1)
    res["compiled"] = db.compiled
    return res


def format_exhaustive(res) -> list[str]:
    lines = [
        f"{res['top']}: {res['space']}",
        f"vectors           {res['vectors']}",
        f"mismatches        {res['mismatches']}",
        f"wall time         {res['wall_seconds']:.1f} s with {res['jobs']} worker(s), {res['shards']} shard(s)",
        f"end to end        {res['vectors_per_second']:.0f} vectors/s",
        f"RTL (Verilator)   {res['rtl_vectors_per_second_per_core']:.0f} vectors/s per core "
        f"({res['rtl_seconds']:.1f} CPU-s in the drivers)",
        f"golden (numpy)    {res['golden_vectors_per_second_per_core']:.0f} vectors/s per core "
        f"({res['golden_seconds']:.1f} CPU-s); bottleneck: {res['bottleneck']}",
    ]
    for m in res["first_mismatches"]:
        lines.append(f"MISMATCH inputs {m['inputs']} expected {m['expected']} got {m['got']}")
    return lines


def _cmd_exhaustive(args, gen, params):
    from .harness import ExhaustiveError
    a_range = None
    if args.a_range:
        try:
            lo, hi = (int(x, 0) for x in args.a_range.split(":"))
        except ValueError:
            raise ParamError(f"--a-range must be LO:HI (integers), not {args.a_range!r}") from None
        a_range = (lo, hi)
    try:
        _check_c(gen, params, args.c)
        res = run_exhaustive(gen, params, space=args.space, c=args.c, a_range=a_range, jobs=_jobs(args),
                             chunk=args.chunk, stall=args.stall, build_root=args.build_dir, quiet=args.json)
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    except ExhaustiveError as exc:
        print(f"tensorforge: exhaustive run failed: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(res, sort_keys=True))
    else:
        for line in format_exhaustive(res):
            print(line)
        print("PASS" if res["passed"] else "FAIL")
    return 0 if res["passed"] else 1


# ---------------------------------------------------------------------------------------------
# coverage


def _reduced_fields(fins, limit):
    """Per input field, level-1 values reduced so that their cross has at most ~``limit`` vectors:
    evenly spaced values plus one representative of every class (so the class cross stays complete)."""
    from ...golden.fp import classify
    from .patterns import level1_values
    sets = [level1_values(fmt) for _, fmt in fins]
    if int(np.prod([len(s) for s in sets], dtype=np.float64)) <= limit:
        return [(name, fmt, vals) for (name, fmt), vals in zip(fins, sets)]
    per = max(8, int(limit ** (1.0 / len(fins))))
    out = []
    for (name, fmt), vals in zip(fins, sets):
        c = classify(vals, fmt)
        reps = [int(np.flatnonzero(getattr(c, k))[0]) for k in ("zero", "subnormal", "normal", "inf", "qnan", "snan")
                if getattr(c, k).any()]
        keep = np.unique(np.concatenate([np.linspace(0, len(vals) - 1, per).astype(np.int64), reps]))
        out.append((name, fmt, vals[keep]))
    return out


def run_coverage(gen, params, *, vectors=20000, patterns=200_000, stall=0.3, seed=1, build_root=None, jobs=1):
    """Line/toggle coverage (Verilator) + functional coverage over level-1 patterns and random vectors.

    ``patterns`` caps the level-1 cross: when it is larger, every k-th vector of the cross is
    taken (evenly spaced, deterministic)."""
    from .. import models
    from ..coverage import for_manifest
    from .harness import build_driver, run_vectors
    from .patterns import level1_vectors
    from .vcoverage import artifact_lines, summarize

    db = build_driver(gen, params, coverage=True, build_root=build_root)
    fins = _float_inputs(db.manifest)
    pat = level1_vectors(_reduced_fields(fins, patterns))
    rng = np.random.default_rng(seed)
    rnd = models.get_model(db.generator.name).stimulus(db.params, vectors, rng)
    names = [n for n, _ in fins]
    inputs = {n: np.concatenate([pat[n], np.asarray(rnd[n], dtype=np.uint64)]) for n in names}
    datdir = db.directory / "coverage"
    datdir.mkdir(exist_ok=True)
    for old in datdir.glob("*.dat"):
        old.unlink()
    env = dict(os.environ, TF_COVERAGE_FILE=str((datdir / "run.dat").resolve()))
    res = run_vectors(db, inputs, jobs=1, stall=stall, seed=seed, env=env)
    verilog = Path(db.directory).parent.parent / "sim" / db.top / f"{db.top}.v"
    exclude = {verilog.name: artifact_lines(verilog)} if verilog.is_file() else None
    summary = summarize(sorted(datdir.glob("*.dat")), exclude=exclude)
    cov = for_manifest(db.manifest)
    functional = None
    if cov is not None:
        expected = models.get_model(db.generator.name).reference(db.params, inputs)
        functional = cov.sample(inputs, expected["d"], expected["flags"]).report()
    return {"top": db.top, "generator": db.generator.name, "params": dict(db.manifest["params"]),
            "vectors": res["vectors"], "mismatches": res["mismatches"], "stall": stall,
            "verilator": summary, "functional": functional, "dat": str(datdir / "run.dat"),
            "passed": res["passed"]}


def _cmd_coverage(args, gen, params):
    from ..coverage import format_report
    from .harness import ExhaustiveError
    try:
        res = run_coverage(gen, params, vectors=args.vectors, patterns=args.patterns, stall=args.stall,
                           seed=args.seed, build_root=args.build_dir)
    except ExhaustiveError as exc:
        print(f"tensorforge: coverage run failed: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(res, sort_keys=True))
        return 0 if res["passed"] else 1
    print(f"{res['top']}: {res['vectors']} vectors (level-1 patterns + random, gaps/back-pressure {res['stall']}), "
          f"{res['mismatches']} mismatches")
    for kind, d in res["verilator"].items():
        print(f"verilator {kind:<8} {d['percent']:6.2f}% ({d['covered']}/{d['points']} points)")
        for h in d["holes"][:10]:
            print(f"    uncovered: {h}")
    for line in format_report(res["functional"]):
        print(line)
    print(f"raw coverage data: {res['dat']}")
    print("PASS" if res["passed"] else "FAIL")
    return 0 if res["passed"] else 1


def add_commands(cli):
    common = [
        (("--build-dir",), dict(metavar="DIR", default=None, help="build root (default $TF_BUILD_DIR or ./build)")),
        (("--json",), dict(action="store_true", help="print the results as one JSON object")),
    ]
    cli.generator_command(
        "exhaustive", _cmd_exhaustive,
        "check whole input spaces of an FP core in Verilator from a C++ driver against the golden model",
        [
            (("--space",), dict(choices=("pairs", "patterns"), default="pairs",
                                help="pairs: every (a, b) pair (x --c); patterns: TestFloat level-1 cross")),
            (("--c",), dict(default="zero", metavar="VALUES",
                            help="FMA addends: bit patterns (0x3c00,0x8000), zero, specials, level1, all (default zero)")),
            (("--a-range",), dict(default=None, metavar="LO:HI", help="only a in [LO, HI) (pairs)")),
            (("--jobs",), dict(type=positive_int, default=None, help="worker processes (default: CPU count)")),
            (("--chunk",), dict(type=positive_int, default=1 << 20, help="vectors per comparison chunk (default 2^20)")),
            (("--stall",), dict(type=probability, default=0.0,
                                help="random input gaps / output back-pressure probability (default 0)")),
            *common,
        ],
        generators=_supported,
    )
    cli.generator_command(
        "coverage", _cmd_coverage,
        "Verilator line/toggle coverage + functional coverage of one FP configuration",
        [
            (("--vectors",), dict(type=positive_int, default=20000, help="random vectors after the patterns (default 20000)")),
            (("--patterns",), dict(type=positive_int, default=200_000,
                                   help="at most this many level-1 pattern vectors, evenly spaced (default 200000)")),
            (("--stall",), dict(type=probability, default=0.3, help="gap / back-pressure probability (default 0.3)")),
            (("--seed",), dict(type=int, default=1, help="random seed (default 1)")),
            *common,
        ],
        generators=_supported,
    )
