"""Formal harness for any stream core: a Verilog wrapper with assertions + SymbiYosys scripts.

The harness needs only what the manifest says about a core (its ports
``i__payload``/``i__valid``/``i__ready``, ``o__payload``/``o__valid``/``o__ready``,
``clk``/``rst`` when clocked, and ``latency``) and its generated Verilog. For
every property :func:`build_tasks` writes one SymbiYosys task: the DUT
Verilog, a wrapper module ``tf_harness`` (read with ``read -formal``) that
instantiates the DUT with free inputs and holds the assertions, and a
``.sby`` file (engine ``smtbmc yices``).

Properties (``PROPERTIES``)
---------------------------
``output_stable``
    An output, once valid, stays valid with a stable payload until taken:
    ``o.valid & ~o.ready`` in one cycle implies ``o.valid`` and the same
    ``o.payload`` in the next. Proved by k-induction.
``count``
    Counting argument: the wrapper counts ``inflight = accepted - emitted``
    (reset to 0). Asserted: nothing comes out that was not put in (an output
    handshake needs ``inflight >= 1``; for a latency-0 core, input and output
    handshakes coincide), ``inflight <= capacity`` (nothing accumulates, so
    nothing is lost inside the core without being caught by ``latency``), and
    for cores built on :class:`~tensorforge.rtl.pipeline.StallPipeline` the
    strengthening invariant ``inflight == number of set stage valid bits``
    (the ``*_sK_valid`` registers and ``o__valid``; read through a probe port
    added to a copy of the DUT text). With the invariant the property is
    proved by k-induction (depth ``latency + 4``, at least 4, which also bounds
    the base case); without it (other cores) it is checked by BMC to the stated depth.
``latency``
    With ``o.ready`` held high: ``i.ready`` stays high (initiation interval 1
    when the manifest says so) and every accepted input emerges within the
    manifest's ``latency`` cycles (in-order stream: after each cycle's
    handshakes at most the inputs accepted in the last ``latency`` cycles,
    counting the current one, are still inside). k-induction, depth
    ``latency + 4`` (with the valid-chain invariant where available; when the
    induction does not close the result is reported as BMC to that depth).
``equiv_flow`` / ``equiv_backpressure`` (cores with a ``stages`` parameter, ``stages >= 1``)
    Miter against the same configuration with ``stages=0`` (the unpipelined,
    purely combinational form), in one of two forms:

    *lockstep* (stall-on-back-pressure pipelines with exactly ``latency``
    register stages, e.g. every :class:`~tensorforge.rtl.pipeline.StallPipeline`
    core): the wrapper keeps a shadow of the last ``latency`` inputs (valid bit
    = accepted, and payload) that shifts whenever ``i.ready``, and feeds the
    oldest shadow payload to the ``stages=0`` core. Asserted every cycle:
    ``i.ready == o.ready | ~o.valid`` (the pipeline moves exactly when its
    output slot is free or being taken, so a stalled output is never
    overwritten), ``o.valid ==`` the oldest shadow valid bit (exactly the
    accepted inputs come out, in order, each once), and when ``o.valid`` the
    payload equals the reference output (bits and flags). The miter has the
    same structure on both sides, which the unrolling engine
    (:mod:`.unroll`) exploits: with ``o.ready`` high it is
    ``(latency+1)``-inductive and the two datapaths hash-cons to the same
    terms.

    *scoreboard* (any in-order core): on every input handshake the reference
    output is pushed into a queue in the wrapper; on every output handshake the
    payload must equal the queue head.

    ``equiv_flow`` holds ``o.ready`` high and is proved by k-induction;
    ``equiv_backpressure`` leaves ``o.ready`` free and is bounded (BMC): a
    stall of any length keeps an arbitrary unreachable pipeline state alive,
    so k-induction cannot close it without invariants on internal data.

Environment assumptions
-----------------------
Reset is high in the first cycle only (the wrapper's own registers reset
with the core). Inputs ``i.valid``, ``i.payload`` and ``o.ready`` are free
in every cycle. Only for a purely combinational core (latency 0), whose
output *is* its input, ``output_stable`` assumes the input side of the
protocol that ``amaranth.lib.stream`` requires of a source: ``i.valid``
stays high with a stable payload until accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PROPERTIES", "FormalTask", "stream_ports", "pipeline_valid_registers", "probe_verilog",
           "harness_verilog", "sby_script", "btor_script", "HarnessError"]

#: Property names in report order.
PROPERTIES = ("output_stable", "count", "latency", "equiv_flow", "equiv_backpressure")

PROBE_PORT = "tf_probe_valid"


class HarnessError(ValueError):
    """The core does not have the stream interface the harness needs."""


@dataclass
class FormalTask:
    """One check: a property of one configuration.

    ``mode`` is ``"prove"`` (k-induction) or ``"bmc"``; ``depth`` the
    induction length or the BMC bound; ``files`` maps file names to text
    (the Verilog files, ``harness.sv`` and the engine's script: ``task.sby``
    or ``model.ys``). ``engine`` is ``"sby"`` (SymbiYosys, smtbmc yices) or
    ``"unroll"`` (:mod:`.unroll`: the Yosys BTOR model unrolled by substitution
    with hash-consing, then yices).
    """

    name: str
    mode: str
    depth: int
    files: dict = field(default_factory=dict)
    description: str = ""
    assumptions: list = field(default_factory=list)
    engine: str = "sby"


def stream_ports(manifest: dict) -> dict:
    """Widths of the stream ports and whether the core is clocked, from a manifest."""
    ports = {p["name"]: p for p in manifest["ports"]}
    need = ("i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready")
    missing = [n for n in need if n not in ports]
    if missing:
        raise HarnessError(f"{manifest['top']} is not a single-stream core: it has no port(s) "
                           f"{', '.join(missing)} (the formal harness needs streams i and o)")
    latency = manifest.get("latency")
    if not isinstance(latency, int) or latency < 0:
        raise HarnessError(f"{manifest['top']}: the manifest has no integer latency ({latency!r}); "
                           f"the formal harness needs one")
    return {"wi": ports["i__payload"]["width"], "wo": ports["o__payload"]["width"],
            "clocked": "clk" in ports, "latency": latency,
            "ii": manifest.get("initiation_interval")}


def _top_module_span(verilog: str, top: str):
    m = re.search(rf"^module {re.escape(top)}\((.*?)\);", verilog, re.M | re.S)
    if not m:
        raise HarnessError(f"module {top} not found in the Verilog")
    end = verilog.index("\nendmodule", m.end())
    return m, end


def pipeline_valid_registers(verilog: str, top: str, latency: int) -> list[str] | None:
    """The StallPipeline valid chain of the top module (``p_s1_valid``..., ``o__valid``), or None.

    Returns the names only when they form exactly ``latency`` stage valid bits:
    ``latency - 1`` registers ``<name>_s<k>_valid`` (k = 1..latency-1, one prefix)
    plus the ``o__valid`` register.
    """
    if latency < 1:
        return None
    m, end = _top_module_span(verilog, top)
    body = verilog[m.end():end]
    if not re.search(r"^\s*reg o__valid\b", body, re.M):
        return None
    regs = re.findall(r"^\s*reg (\w+)_s(\d+)_valid\b", body, re.M)
    prefixes = {p for p, _ in regs}
    if len(prefixes) > 1:
        return None
    stages = sorted(int(k) for _, k in regs)
    if stages != list(range(1, latency)):
        return None
    prefix = prefixes.pop() if prefixes else None
    return [f"{prefix}_s{k}_valid" for k in stages] + ["o__valid"]


def probe_verilog(verilog: str, top: str, registers: list[str]) -> str:
    """A copy of the DUT text whose top module has an extra output ``tf_probe_valid`` =
    the concatenation of ``registers`` (nothing else changes)."""
    m, end = _top_module_span(verilog, top)
    header = f"module {top}({PROBE_PORT}, {m.group(1)});"
    width = len(registers)
    decl = f"\n  output [{width - 1}:0] {PROBE_PORT};\n  assign {PROBE_PORT} = {{{', '.join(registers)}}};"
    return verilog[:m.start()] + header + verilog[m.end():end] + decl + verilog[end:]


def _bits(n: int) -> int:
    return max(1, int(n).bit_length())


def harness_verilog(*, top: str, ports: dict, prop: str, capacity: int, probe: int = 0,
                    ref_top: str | None = None, ready_high: bool = False, lockstep: bool = False) -> str:
    """The wrapper module ``tf_harness`` for one property (Verilog-2005 + immediate assertions).

    ``lockstep`` (equivalence properties of a stall-on-back-pressure pipeline with exactly
    ``latency`` stages) selects the lockstep miter instead of the scoreboard miter."""
    wi, wo, lat, clocked = ports["wi"], ports["wo"], ports["latency"], ports["clocked"]
    cap = max(1, capacity)
    cw = _bits(cap + 1) + 1
    L = []
    a = L.append
    a("// tensorforge formal harness (generated): property " + prop)
    a("module tf_harness(input clk, input i_valid, input [%d:0] i_payload, input o_ready_in);" % (wi - 1))
    a("  reg init = 1'b1;")
    a("  always @(posedge clk) init <= 1'b0;")
    a("  wire rst = init;            // reset in the first cycle only")
    a("  wire o_ready = %s;" % ("1'b1" if ready_high else "o_ready_in"))
    a("  wire i_ready, o_valid;")
    a("  wire [%d:0] o_payload;" % (wo - 1))
    if probe:
        a("  wire [%d:0] probe;" % (probe - 1))
    conns = []
    if clocked:
        conns += [".clk(clk)", ".rst(rst)"]
    conns += [".i__valid(i_valid)", ".i__payload(i_payload)", ".i__ready(i_ready)",
              ".o__valid(o_valid)", ".o__payload(o_payload)", ".o__ready(o_ready)"]
    if probe:
        conns.append(f".{PROBE_PORT}(probe)")
    a(f"  {top} dut({', '.join(conns)});")
    a("  wire accept = i_valid && i_ready;")
    a("  wire emit = o_valid && o_ready;")
    # in-flight counter (all properties use it)
    a("  reg [%d:0] inflight = 0;" % (cw - 1))
    a("  always @(posedge clk) inflight <= rst ? 0 : inflight + accept - emit;")
    if prop == "output_stable":
        if lat == 0:
            a("  // latency 0: the output is the input; assume the source side of the stream protocol")
            a("  reg held = 1'b0;")
            a("  reg [%d:0] held_payload;" % (wi - 1))
            a("  always @(posedge clk) begin held <= !rst && i_valid && !i_ready; held_payload <= i_payload; end")
            a("  always @* if (held) assume(i_valid && i_payload == held_payload);")
        a("  reg stalled = 1'b0;")
        a("  reg [%d:0] stalled_payload;" % (wo - 1))
        a("  always @(posedge clk) begin stalled <= !rst && o_valid && !o_ready; stalled_payload <= o_payload; end")
        a("  always @* if (stalled && !rst) begin")
        a("    assert(o_valid);")
        a("    assert(o_payload == stalled_payload);")
        a("  end")
    elif prop == "count":
        a("  always @* if (!rst) begin")
        if lat == 0:
            a("    assert(accept == emit);        // combinational: in and out in the same cycle")
            a("    assert(inflight == 0);")
        else:
            a("    if (emit) assert(inflight != 0); // nothing comes out that was not put in")
            a("    assert(inflight <= %d);           // capacity" % cap)
        if probe:
            terms = " + ".join(f"probe[{k}]" for k in range(probe))
            a(f"    assert(inflight == {terms}); // one in-flight transaction per set stage valid bit")
        a("  end")
    elif prop == "latency":
        a("  // o.ready is held high; hist[k] = an input was accepted k+1 cycles ago")
        h = max(1, lat)
        a("  reg [%d:0] hist = 0;" % h)
        a("  always @(posedge clk) hist <= rst ? 0 : {hist[%d:0], accept};" % (h - 1))
        young = " + ".join(["accept"] + [f"hist[{k}]" for k in range(0, lat - 1)])
        a("  always @* if (!rst) begin")
        a("    if (emit) assert(inflight != 0 || %s);" % ("accept" if lat == 0 else "1'b0"))
        a("    assert(inflight <= %d);" % cap)
        a(f"    // after this cycle's handshakes only inputs accepted in the last {lat} cycles remain inside")
        a(f"    assert(inflight + accept - emit <= {young if lat > 0 else '0'});")
        if ports.get("ii") == 1:
            a("    assert(i_ready);                 // initiation interval 1")
        if probe:
            terms = " + ".join(f"probe[{k}]" for k in range(probe))
            a(f"    assert(inflight == {terms});")
        a("  end")
    elif prop in ("equiv_flow", "equiv_backpressure") and lockstep:
        if ref_top is None:
            raise ValueError("equivalence needs ref_top")
        if lat < 1:
            raise ValueError("a lockstep miter needs latency >= 1")
        a("  // lockstep miter: a shadow of the accepted inputs shifts with the pipeline (whenever i.ready,")
        a("  // which a stall-on-back-pressure pipeline raises exactly when its output slot is free or taken);")
        a(f"  // the stages=0 core computes from the input that entered {lat} shifts ago")
        a("  reg [%d:0] sv = 0;                 // sv[k]: the input k+1 shifts ago was accepted" % (lat - 1))
        for k in range(lat):
            a("  reg [%d:0] sp%d;                   // its payload" % (wi - 1, k))
        a("  always @(posedge clk) begin")
        shifted = "accept" if lat == 1 else f"{{sv[{lat - 2}:0], accept}}"
        a(f"    if (rst) sv <= 0; else if (i_ready) sv <= {shifted};")
        chain = " ".join(["sp0 <= i_payload;"] + [f"sp{k} <= sp{k - 1};" for k in range(1, lat)])
        a(f"    if (i_ready) begin {chain} end")
        a("  end")
        a("  wire [%d:0] ref_out; wire ref_ready, ref_valid;" % (wo - 1))
        a(f"  {ref_top} ref(.i__valid(1'b1), .i__payload(sp{lat - 1}), .i__ready(ref_ready), "
          f".o__valid(ref_valid), .o__payload(ref_out), .o__ready(1'b1));")
        a("  always @* if (!rst) begin")
        a("    assert(i_ready == (o_ready || !o_valid)); // shifts only when the output slot is free or taken")
        a(f"    assert(o_valid == sv[{lat - 1}]);            // exactly the accepted inputs come out, in order")
        a("    if (o_valid) assert(o_payload == ref_out); // bits and flags equal the unpipelined core")
        a("  end")
    elif prop in ("equiv_flow", "equiv_backpressure"):
        if ref_top is None:
            raise ValueError("equivalence needs ref_top")
        a("  // reference: the same configuration with stages=0 (combinational), on the same input")
        a("  wire [%d:0] ref_out; wire ref_ready, ref_valid;" % (wo - 1))
        a(f"  {ref_top} ref(.i__valid(1'b1), .i__payload(i_payload), .i__ready(ref_ready), "
          f".o__valid(ref_valid), .o__payload(ref_out), .o__ready(1'b1));")
        a(f"  // scoreboard queue of reference outputs, {cap} entries; entry 0 is the oldest")
        a("  reg [%d:0] q;" % (cap * wo - 1))
        a("  wire [%d:0] head = q[%d:0];" % (wo - 1, wo - 1))
        a("  wire [%d:0] shifted = emit ? (q >> %d) : q;" % (cap * wo - 1, wo))
        a("  wire [%d:0] pos = inflight - emit;" % (cw - 1))
        a("  integer j;")
        a("  reg [%d:0] q_next;" % (cap * wo - 1))
        a("  always @* begin")
        a("    q_next = shifted;")
        a(f"    for (j = 0; j < {cap}; j = j + 1)")
        a(f"      if (accept && pos == j) q_next[j*{wo} +: {wo}] = ref_out;")
        a("  end")
        a("  always @(posedge clk) q <= q_next;")
        a("  always @* if (!rst) begin")
        a("    if (emit) assert(inflight != 0);")
        a("    assert(inflight <= %d);" % cap)
        a("    if (emit) assert(o_payload == head);   // bits and flags equal the unpipelined core")
        if probe:
            terms = " + ".join(f"probe[{k}]" for k in range(probe))
            a(f"    assert(inflight == {terms});")
        a("  end")
    else:
        raise ValueError(f"unknown property {prop!r}")
    a("endmodule")
    return "\n".join(L) + "\n"


def btor_script(*, files: list[str], formal_files: list[str], output: str = "model.btor") -> str:
    """A Yosys script writing the flattened harness as a BTOR2 model (for :mod:`.unroll`).

    The same semantics as SymbiYosys' preparation (immediate assertions -> ``bad``,
    assumptions -> ``constraint``, undriven bits free in every step, initial values kept)."""
    lines = [f"read_verilog -sv {Path(f).name}" for f in files]
    lines += [f"read -formal {Path(f).name}" for f in formal_files]
    # no word-level optimization (opt, wreduce): the netlist keeps the structure of the
    # Verilog, so that the pipelined and the unpipelined datapath hash-cons to the same terms
    lines += ["hierarchy -top tf_harness", "proc", "flatten", "async2sync", "dffunmap",
              "setundef -undriven -anyseq", "opt_clean", f"write_btor {output}"]
    return "\n".join(lines) + "\n"


def sby_script(*, mode: str, depth: int, files: list[str], formal_files: list[str]) -> str:
    """A ``.sby`` file: ``mode`` prove/bmc, ``depth``, engine ``smtbmc yices``."""
    lines = ["[options]", f"mode {mode}", f"depth {depth}", "", "[engines]", "smtbmc yices", "", "[script]"]
    for f in files:
        lines.append(f"read_verilog -sv {Path(f).name}")
    for f in formal_files:
        lines.append(f"read -formal {Path(f).name}")
    lines += ["prep -top tf_harness", "", "[files]"]
    lines += [Path(f).name for f in files + formal_files]
    return "\n".join(lines) + "\n"
