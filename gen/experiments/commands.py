"""``tensorforge experiment NAME``: experiments that back the README's claims with data."""

from __future__ import annotations

import json

from ..registry import ParamError

__all__ = ["add_commands", "EXPERIMENTS"]

#: experiment name -> one-line description
EXPERIMENTS = {
    "flexpoint": "train a 64-64-10 MLP on digits in FP32, FP16 (no loss scaling) and flex16+5 with Autoflex",
    "eie-load-balance": "EIE cycle model: queue depth 1..16 x 4/16/64 PEs at 9% weights, 35% activations "
                        "(plus RTL spot checks)",
}


def _flexpoint(args):
    from . import flexpoint
    lr = args.lr if args.lr is not None else 0.125
    result = flexpoint.run(epochs=args.epochs if args.epochs is not None else 60, seed=args.seed,
                           out_dir=args.output, learning_rate=lr, include_dfp16=args.dfp16,
                           progress=not args.json)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(flexpoint.summary(result))
        print(f"plots in {args.output}")
    return 0


def _eie_load_balance(args):
    from . import eie_load_balance
    result = eie_load_balance.run(out_dir=args.output, seed=args.seed if args.seed else 1)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(eie_load_balance.summary(result))
        print(f"plot: {result['plot']}")
    bad = [c for c in result["rtl_checks"] if c["mismatches"] or c["rtl_cycles"] != c["model_cycles"]]
    return 1 if bad else 0


def _cmd(args):
    if args.name not in EXPERIMENTS:
        raise ParamError(f"unknown experiment {args.name!r}; allowed: {', '.join(EXPERIMENTS)}")
    try:
        return {"flexpoint": _flexpoint, "eie-load-balance": _eie_load_balance}[args.name](args)
    except ValueError as exc:
        raise ParamError(str(exc)) from None


def add_commands(cli):
    cli.command("experiment", _cmd, "run an experiment: " + "; ".join(f"{k}: {v}" for k, v in EXPERIMENTS.items()), [
        (("name",), dict(help=", ".join(EXPERIMENTS))),
        (("--epochs",), dict(type=int, default=None, help="training epochs (flexpoint default 60)")),
        (("--seed",), dict(type=int, default=0)),
        (("--lr",), dict(type=float, default=None, help="learning rate, a power of two (flexpoint default 0.125)")),
        (("--dfp16",), dict(action="store_true", help="also train with DFP-16 (flexpoint)")),
        (("-o", "--output"), dict(default="build/experiments", metavar="DIR", help="where plots go")),
        (("--json",), dict(action="store_true", help="one JSON object with results and settings")),
    ])
