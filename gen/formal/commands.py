"""``tensorforge prove GENERATOR [--param value ...] [--property P ...] [--bmc-depth N] [--engine E]
[--miter M] [--json]``.

Runs the formal harness (:mod:`tensorforge.gen.formal.harness`) on one
configuration and prints each property with its status (proved /
bmc-passed / FAILED with the counterexample / timeout), its method
(``k-induction (k=N)`` or ``BMC depth N``, with the engine) and its time.
Exit status: 0 when no property failed, errored or timed out, 1 otherwise,
2 for a bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..registry import ParamError
from .harness import PROPERTIES, HarnessError
from .prove import ENGINES, MITERS, FormalError, prove

__all__ = ["add_commands"]


def _depth(text):
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer between 1 and 200, not {text!r}") from None
    if not 1 <= n <= 200:
        raise argparse.ArgumentTypeError(f"must be an integer between 1 and 200, not {text!r}")
    return n


def _cmd_prove(args, gen, params):
    props = args.property or None
    if props:
        bad = [p for p in props if p not in PROPERTIES]
        if bad:
            raise ParamError(f"--property must be one of {', '.join(PROPERTIES)}, not {bad[0]!r}")
    quiet = args.json

    def on_result(r):
        if not quiet:
            print(f"  {r.property:<20} {r.status:<11} {r.method:<42} {r.seconds:7.1f} s   {r.description}",
                  flush=True)

    try:
        if not quiet:
            print(f"tensorforge prove {gen.name}: engine {args.engine} (sby: SymbiYosys smtbmc yices; unroll: "
                  f"hash-consed unrolling + yices), miter {args.miter}")
            print(f"  {'property':<20} {'status':<11} {'method':<42} {'time':>9}")
        top, results = prove(gen, params, properties=props, bmc_depth=args.bmc_depth, build_root=args.build_dir,
                             jobs=args.jobs, timeout=args.timeout, on_result=on_result, engine=args.engine,
                             miter=args.miter)
    except (HarnessError, FormalError) as exc:
        print(f"tensorforge: prove failed: {exc}", file=sys.stderr)
        return 1
    ok = all(r.status in ("proved", "bmc-passed") for r in results)
    if args.json:
        print(json.dumps({"top": top, "generator": gen.name, "passed": ok,
                          "properties": [r.to_dict() for r in results]}, indent=2))
    else:
        print(f"{top}: " + ", ".join(f"{r.property} {r.status}" for r in results))
        for r in results:
            if r.status not in ("proved", "bmc-passed"):
                print(f"  {r.property}: {r.summary()}")
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def add_commands(cli):
    cli.generator_command(
        "prove", _cmd_prove,
        "formal proofs for one configuration (stream protocol, counting, latency, pipelined == unpipelined)",
        [
            (("--property",), dict(action="append", metavar="P",
                                   help=f"only this property (repeatable): {', '.join(PROPERTIES)}")),
            (("--bmc-depth",), dict(type=_depth, default=None, metavar="N",
                                    help="bound of the BMC-only properties (default 2*latency+8)")),
            (("--jobs",), dict(type=int, default=1, help="properties run in parallel (default 1)")),
            (("--engine",), dict(choices=ENGINES, default="auto",
                                 help="auto (default): lockstep equivalence miters on the unrolling engine, the "
                                      "rest on SymbiYosys; sby or unroll for every property")),
            (("--miter",), dict(choices=MITERS, default="auto",
                                help="equivalence miter: lockstep (shadow of the inputs shifting with the pipeline; "
                                     "needs stall-on-back-pressure flow control), scoreboard (queue of reference "
                                     "outputs), auto (lockstep when a StallPipeline valid chain is found)")),
            (("--timeout",), dict(type=float, default=None, metavar="S", help="seconds per property")),
            (("--build-dir",), dict(metavar="DIR", default=None,
                                    help="build root (default $TF_BUILD_DIR or ./build); work in DIR/formal/TOP")),
            (("--json",), dict(action="store_true", help="print the results as JSON")),
        ],
    )
