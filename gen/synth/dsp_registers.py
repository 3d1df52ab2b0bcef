"""Move the registers around ECP5 multipliers into the MULT18X18D blocks (netlist pass).

Yosys maps a multiply to a MULT18X18D with its internal registers bypassed and leaves the
operand and product registers in the fabric. DSP blocks sit in a few fixed rows of the
device, so place-and-route often puts those registers -- and the logic they belong to --
dozens of columns away from their DSP: the path register -> route -> multiplier -> route ->
register then sets Fmax (the 16x16 systolic array and the 4x4x4 MMA on the ecp5-85k). The
MULT18X18D has an input register on A and B and an output register on P (``REG_INPUTA_CLK``,
``REG_INPUTB_CLK``, ``REG_OUTPUT_CLK``; nextpnr times them from its DSP timing database):
with the registers inside, each of those paths keeps one route only.

:func:`absorb_dsp_registers` rewrites a flattened Yosys JSON netlist (after ``synth_ecp5``):

- inputs: when every bit of A and of B is a constant or the Q of a plain ``TRELLIS_FF``
  (one clock for all, clock enable constant 1, no reset or one synchronous reset to 0 for
  all of A and one for all of B -- Yosys folds "zero when ..." into the flip-flop), the DSP takes the flip-flops'
  D inputs and registers them itself (``REG_INPUTA_CLK = REG_INPUTB_CLK = "CLK0"``); a
  flip-flop whose Q drives nothing else is removed, one that also feeds other logic stays
  (the register is duplicated);
- output: when every used bit of P drives exactly one plain ``TRELLIS_FF`` D input and
  nothing else (one synchronous reset for all of them at most), the DSP drives those flip-flops' Q nets from its output register
  (``REG_OUTPUT_CLK = "CLK0"``) and the flip-flops are removed.

A synchronous reset goes to one of the block's RST0..RST3 inputs (``RESETMODE = "SYNC"``,
registers reset to 0). The function of the design is unchanged: a register moves across a
wire. The pass only
touches what matches exactly; anything else is left as Yosys made it.
"""

from __future__ import annotations

__all__ = ["absorb_dsp_registers", "PASS_VERSION"]

#: Bumped whenever the rewrite changes (part of the place-and-route cache key).
PASS_VERSION = 2

_CONST = ("0", "1", "x", "z")
#: the block's register selections; a DSP with any of them set is left alone
_REG_CLOCKS = ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_INPUTC_CLK", "REG_PIPELINE_CLK", "REG_OUTPUT_CLK")


def _plain_ff(cell, clock=None):
    """``(clock net, reset)`` of a ``TRELLIS_FF`` that loads every cycle and has no reset
    (reset ``"0"``) or a synchronous reset to 0 (reset = its net); None for any other FF."""
    if cell.get("type") != "TRELLIS_FF":
        return None
    # Yosys pads string parameters with spaces ("1 ")
    p = {k: str(v).strip() for k, v in cell.get("parameters", {}).items()}
    c = cell.get("connections", {})
    if p.get("CLKMUX", "CLK") != "CLK":
        return None
    ce_mux = p.get("CEMUX", "CE")
    if ce_mux not in ("1", "CE") or (ce_mux == "CE" and c.get("CE", ["1"]) != ["1"]):
        return None
    if p.get("LSRMUX", "LSR") != "LSR":
        return None
    lsr = c.get("LSR", ["0"])[0]
    if lsr in _CONST and lsr != "0":
        return None
    if lsr != "0" and (p.get("SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE" or p.get("REGSET", "RESET") != "RESET"):
        return None
    clk = c.get("CLK")
    if not clk or clk[0] in _CONST or (clock is not None and clk[0] != clock):
        return None
    return clk[0], lsr


def _common(ffs, cells, clock=None):
    """``(clock, reset)`` shared by every flip-flop of ``ffs``, or None."""
    got = {_plain_ff(cells[ff], clock) for ff in ffs}
    return got.pop() if len(got) == 1 and None not in got else None


def absorb_dsp_registers(netlist: dict, top: str) -> dict:
    """Rewrite ``netlist`` (Yosys JSON, ``top`` flattened) in place; return counts
    ``{"dsp": N, "input_registers": I, "output_registers": O, "ffs_removed": F}``."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    drivers, loads = {}, {}
    for name, cell in cells.items():
        dirs = cell.get("port_directions", {})
        for port, bits in cell.get("connections", {}).items():
            for bit in bits:
                if bit in _CONST:
                    continue
                if dirs.get(port) == "output":
                    drivers[bit] = (name, port)
                else:
                    loads.setdefault(bit, []).append((name, port))
    port_bits = {b for p in mod.get("ports", {}).values() for b in p.get("bits", []) if b not in _CONST}
    stats = {"dsp": 0, "input_registers": 0, "output_registers": 0, "ffs_removed": 0}
    removed = set()

    def input_ffs(dsp, letter):
        """{pin: ff name} for A or B if every bit is a constant or a plain FF's Q, else None."""
        out = {}
        for k in range(18):
            bits = dsp["connections"].get(f"{letter}{k}", ["0"])
            if bits[0] in _CONST:
                continue
            drv = drivers.get(bits[0])
            if drv is None or drv[1] != "Q" or drv[0] in removed:
                return None
            out[f"{letter}{k}"] = drv[0]
        return out

    for name in sorted(cells):
        dsp = cells[name]
        if dsp.get("type") != "MULT18X18D":
            continue
        par = dsp.setdefault("parameters", {})
        if any(str(par.get(k, "NONE")).strip() != "NONE" for k in _REG_CLOCKS):
            continue
        conn = dsp["connections"]
        clock = None
        resets = {}         # "A", "B", "P" -> reset net or "0"
        # -- inputs
        ins = {}
        for letter in "AB":
            got = input_ffs(dsp, letter)
            shared = _common(got.values(), cells, clock) if got else None
            if shared is None:
                ins = None
                break
            clock, resets[letter] = shared
            ins.update(got)
        if not ins:
            clock = None
            resets = {}
        # -- output
        outs = {}
        for k in range(36):
            bits = conn.get(f"P{k}")
            if not bits or bits[0] in _CONST or not loads.get(bits[0]):
                continue
            if bits[0] in port_bits:
                outs = None
                break
            users = loads[bits[0]]
            ff = users[0][0]
            if len(users) != 1 or users[0][1] != "DI" or ff in removed:
                outs = None
                break
            outs[f"P{k}"] = ff
        if outs:
            shared = _common(outs.values(), cells, clock)
            if shared is None:
                outs = None
            else:
                clock, resets["P"] = shared
        if not ins and not outs:
            continue
        stats["dsp"] += 1
        rst_port = {}       # reset net -> RSTk
        for net in resets.values():
            if net != "0" and net not in rst_port:
                rst_port[net] = f"RST{len(rst_port)}"
        idle_rst = f"RST{len(rst_port)}"      # tied to 0 (at most 3 nets are in use)
        if ins:
            for pin, ff in ins.items():
                d_bit = cells[ff]["connections"]["DI"][0]
                q_bit = conn[pin][0]
                conn[pin] = [d_bit]
                loads[q_bit] = [u for u in loads[q_bit] if u != (name, pin)]
                if d_bit not in _CONST:
                    loads.setdefault(d_bit, []).append((name, pin))
            for letter in "AB":
                par[f"REG_INPUT{letter}_CLK"] = "CLK0"
                par[f"REG_INPUT{letter}_CE"] = "CE0"
                par[f"REG_INPUT{letter}_RST"] = rst_port.get(resets[letter], idle_rst)
            stats["input_registers"] += 1
            for ff in sorted(set(ins.values())):
                q_bit = cells[ff]["connections"]["Q"][0]
                if not loads.get(q_bit) and q_bit not in port_bits:
                    removed.add(ff)
        if outs:
            for pin, ff in outs.items():
                q_bit = cells[ff]["connections"]["Q"][0]
                conn[pin] = [q_bit]
                drivers[q_bit] = (name, pin)
                removed.add(ff)
            par["REG_OUTPUT_CLK"] = "CLK0"
            par["REG_OUTPUT_CE"] = "CE0"
            par["REG_OUTPUT_RST"] = rst_port.get(resets["P"], idle_rst)
            stats["output_registers"] += 1
        par["GSR"] = "DISABLED"
        par["RESETMODE"] = "SYNC"
        conn["CLK0"], conn["CE0"] = [clock], ["1"]
        for net, port in rst_port.items():
            conn[port] = [net]
            loads.setdefault(net, []).append((name, port))
        conn[idle_rst] = ["0"]
        dirs = dsp.setdefault("port_directions", {})
        for port in ("CLK0", "CE0", idle_rst, *rst_port.values()):
            dirs[port] = "input"
    for ff in removed:
        del cells[ff]
    stats["ffs_removed"] = len(removed)
    return stats
