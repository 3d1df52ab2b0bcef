"""Out-of-context wrapper: registers every port of a core and keeps it to a few pins.

Built from the manifest's port list alone (any generator, present or future),
so the figures the flow reports are those of the core itself:

* **Inputs.** Every core input except the clock (``rst``, ``*__valid``,
  ``*__ready``, payloads) is driven by one flip-flop of an input shift
  register, ``in_sr``. The register shifts ``pins_in`` bits per cycle in from
  the pins ``si``; it has no multiplexers, so each core input is a plain
  register output.
* **Outputs.** Every core output is captured every cycle in ``out_q`` (one
  flip-flop per bit, nothing between the core port and the flip-flop). ``out_q``
  is folded to ``pins_out`` pins ``so`` through a registered tree of 4-input
  XORs (a parity signature): every output bit reaches a pin, so synthesis
  cannot remove any logic, and every wrapper path is register -> at most one
  LUT4 -> register, shorter than any path of a core.

Hence Fmax is the register-to-register figure of the core: from the input
flip-flops through the core to the capture flip-flops, plus the core's
internal pipeline registers. The wrapper costs ``in_bits + out_bits`` flip-flops
plus about ``out_bits / 3`` LUT4s and flip-flops for the fold, and
``1 + pins_in + pins_out`` pins (17 by default, within the 39 of the iCE40
UP5K sg48). The flow reports the core's own resources separately from the
placed totals (which include the wrapper).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Wrapper", "ooc_wrapper", "WRAPPER_TOP", "WRAPPER_VERSION"]

WRAPPER_TOP = "tf_ooc"
#: Bumped whenever the generated wrapper changes (part of the synthesis cache key).
WRAPPER_VERSION = 1


@dataclass(frozen=True)
class Wrapper:
    top: str
    verilog: str
    core_top: str
    in_bits: int
    out_bits: int
    pins_in: int
    pins_out: int
    flip_flops: int

    @property
    def pins(self) -> int:
        return 1 + self.pins_in + self.pins_out


def _fold_levels(n: int, pins: int):
    """Widths of the registered XOR-fold levels from ``n`` bits down to at most ``pins``."""
    levels = []
    while n > pins:
        n = (n + 3) // 4
        levels.append(n)
    return levels


def ooc_wrapper(manifest: dict, *, pins_in: int = 8, pins_out: int = 8, top: str = WRAPPER_TOP) -> Wrapper:
    """Verilog of the out-of-context wrapper for the core described by ``manifest``.

    ``manifest`` needs ``top``, ``clock.name`` and ``ports`` (``name``,
    ``direction``, ``width``) as written by :func:`tensorforge.gen.manifest.elaborate`.
    """
    for name, value in (("pins_in", pins_in), ("pins_out", pins_out)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
            raise ValueError(f"{name} must be an integer between 1 and 64, not {value!r}")
    core = manifest["top"]
    clock = manifest.get("clock", {}).get("name", "clk")
    inputs, outputs = [], []
    for port in manifest["ports"]:
        if port["name"] == clock:
            continue
        if port["direction"] == "input":
            inputs.append(port)
        elif port["direction"] == "output":
            outputs.append(port)
        else:
            raise ValueError(f"port {port['name']!r} has direction {port['direction']!r}; "
                             f"the wrapper handles input and output ports only")
    if not outputs:
        raise ValueError(f"core {core!r} has no output ports; nothing to synthesize")
    in_bits = sum(p["width"] for p in inputs)
    out_bits = sum(p["width"] for p in outputs)
    p_in = min(pins_in, in_bits) if in_bits else 0
    levels = _fold_levels(out_bits, pins_out)
    p_out = levels[-1] if levels else out_bits

    v = []
    w = v.append
    w(f"// Out-of-context synthesis wrapper for {core} (tensorforge, wrapper v{WRAPPER_VERSION}).")
    w(f"// {in_bits} input bits shifted in from {p_in} pins; {out_bits} output bits captured and")
    w(f"// XOR-folded to {p_out} pins. Every core port is registered.")
    ports = ["input wire clk"]
    if p_in:
        ports.append(f"input wire [{p_in - 1}:0] si")
    ports.append(f"output wire [{p_out - 1}:0] so")
    w(f"module {top} (" + ", ".join(ports) + ");")
    conns = [f".{clock}(clk)"]
    if in_bits:
        w(f"  reg [{in_bits - 1}:0] in_sr = {in_bits}'d0;")
        if in_bits > p_in:
            w(f"  always @(posedge clk) in_sr <= {{in_sr[{in_bits - p_in - 1}:0], si}};")
        else:
            w("  always @(posedge clk) in_sr <= si;")
        off = 0
        for p in inputs:
            conns.append(f".{p['name']}(in_sr[{off + p['width'] - 1}:{off}])")
            off += p["width"]
    w(f"  wire [{out_bits - 1}:0] out_d;")
    w(f"  reg [{out_bits - 1}:0] out_q = {out_bits}'d0;")
    off = 0
    for p in outputs:
        conns.append(f".{p['name']}(out_d[{off + p['width'] - 1}:{off}])")
        off += p["width"]
    w("  always @(posedge clk) out_q <= out_d;")
    prev, prev_w = "out_q", out_bits
    ffs = in_bits + out_bits
    for lvl, width in enumerate(levels):
        name = f"fold{lvl}"
        w(f"  reg [{width - 1}:0] {name} = {width}'d0;")
        w("  always @(posedge clk) begin")
        for j in range(width):
            bits = [f"{prev}[{b}]" for b in range(4 * j, min(4 * j + 4, prev_w))]
            w(f"    {name}[{j}] <= {' ^ '.join(bits)};")
        w("  end")
        prev, prev_w = name, width
        ffs += width
    w(f"  assign so = {prev};")
    w(f"  {core} core (" + ", ".join(conns) + ");")
    w("endmodule")
    return Wrapper(top=top, verilog="\n".join(v) + "\n", core_top=core, in_bits=in_bits, out_bits=out_bits,
                   pins_in=p_in, pins_out=p_out, flip_flops=ffs)
