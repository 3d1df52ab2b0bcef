"""The ``tensorforge`` command line.

Subcommands come from command modules listed in :data:`COMMAND_MODULES`;
each defines ``add_commands(cli)`` and calls :meth:`Cli.command` (plain
subcommand) or :meth:`Cli.generator_command` (subcommand whose first argument
is a registered generator followed by that generator's ``--param value``
options). Command modules outside ``gen`` (``tensorforge.sim.commands``) are
imported by name when the parser is built, so package imports still run one
way (golden <- rtl <- gen <- sim).

Errors in the command line (unknown generator, unknown or out-of-range
parameter) print one line ``tensorforge: error: ...`` naming what is allowed
and exit with status 2 before anything is written.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from . import registry
from .registry import ParamError

__all__ = ["main", "Cli", "COMMAND_MODULES", "value_type", "positive_int", "non_negative_int", "probability",
           "fraction"]

#: Modules that contribute subcommands (``add_commands(cli)``), in help order.
COMMAND_MODULES = [
    "tensorforge.gen.cli",          # list, generate
    "tensorforge.sim.commands",     # sim, demo
    "tensorforge.gen.synth.commands",  # synth, sweep, tables
    "tensorforge.gen.formal.commands",  # prove
    "tensorforge.sim.exhaustive.commands",  # exhaustive, coverage
    "tensorforge.gen.numerics_report",  # numerics
    "tensorforge.gen.experiments.commands",  # experiment
]


# -- argparse value types shared by every command module (messages are pinned by tests) -----------

def value_type(convert, accept, description):
    """An argparse ``type=``: ``convert(text)`` then ``accept(value)``, else
    ``must be <description>, not '<text>'``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {description}, not {text!r}")
        return value
    return parse


def _int(text):
    return int(str(text), 0)


#: ``--vectors``-style counts, seeds, gap/stall probabilities, densities.
positive_int = value_type(_int, lambda n: n >= 1, "a positive integer")
non_negative_int = value_type(_int, lambda n: n >= 0, "a non-negative integer")
probability = value_type(float, lambda p: 0.0 <= p < 1.0, "a number >= 0 and < 1")
fraction = value_type(float, lambda d: 0.0 <= d <= 1.0, "a number between 0 and 1")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ParamError(message)


class Cli:
    """Builds the argparse tree; command modules add their subcommands through it."""

    def __init__(self):
        self.parser = _Parser(prog="tensorforge", allow_abbrev=False,
                              description="Generate, verify and synthesize deep-learning arithmetic cores.")
        self.sub = self.parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(self, name, func, help, arguments=()):
        """Add ``tensorforge NAME``; ``arguments`` is a list of (args, kwargs) for add_argument;
        ``func(args)`` returns the exit status."""
        # argparse %-formats help strings: escape literal percent signs once, here
        p = self.sub.add_parser(name, help=help.replace("%", "%%"), description=help, allow_abbrev=False)
        for a, kw in arguments:
            if "help" in kw:
                kw = dict(kw, help=kw["help"].replace("%", "%%"))
            p.add_argument(*a, **kw)
        p.set_defaults(func=func, takes_generator=False)
        return p

    def generator_command(self, name, func, help, arguments=(), generators=None):
        """Add ``tensorforge NAME GENERATOR [--param value ...] [options]``.

        ``func(args, gen, params)`` gets the Generator and its resolved,
        validated parameters. ``generators`` optionally restricts the allowed
        generator names (e.g. ``sim`` only for generators with a bench).
        """
        p = self.command(name, func, help, arguments)
        p.add_argument("generator", metavar="GENERATOR", help="a generator from `tensorforge list`")
        p.set_defaults(takes_generator=True, allowed_generators=generators)
        return p


def parse(argv):
    """Parse ``argv`` -> (args, generator or None, params or None). Raises ParamError."""
    cli = Cli()
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(cli)
    args, rest = cli.parser.parse_known_args(argv)
    if args.command is None:
        cli.parser.print_help()
        raise SystemExit(0)
    if not args.takes_generator:
        if rest:
            raise ParamError(f"unrecognized arguments: {' '.join(rest)}")
        return args, None, None
    allowed = args.allowed_generators
    if allowed is not None and args.generator not in allowed():
        raise ParamError(f"`{args.command}` does not support generator {args.generator!r}; "
                         f"allowed: {', '.join(sorted(allowed()))}")
    gen = registry.get(args.generator)
    gp = _Parser(prog=f"tensorforge {args.command} {gen.name}", add_help=False, allow_abbrev=False)
    for p in gen.params:
        gp.add_argument(p.flag, dest=p.name, default=None)
    gargs, unknown = gp.parse_known_args(rest)
    if unknown:
        raise ParamError(f"unknown argument {unknown[0]!r} for generator {gen.name!r}; parameters: "
                         f"{', '.join(p.flag for p in gen.params)} (see `tensorforge list {gen.name}`)")
    given = {k: v for k, v in vars(gargs).items() if v is not None}
    params = registry.resolve(gen, given, from_text=True)
    return args, gen, params


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args, gen, params = parse(argv)
        if args.takes_generator:
            status = args.func(args, gen, params)
        else:
            status = args.func(args)
    except ParamError as exc:
        print(f"tensorforge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tensorforge: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


# ---------------------------------------------------------------------------------------------
# list / generate


def _cmd_list(args):
    gens = registry.generators()
    names = [args.generator] if args.generator else sorted(gens)
    out = []
    for name in names:
        gen = registry.get(name)
        out.append({
            "name": gen.name, "summary": gen.summary,
            "params": [{"flag": p.flag, "default": p.show(p.default), "allowed": p.allowed, "help": p.help}
                       for p in gen.params],
        })
    if args.json:
        print(json.dumps(out if not args.generator else out[0], indent=2))
        return 0
    for g in out:
        print(f"{g['name']}: {g['summary']}")
        for p in g["params"]:
            print(f"    {p['flag']:<16} default {p['default']:<10} {p['help']} ({p['allowed']})")
        print()
    return 0


def _cmd_generate(args, gen, params):
    from .manifest import elaborate, write
    art = elaborate(gen, params)          # everything is validated and converted before any write
    out = Path(args.output) if args.output else Path("build") / "generated" / art.top
    paths = write(art, out, fusesoc=not args.no_fusesoc)
    if args.json:
        print(json.dumps({"top": art.top, "files": [str(p) for p in paths], "sha256": art.sha256,
                          "latency": art.manifest["latency"]}))
    else:
        for p in paths:
            print(p)
        print(f"{art.top}: latency {art.manifest['latency']} cycles, "
              f"initiation interval {art.manifest['initiation_interval']}")
    return 0


def add_commands(cli: Cli):
    cli.command("list", _cmd_list, "list generators with their parameters, defaults and allowed values", [
        (("generator",), dict(nargs="?", help="show only this generator")),
        (("--json",), dict(action="store_true", help="machine-readable output")),
    ])
    cli.generator_command("generate", _cmd_generate, "write TOP.v, TOP.json (manifest) and TOP.core for one configuration", [
        (("-o", "--output"), dict(metavar="DIR", help="output directory (default build/generated/TOP)")),
        (("--no-fusesoc",), dict(action="store_true", help="do not write the FuseSoC .core file")),
        (("--json",), dict(action="store_true", help="print the written files as JSON")),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
