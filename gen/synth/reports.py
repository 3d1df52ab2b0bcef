"""Parsers for the tool reports: Yosys ``stat -json`` and nextpnr ``--report`` JSON / log.

All functions are pure (dict/str in, dict out) so they are unit-tested on
captured report snippets without running the tools.

Generic resource names (see :data:`~tensorforge.gen.synth.targets.RESOURCE_NAMES`):

=======  ==================================================  ==========================
name     ECP5 (Yosys cells / nextpnr bels)                   iCE40
=======  ==================================================  ==========================
LUT4     LUT4 + 2 per CCU2C + 4 per TRELLIS_DPR16X4          SB_LUT4
         / TRELLIS_COMB                                      / ICESTORM_LC (logic cells)
FF       TRELLIS_FF                                          SB_DFF* (every variant)
DSP      MULT18X18D                                          SB_MAC16 / ICESTORM_DSP
BRAM     DP16KD + PDPW16KD                                   SB_RAM40_4K / ICESTORM_RAM
IO       TRELLIS_IO                                          SB_IO
=======  ==================================================  ==========================
"""

from __future__ import annotations

import re
import statistics

__all__ = [
    "cell_resources", "parse_yosys_stat", "parse_nextpnr_report", "parse_utilisation_log",
    "summarize_critical_path", "signal_name", "over_capacity", "nextpnr_error", "fmax_summary",
]

_NEXTPNR_BELS = {
    "ecp5": {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "DSP": "MULT18X18D", "BRAM": "DP16KD", "IO": "TRELLIS_IO"},
    "ice40": {"LUT4": "ICESTORM_LC", "DSP": "ICESTORM_DSP", "BRAM": "ICESTORM_RAM", "IO": "SB_IO"},
}


def cell_resources(cells: dict, family: str) -> dict:
    """Yosys cell counts (``{"LUT4": 12, "CCU2C": 3, ...}``) -> generic resources."""
    c = {k.lstrip("\\$"): v for k, v in cells.items()}
    if family == "ecp5":
        return {
            "LUT4": c.get("LUT4", 0) + 2 * c.get("CCU2C", 0) + 4 * c.get("TRELLIS_DPR16X4", 0),
            "FF": c.get("TRELLIS_FF", 0),
            "DSP": c.get("MULT18X18D", 0),
            "BRAM": c.get("DP16KD", 0) + c.get("PDPW16KD", 0),
        }
    if family == "ice40":
        return {
            "LUT4": c.get("SB_LUT4", 0),
            "FF": sum(v for k, v in c.items() if k.startswith("SB_DFF")),
            "DSP": c.get("SB_MAC16", 0),
            "BRAM": c.get("SB_RAM40_4K", 0),
        }
    raise ValueError(f"family must be ecp5 or ice40, not {family!r}")


def _module(stat: dict, name: str) -> dict:
    mods = stat.get("modules", {})
    for key in (name, "\\" + name):
        if key in mods:
            return mods[key]
    raise KeyError(f"module {name!r} not in Yosys statistics (have {', '.join(sorted(mods))})")


def parse_yosys_stat(stat: dict, family: str, *, core: str, wrapper: str | None = None) -> dict:
    """Yosys ``stat -json`` (run with the core kept as its own module) -> resources.

    Returns ``{"core": {...}, "design": {...}, "core_cells": {...}, "design_cells": {...},
    "yosys": version}`` where ``core`` counts the core module alone and
    ``design`` the whole hierarchy (core + wrapper).
    """
    core_cells = {k.lstrip("\\"): v for k, v in _module(stat, core).get("num_cells_by_type", {}).items()}
    design_cells = {k.lstrip("\\"): v for k, v in stat.get("design", {}).get("num_cells_by_type", {}).items()}
    if not design_cells and wrapper is not None:  # single-module statistics
        design_cells = {k.lstrip("\\"): v for k, v in _module(stat, wrapper).get("num_cells_by_type", {}).items()}
    design_cells.pop(core, None)
    for cells in (core_cells, design_cells):   # debug-info cells, not hardware
        for k in [k for k in cells if k.startswith("$scopeinfo")]:
            del cells[k]
    out = {
        "core": cell_resources(core_cells, family),
        "design": cell_resources(design_cells, family),
        "core_cells": {k: v for k, v in sorted(core_cells.items())},
        "design_cells": {k: v for k, v in sorted(design_cells.items())},
    }
    creator = stat.get("creator", "")
    m = re.match(r"(Yosys \S+)(?: \(git sha1 ([0-9a-f]+))?", creator)
    out["yosys"] = (m.group(1) + (f" ({m.group(2)})" if m.group(2) else "")) if m else creator
    return out


def summarize_critical_path(entry: dict, *, strip_prefix: str = "core.") -> dict:
    """One ``critical_paths`` entry of a nextpnr report -> summary.

    ``total_ns`` (sum of all segments), ``logic_ns``, ``routing_ns``,
    ``logic_levels`` (LUTs, DSPs and carry chains traversed; a carry chain counts once),
    ``start`` / ``end`` (``cell.port``), ``nets`` (routed nets in order, without
    the wrapper instance prefix; zero-delay hops inside carry chains left out), ``signals``
    (the design signals those nets come from, see :func:`signal_name`) and ``through_dsp`` (a DSP cell on the path).
    """
    segs = entry.get("path", [])
    total = sum(s.get("delay", 0.0) for s in segs)
    logic = sum(s.get("delay", 0.0) for s in segs if s.get("type") in ("logic", "clk-to-q", "setup"))
    routing = sum(s.get("delay", 0.0) for s in segs if s.get("type") == "routing")
    # a logic level is a cell whose output leaves through a real net: the hops inside a carry
    # chain (zero-delay routing between carry cells) count once per chain
    levels = 0
    for k, s in enumerate(segs):
        if s.get("type") != "logic":
            continue
        nxt = segs[k + 1] if k + 1 < len(segs) else None
        if nxt is None or nxt.get("type") != "routing" or nxt.get("delay", 0.0) > 0.0:
            levels += 1

    def name(n):
        return n[len(strip_prefix):] if strip_prefix and n.startswith(strip_prefix) else n

    nets = []
    for s in segs:
        if s.get("type") == "routing" and s.get("net") and s.get("delay", 0.0) > 0.0:
            n = name(s["net"])
            if not nets or nets[-1] != n:
                nets.append(n)
    signals = []
    for n in nets:
        sig = signal_name(n)
        if not signals or signals[-1] != sig:
            signals.append(sig)
    # a DSP traversed as combinational logic (input pin -> output pin of the same DSP cell);
    # nextpnr-ice40 never does this (SB_MAC16 is a timing endpoint there)
    # (recognized by its pins: multiplier inputs A<n>/B<n> to product outputs P<n>/O<n>)
    dsp = any(s.get("type") == "logic" and s.get("from", {}).get("cell") == s.get("to", {}).get("cell")
              and re.fullmatch(r"[AB]\d+", s["from"].get("port", ""))
              and re.fullmatch(r"[PO]\d+", s["to"].get("port", "")) for s in segs)
    start = f"{name(segs[0]['from']['cell'])}.{segs[0]['from']['port']}" if segs else ""
    end = f"{name(segs[-1]['to']['cell'])}.{segs[-1]['to']['port']}" if segs else ""
    return {
        "from": entry.get("from", ""), "to": entry.get("to", ""),
        "total_ns": round(total, 3), "logic_ns": round(logic, 3), "routing_ns": round(routing, 3),
        "logic_levels": levels, "start": start, "end": end, "nets": nets, "signals": signals,
        "through_dsp": dsp,
    }


_TECH_SUFFIX = re.compile(r"_(?:TRELLIS_|SB_|LUT4|CCU2C|L6MUX21|PFUMX|MULT18X18D|ALU54B|DP16KD|ICESTORM_)")


def signal_name(net: str) -> str:
    """The design signal a routed net comes from: Yosys names technology-mapped nets after the
    signal they drive (``p_s6_sign_LUT4_B_C[3]`` -> ``p_s6_sign``); bit indices are dropped."""
    base = _TECH_SUFFIX.split(net, 1)[0] or net
    return re.sub(r"\[\d+\]$", "", base)


def parse_nextpnr_report(report: dict, family: str) -> dict:
    """nextpnr ``--report`` JSON -> ``{"fmax_mhz", "constraint_mhz", "clock", "utilization",
    "critical_path"}``.

    ``fmax_mhz`` is the lowest achieved frequency over the clocks in the report
    (the wrapper has one); ``utilization`` maps generic resource names to
    ``{"used", "available"}``; ``critical_path`` summarizes the clock-to-same-clock
    path (``None`` if the report has none).
    """
    fmax = report.get("fmax", {})
    if not fmax:
        raise ValueError("nextpnr report has no fmax entry (no register-to-register path?)")
    clock, info = min(fmax.items(), key=lambda kv: kv[1]["achieved"])
    util = report.get("utilization", {})
    bels = _NEXTPNR_BELS[family]
    utilization = {g: dict(util[b]) for g, b in bels.items() if b in util}
    path = None
    for entry in report.get("critical_paths", []):
        f, t = entry.get("from", ""), entry.get("to", "")
        if "<async>" in f or "<async>" in t:
            continue
        if clock in f and clock in t:
            path = summarize_critical_path(entry)
            break
    return {"fmax_mhz": float(info["achieved"]), "constraint_mhz": float(info.get("constraint", 0.0)),
            "clock": clock, "utilization": utilization, "critical_path": path,
            "bels": {k: dict(v) for k, v in util.items() if v.get("used")}}


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def parse_utilisation_log(text: str) -> dict:
    """The ``Device utilisation:`` table of a nextpnr log -> ``{bel: {"used", "available"}}``
    (the last table in the log wins)."""
    out = {}
    for m in _UTIL_LINE.finditer(text):
        out[m.group(1)] = {"used": int(m.group(2)), "available": int(m.group(3))}
    return out


def over_capacity(needs: dict, capacity: dict) -> list:
    """``[(resource, need, have)]`` for every generic resource the design needs more of than the device has."""
    return [(r, needs[r], capacity[r]) for r in ("LUT4", "FF", "DSP", "BRAM", "IO")
            if r in needs and r in capacity and needs[r] > capacity[r]]


def nextpnr_error(text: str) -> str | None:
    """The first ``ERROR:`` line of a nextpnr log (without the prefix), if any."""
    m = re.search(r"^ERROR:\s*(.*)$", text, re.M)
    return m.group(1).strip() if m else None


def fmax_summary(values) -> dict:
    """Median, min and max of per-seed Fmax values (MHz)."""
    values = [float(v) for v in values]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
