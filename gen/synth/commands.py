"""CLI subcommands ``synth``, ``sweep`` and ``tables`` (listed in ``gen/cli.py`` COMMAND_MODULES).

Exit status: 0 on success; 1 when the design does not fit the target
("does not fit ecp5-25k: needs N LUT4, has M") or a tool fails; 2 for a bad
command line (unknown generator, parameter, target, package or speed grade).
"""

from __future__ import annotations

import json
import sys

from ..cli import non_negative_int, value_type
from ..registry import ParamError
from .flow import DoesNotFit, SynthError, synthesize_artifact, tool_versions
from .targets import TARGETS, get_target

__all__ = ["add_commands"]


_positive_int = value_type(int, lambda v: 1 <= v <= 100, "an integer between 1 and 100")
_freq = value_type(float, lambda v: 1 <= v <= 1000, "a number of MHz between 1 and 1000")


def _target_args(default_seeds):
    return [
        (("--target",), dict(default="ecp5-25k", metavar="T",
                             help=f"one of {', '.join(TARGETS)} (default ecp5-25k)")),
        (("--package",), dict(default=None, help="device package (default CABGA381 on ECP5, sg48 on iCE40)")),
        (("--speed",), dict(default=None, type=int, help="ECP5 speed grade 6, 7 or 8 (default 6)")),
        (("--seeds",), dict(default=default_seeds, type=_positive_int, metavar="N",
                            help=f"place-and-route seeds 1..N (default {default_seeds})")),
        (("--freq",), dict(default=None, type=_freq, metavar="MHz",
                           help="nextpnr target frequency (default 200 on ECP5, 100 on iCE40)")),
        (("--no-dsp",), dict(action="store_true",
                             help="no DSP inference, multipliers in logic (on iCE40 this gives fully timed "
                                  "paths: nextpnr-ice40 leaves SB_MAC16 paths untimed)")),
        (("--max-dsp",), dict(default=None, type=non_negative_int, metavar="N",
                              help="use at most N DSP blocks (default: all of the device); the smallest "
                                   "multipliers beyond them are built from logic, Booth-encoded")),
        (("--dsp-registers",), dict(action="store_true",
                                    help="ECP5: move the operand and product registers of each multiplier "
                                         "into its MULT18X18D before place-and-route (shorter paths when DSP "
                                         "blocks sit far from their logic)")),
        (("--no-cache",), dict(action="store_true", help="rerun the tools even if build/synth has the result")),
        (("--build-dir",), dict(default="build/synth", metavar="DIR", help="cache/work directory (default build/synth)")),
    ]


def _target(args):
    try:
        return get_target(args.target, package=args.package, speed=args.speed)
    except ValueError as exc:
        raise ParamError(str(exc)) from None


def _options(args):
    return dict(seeds=args.seeds, freq=args.freq, dsp=not args.no_dsp, cache=not args.no_cache,
                build_dir=args.build_dir, max_dsp=args.max_dsp, dsp_registers=args.dsp_registers)


def _cmd_synth(args, gen, params):
    from ..manifest import elaborate
    from .text import format_result
    tgt = _target(args)
    art = elaborate(gen, params)
    try:
        r = synthesize_artifact(art, tgt, **_options(args))
    except DoesNotFit as exc:
        if args.json:
            print(json.dumps({"status": "does_not_fit", "generator": gen.name, "top": art.top,
                              "target": tgt.name, "message": str(exc),
                              "shortfalls": [{"resource": r_, "needed": n, "available": h}
                                             for r_, n, h in exc.shortfalls],
                              "tools": tool_versions(tgt.family)}, indent=2))
        print(f"tensorforge synth: {art.top} {exc}", file=sys.stderr)
        return 1
    except SynthError as exc:
        print(f"tensorforge synth: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"status": "ok", **r.to_json()}, indent=2, sort_keys=True))
    else:
        print(format_result(r))
    return 0


def _parse_sweep_param(text):
    if "=" not in text:
        raise ParamError(f"--param must be NAME=v1,v2,..., not {text!r}")
    name, values = text.split("=", 1)
    name = name.strip().lstrip("-").replace("-", "_")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not name or not vals:
        raise ParamError(f"--param must be NAME=v1,v2,..., not {text!r}")
    return name, vals


def _cmd_sweep(args, gen, params):
    from .sweep import sweep
    tgt = _target(args)
    name, values = _parse_sweep_param(args.param)
    gen.param(name)  # ParamError naming the allowed parameters
    try:
        out = sweep(gen, name, values, params, tgt.name, out_dir=args.output, package=args.package,
                    speed=args.speed, **_options(args))
    except SynthError as exc:
        print(f"tensorforge sweep: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for row in out["rows"]:
            if row["status"] == "ok":
                print(f"{name}={row['value']:<8} {row['top']}: {row['lut4']:,} LUT4, {row['ff']:,} FF, "
                      f"{row['dsp']} DSP, Fmax {row['fmax_median_mhz']:.1f} MHz "
                      f"({row['fmax_min_mhz']:.1f}-{row['fmax_max_mhz']:.1f}), latency {row['latency']}")
            else:
                print(f"{name}={row['value']:<8} {row['top']}: {row['message']}")
        print(out["csv"])
        print(out["png"])
    return 0


def _cmd_tables(args):
    from .tables import TABLE_TARGETS, reference_tables
    targets = tuple(t.strip() for t in args.targets.split(",")) if args.targets else TABLE_TARGETS
    for t in targets:
        if t not in TARGETS:
            raise ParamError(f"--targets must list targets from {', '.join(TARGETS)}, not {t!r}")
    configs = None
    if args.generators:
        from .tables import REFERENCE_CONFIGS
        names = [g.strip() for g in args.generators.split(",") if g.strip()]
        known = [r.generator for r in REFERENCE_CONFIGS]
        for n in names:
            if n not in known:
                raise ParamError(f"--generators must list reference families from {', '.join(known)}, not {n!r}")
        configs = [r for r in REFERENCE_CONFIGS if r.generator in names]
    out = reference_tables(out_dir=args.output, seeds=args.seeds, targets=targets, build_dir=args.build_dir,
                           configs=configs, log=lambda s: print(s, file=sys.stderr))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(open(out["md"]).read())
        print(out["md"])
        print(out["json"])
    return 1 if any(r["status"] == "failed" for r in out["rows"]) else 0


def add_commands(cli):
    cli.generator_command(
        "synth", _cmd_synth,
        "synthesize and place-and-route one configuration out of context (Yosys + nextpnr); "
        "print LUT4/FF/DSP/BRAM, Fmax over seeds and the critical path",
        _target_args(3) + [(("--json",), dict(action="store_true", help="one JSON object incl. tool versions"))])
    cli.generator_command(
        "sweep", _cmd_sweep,
        "synthesize a generator for several values of one parameter; write CSV and a PNG plot of Fmax and LUT4",
        [(("--param",), dict(required=True, metavar="NAME=v1,v2,...", help="the swept parameter and its values"))]
        + _target_args(1)
        + [(("-o", "--output"), dict(default="build/sweep", metavar="DIR", help="output directory (default build/sweep)")),
           (("--json",), dict(action="store_true", help="print the rows and file names as JSON"))])
    cli.command(
        "tables", _cmd_tables,
        "synthesize the reference configuration of every generator family on ecp5-25k, ecp5-85k and ice40-up5k; "
        "write build/tables/reference.md and .json",
        [(("--seeds",), dict(default=3, type=_positive_int, metavar="N", help="seeds per run (default 3)")),
         (("--targets",), dict(default=None, metavar="T1,T2", help="comma-separated targets")),
         (("--generators",), dict(default=None, metavar="G1,G2",
                                  help="only these reference families (default: all registered)")),
         (("-o", "--output"), dict(default="build/tables", metavar="DIR", help="output directory (default build/tables)")),
         (("--build-dir",), dict(default="build/synth", metavar="DIR", help="synthesis cache (default build/synth)")),
         (("--json",), dict(action="store_true", help="print rows as JSON"))])
