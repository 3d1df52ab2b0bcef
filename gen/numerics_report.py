"""``tensorforge numerics dot``: how far a dot-product semantics is from another, measured on data.

Runs :func:`tensorforge.golden.numerics.compare_semantics` (the golden models,
no RTL) and prints the fraction of results that differ, the error in ulps of
the reference result (max, mean, p99), the signed bias and the share of
differing results that moved toward zero; writes a histogram of the signed ulp
errors as PNG. It lets a user choose between NVIDIA-compatible and correctly
rounded hardware from data rather than from folklore.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..golden import numerics
from ..golden.dot import SEMANTICS_CHOICES, parse_semantics
from ..golden.formats import FP32, parse_float_format
from .registry import ParamError

__all__ = ["run", "add_commands"]


def run(*, k, in_format, acc_format, semantics, vs, samples, distribution, c, seed, out_dir):
    """Compare and plot; returns a JSON-able dict (written PNG path under ``png``)."""
    sem = parse_semantics(semantics, acc_format=acc_format)
    ref = parse_semantics(vs, acc_format=acc_format)
    stats, errors = numerics.compare_semantics(sem, ref, k=k, in_format=in_format, acc_format=acc_format,
                                               samples=samples, distribution=distribution, c=c, seed=seed)
    label = f"{semantics} vs {vs}, k={k}, {in_format}->{acc_format}, {distribution}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"numerics_dot_k{k}_{in_format}_{acc_format}_{semantics}_vs_{vs}_{distribution}.png"
    counts, edges = numerics.histogram(errors)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    centers = (edges[:-1] + edges[1:]) / 2
    ax.bar(centers, counts, width=1.0, color="#3b6ea5")
    ax.set_yscale("log")
    ax.set_xlabel(f"signed error in ulps of the {vs} result (end bins collect the tails)")
    ax.set_ylabel("samples")
    ax.set_title(f"{label}\n{stats.frac_differ:.1%} of {stats.n} results differ, bias {stats.mean_ulp:+.3g} ulp")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return {"label": label, "k": k, "in_format": str(in_format), "acc_format": str(acc_format),
            "semantics": semantics, "vs": vs, "samples": samples, "distribution": distribution, "c": c,
            "seed": seed, "stats": stats.as_dict(), "table": numerics.markdown_table({label: stats}),
            "png": str(png)}


def _cmd(args):
    if args.kind != "dot":
        raise ParamError(f"numerics supports 'dot', not {args.kind!r}")
    try:
        in_format = parse_float_format(args.in_format)
        acc_format = parse_float_format(args.acc_format)
        for name in (args.semantics, args.vs):
            if name not in SEMANTICS_CHOICES:
                raise ValueError(f"--semantics/--vs must be one of {', '.join(SEMANTICS_CHOICES)}, not {name!r}")
        if args.distribution not in numerics.DISTRIBUTIONS:
            raise ValueError(f"--distribution must be one of {', '.join(numerics.DISTRIBUTIONS)}, "
                             f"not {args.distribution!r}")
        result = run(k=args.k, in_format=in_format, acc_format=acc_format, semantics=args.semantics,
                     vs=args.vs, samples=args.samples, distribution=args.distribution, c=args.c,
                     seed=args.seed, out_dir=args.output)
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(result["table"], end="")
        print(f"histogram: {result['png']}")
    return 0


def add_commands(cli):
    cli.command("numerics", _cmd, "compare a dot-product semantics against another on random data (golden models)", [
        (("kind",), dict(choices=["dot"], help="what to analyse (dot)")),
        (("--k",), dict(type=int, default=4, help="block size K (default 4)")),
        (("--in-format",), dict(default="fp16", help="input format (default fp16)")),
        (("--acc-format",), dict(default=str(FP32), help="accumulator/output format (default e8m23)")),
        (("--semantics",), dict(default="volta", help=f"one of {', '.join(SEMANTICS_CHOICES)} (default volta)")),
        (("--vs",), dict(default="exact", help="reference semantics (default exact)")),
        (("--samples",), dict(type=int, default=100_000, help="random dot products (default 100000)")),
        (("--distribution",), dict(default="normal", help=f"one of {', '.join(numerics.DISTRIBUTIONS)}")),
        (("--c",), dict(default="random", choices=["random", "zero"], help="addend: random or +0")),
        (("--seed",), dict(type=int, default=0)),
        (("-o", "--output"), dict(default="build/numerics", metavar="DIR", help="where the PNG goes")),
        (("--json",), dict(action="store_true")),
    ])
