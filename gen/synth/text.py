"""Human-readable report of a :class:`~tensorforge.gen.synth.flow.SynthResult`."""

from __future__ import annotations

__all__ = ["format_result", "format_critical_path"]


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def format_critical_path(cp: dict | None, *, max_nets: int = 8) -> list:
    if not cp:
        return ["critical path: (none reported)"]
    lines = [f"critical path {cp['total_ns']:.2f} ns ({cp['logic_ns']:.2f} ns logic incl. clk-to-q/setup, "
             f"{cp['routing_ns']:.2f} ns routing, {cp['logic_levels']} logic levels"
             + (", through a DSP" if cp.get("through_dsp") else "") + ")",
             f"  from {cp['start']}",
             f"  to   {cp['end']}"]
    sigs = cp.get("signals") or cp.get("nets", [])
    if sigs:
        shown = sigs if len(sigs) <= max_nets else sigs[: max_nets // 2] + ["..."] + sigs[-(max_nets // 2):]
        lines.append("  via  " + " -> ".join(shown))
    return lines


def format_result(r) -> str:
    """The text ``tensorforge synth`` prints."""
    dsp_name = "MULT18X18D" if r.target.startswith("ecp5") else "SB_MAC16"
    bram_name = "DP16KD" if r.target.startswith("ecp5") else "SB_RAM40_4K"
    speed = f", speed {r.speed}" if r.speed is not None else ""
    seeds = ",".join(str(x["seed"]) for x in r.runs)
    lines = [
        f"{r.top} on {r.target} ({r.part} {r.package}{speed}), --freq {r.freq_mhz:g} MHz, seeds {seeds}"
        + ("" if r.dsp_inference else ", --no-dsp (multipliers in logic)"),
        f"  latency {r.latency} cycles, initiation interval {r.initiation_interval}",
        f"  core     LUT4 {_n(r.core['LUT4']):>7}   FF {_n(r.core['FF']):>7}   "
        f"DSP {_n(r.core['DSP'])} {dsp_name}   BRAM {_n(r.core['BRAM'])} {bram_name}",
    ]
    placed = r.placed or {}
    if placed:
        parts = []
        for res in ("LUT4", "FF", "DSP", "BRAM", "IO"):
            if res in placed:
                label = "LC" if (res == "LUT4" and r.target.startswith("ice40")) else res
                parts.append(f"{label} {placed[res]['used']:,}/{placed[res]['available']:,}")
        lines.append("  placed   " + "   ".join(parts) + "  (whole design incl. out-of-context wrapper)")
    f = r.fmax
    per_seed = ", ".join(f"{x['fmax_mhz']:.1f}" for x in r.runs)
    lines.append(f"  Fmax     {f['median']:.1f} MHz median (min {f['min']:.1f}, max {f['max']:.1f}; "
                 f"per seed {per_seed})")
    lines += ["  " + ln for ln in format_critical_path(r.critical_path)]
    for note in r.notes:
        lines.append(f"  note: {note}")
    cached = sum(1 for x in r.runs if x.get("cached"))
    lines.append(f"  build {r.build_dir}" + (f" ({cached} of {len(r.runs)} runs from cache)" if cached else ""))
    return "\n".join(lines)
