"""Reference tables: one configuration per generator family, synthesized on the reference targets.

:data:`REFERENCE_CONFIGS` is the one place the list lives: a new generator
family adds one :class:`Reference` line. Entries whose generator is not
registered (yet) are skipped with a note, so the list may name families
before they land. ``tensorforge tables`` (``make tables``) writes
``build/tables/reference.md`` (Markdown, for the README) and
``reference.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from .flow import DoesNotFit, SynthError, synthesize, tool_versions
from .targets import get_target

__all__ = ["Reference", "REFERENCE_CONFIGS", "TABLE_TARGETS", "reference_tables", "markdown_table"]


@dataclass(frozen=True)
class Reference:
    """A reference configuration: generator name, parameters as command-line text, what it is,
    and ``ecp5_options``: extra :func:`~.flow.synthesize` options for ECP5 targets (e.g.
    ``{"dsp_registers": True}``)."""

    generator: str
    params: dict = field(default_factory=dict)
    description: str = ""
    ecp5_options: dict = field(default_factory=dict)


#: One line per generator family (parameters as on the command line; defaults for the rest).
REFERENCE_CONFIGS = [
    Reference("fma", {}, "IEEE FMA FP16 x FP16 + FP32, default stages"),
    Reference("mma", {"semantics": "volta"}, "4x4x4 MMA, Volta semantics (64 multiplies/cycle)"),
    Reference("flexdot", {}, "flexpoint flex16+5 dot product, defaults"),
    Reference("systolic", {"rows": "16", "cols": "16", "dataflow": "ws", "in_format": "i8", "acc_format": "i32",
                           "stages": "7", "logic_multipliers": "100"},
              "16x16 int8 weight-stationary systolic array (256 MACs/cycle; 156 multipliers in DSPs, 100 in logic)",
              ecp5_options={"dsp_registers": True}),
    Reference("eie_pe", {}, "EIE processing element, defaults"),
]

#: Targets of the published table, in column order.
TABLE_TARGETS = ("ecp5-25k", "ecp5-85k", "ice40-up5k")


def _cell_fit(msg: str) -> str:
    return msg.split(": ", 1)[1] if ": " in msg else msg


def markdown_table(rows: list, *, seeds: int) -> str:
    head = ("| Core | Configuration | Target | LUT4 | FF | DSP | BRAM | Fmax MHz (median of "
            f"{seeds}; min-max) | Latency | Critical path |")
    out = [head, "|" + "---|" * 10]
    for r in rows:
        cfg = ", ".join([f"{k}={v}" for k, v in r["params"].items()]
                        + [f"--{k.replace('_', '-')}" for k, v in (r.get("options") or {}).items() if v is True])
        if r["status"] != "ok":
            out.append(f"| {r['generator']} | {cfg} | {r['target']} | {r['status']}: {_cell_fit(r['message'])} "
                       f"| | | | | | |")
            continue
        cp = r.get("critical_path") or {}
        sigs = cp.get("signals") or []
        cp_text = (f"{cp.get('total_ns', 0):.1f} ns, {cp.get('logic_levels', 0)} levels"
                   + (", via DSP" if cp.get("through_dsp") else "")
                   + (f": `{sigs[0]}` -> `{sigs[-1]}`" if len(sigs) >= 2 else "")) if cp else ""
        star = " *" if r.get("optimistic") else ""
        out.append(f"| {r['generator']} | {cfg} | {r['target']} | {r['core']['LUT4']:,} | {r['core']['FF']:,} | "
                   f"{r['core']['DSP']} | {r['core']['BRAM']} | {r['fmax']['median']:.1f}{star} "
                   f"({r['fmax']['min']:.1f}-{r['fmax']['max']:.1f}) | {r['latency']} | {cp_text} |")
    return "\n".join(out) + "\n"


def reference_tables(*, out_dir="build/tables", seeds: int = 3, targets=TABLE_TARGETS, configs=None,
                     progress=None, build_dir="build/synth", log=print) -> dict:
    """Synthesize every registered reference configuration on every target; write
    ``reference.md`` and ``reference.json`` into ``out_dir``; return ``{"rows", "md", "json"}``."""
    configs = REFERENCE_CONFIGS if configs is None else configs
    gens = registry.generators()
    rows, skipped = [], []
    for ref in configs:
        if ref.generator not in gens:
            skipped.append(f"{ref.generator}: not registered")
            log(f"tables: skipping {ref.generator} (generator not registered)")
            continue
        try:
            params = registry.resolve(ref.generator, ref.params, from_text=True)
        except registry.ParamError as exc:
            skipped.append(f"{ref.generator}: {exc}")
            log(f"tables: skipping {ref.generator}: {exc}")
            continue
        gen = gens[ref.generator]
        shown = {p.name: p.show(params[p.name]) for p in gen.params}
        for target in targets:
            base = {"generator": gen.name, "description": ref.description, "params": shown, "target": target,
                    "top": gen.top(params)}
            try:
                extra = ref.ecp5_options if get_target(target).family == "ecp5" else {}
                r = synthesize(gen, params, target, seeds=seeds, progress=progress, build_dir=build_dir, **extra)
            except DoesNotFit as exc:
                rows.append({**base, "status": "does not fit", "message": str(exc)})
                log(f"tables: {gen.name} {str(exc)}")
                continue
            except SynthError as exc:
                rows.append({**base, "status": "failed", "message": str(exc).splitlines()[0]})
                log(f"tables: {gen.name} on {target} failed: {str(exc).splitlines()[0]}")
                continue
            rows.append({**base, "status": "ok", "options": extra, "core": r.core, "fmax": r.fmax, "latency": r.latency,
                         "critical_path": r.critical_path, "optimistic": any("optimistic" in n for n in r.notes),
                         "placed": r.placed, "part": r.part, "package": r.package, "speed": r.speed,
                         "freq_mhz": r.freq_mhz})
            log(f"tables: {gen.name} on {target}: {r.core['LUT4']:,} LUT4, {r.core['DSP']} DSP, "
                f"{r.fmax['median']:.1f} MHz")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tools = tool_versions()
    tdesc = "; ".join(f"{t}: {get_target(t).describe()}, --freq {get_target(t).default_freq_mhz:g} MHz"
                      for t in targets)
    md = [
        "Reference configurations (regenerate with `make tables`, i.e. `tensorforge tables`).",
        f"Out-of-context synthesis, every core port registered; LUT4/FF/DSP/BRAM count the core alone; "
        f"Fmax from nextpnr over seeds 1..{seeds}. Targets: {tdesc}.",
        "Tools: " + ", ".join(f"{k} {v}" for k, v in tools.items()) + ".",
        "",
        markdown_table(rows, seeds=seeds),
    ]
    if any(r.get("optimistic") for r in rows):
        md.append("\\* iCE40 with SB_MAC16: nextpnr-ice40 leaves paths through the DSP untimed, so the Fmax is "
                  "optimistic (`tensorforge synth ... --no-dsp` gives a fully timed figure).\n")
    if skipped:
        md.append("Not in the table: " + "; ".join(skipped) + ".\n")
    md_path, json_path = out / "reference.md", out / "reference.json"
    md_path.write_text("\n".join(md))
    json_path.write_text(json.dumps({"seeds": seeds, "targets": list(targets), "tools": tools, "rows": rows,
                                     "skipped": skipped}, indent=2, sort_keys=True) + "\n")
    return {"rows": rows, "md": str(md_path), "json": str(json_path), "skipped": skipped}
