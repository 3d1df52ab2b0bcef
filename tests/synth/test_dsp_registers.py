"""The DSP register pass (gen/synth/dsp_registers.py) on hand-built Yosys netlists: which
registers move into a MULT18X18D, how the nets are rewired, and what is left alone."""

from __future__ import annotations

import copy

from tensorforge.gen.synth.dsp_registers import absorb_dsp_registers

CLK, RST = 2, 3


def _ff(d, q, *, ce="1", lsr="0", clk=CLK):
    par = {"CEMUX": "1 " if ce == "1" else "CE", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR",
           "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"}
    conn = {"CLK": [clk], "DI": [d], "LSR": [lsr], "Q": [q]}
    dirs = {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"}
    if ce != "1":
        conn["CE"], dirs["CE"] = [ce], "input"
    return {"type": "TRELLIS_FF", "parameters": par, "connections": conn, "port_directions": dirs}


def _lut(inputs, out):
    conn = {f"ABCD"[k]: [b] for k, b in enumerate(inputs)}
    conn["Z"] = [out]
    return {"type": "LUT4", "parameters": {}, "connections": conn,
            "port_directions": {**{p: "input" for p in conn if p != "Z"}, "Z": "output"}}


def netlist(*, a_ce="1", a_lsr="0", p_extra_load=False, a_extra_load=False):
    """A 2x2-bit multiplier: a, b registered (FFs ra0/ra1, rb0/rb1) -> MULT18X18D -> P0..P3
    registered (rp0..rp3) -> LUTs. Nets: a = 10, 11; b = 12, 13; ra.Q = 20, 21; rb.Q = 22, 23;
    P = 30..33; rp.Q = 40..43."""
    cells = {
        "ra0": _ff(10, 20, ce=a_ce, lsr=a_lsr), "ra1": _ff(11, 21, ce=a_ce, lsr=a_lsr),
        "rb0": _ff(12, 22), "rb1": _ff(13, 23),
        **{f"rp{k}": _ff(30 + k, 40 + k) for k in range(4)},
        **{f"use{k}": _lut([40 + k], 50 + k) for k in range(4)},
    }
    conn = {f"A{k}": ["0"] for k in range(18)} | {f"B{k}": ["0"] for k in range(18)}
    conn |= {"A0": [20], "A1": [21], "B0": [22], "B1": [23]}
    conn |= {f"P{k}": [30 + k] for k in range(4)} | {f"P{k}": [100 + k] for k in range(4, 36)}
    dirs = {p: ("output" if p.startswith("P") else "input") for p in conn}
    cells["dsp"] = {"type": "MULT18X18D", "parameters": {}, "connections": conn, "port_directions": dirs}
    if p_extra_load:
        cells["peek"] = _lut([30], 60)
    if a_extra_load:
        cells["peek_a"] = _lut([20], 61)
    return {"modules": {"top": {"ports": {"clk": {"direction": "input", "bits": [CLK]}},
                                "cells": cells, "netnames": {}}}}


def test_operand_and_product_registers_move_into_the_dsp():
    nl = netlist()
    stats = absorb_dsp_registers(nl, "top")
    assert stats == {"dsp": 1, "input_registers": 1, "output_registers": 1, "ffs_removed": 8}
    cells = nl["modules"]["top"]["cells"]
    dsp = cells["dsp"]
    c, p = dsp["connections"], dsp["parameters"]
    # the DSP now reads the flip-flops' D nets and drives their Q nets
    assert (c["A0"], c["A1"], c["B0"], c["B1"]) == ([10], [11], [12], [13])
    assert [c[f"P{k}"] for k in range(4)] == [[40], [41], [42], [43]]
    assert c["A2"] == ["0"] and c["CLK0"] == [CLK] and c["CE0"] == ["1"] and c["RST0"] == ["0"]
    for reg in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert p[reg] == "CLK0"
    assert p["REG_INPUTA_RST"] == p["REG_OUTPUT_RST"] == "RST0" and p["RESETMODE"] == "SYNC"
    assert not any(name.startswith(("ra", "rb", "rp")) for name in cells)
    assert cells["use0"]["connections"]["A"] == [40]          # the logic behind is untouched


def test_a_register_that_also_feeds_logic_is_duplicated():
    nl = netlist(a_extra_load=True)
    stats = absorb_dsp_registers(nl, "top")
    cells = nl["modules"]["top"]["cells"]
    assert stats["input_registers"] == 1 and "ra0" in cells and "ra1" not in cells
    assert cells["dsp"]["connections"]["A0"] == [10] and cells["peek_a"]["connections"]["A"] == [20]


def test_a_synchronous_reset_goes_to_a_reset_port():
    nl = netlist(a_lsr=RST)
    absorb_dsp_registers(nl, "top")
    dsp = nl["modules"]["top"]["cells"]["dsp"]
    p, c = dsp["parameters"], dsp["connections"]
    assert p["REG_INPUTA_RST"] == "RST0" and c["RST0"] == [RST]
    # B and P have no reset: they use an idle reset input tied low
    assert p["REG_INPUTB_RST"] == p["REG_OUTPUT_RST"] == "RST1" and c["RST1"] == ["0"]


def test_what_does_not_match_is_left_alone():
    # a clock enable from logic on A: the inputs stay outside, the output still moves
    nl = netlist(a_ce=7)
    before = copy.deepcopy(nl["modules"]["top"]["cells"]["dsp"]["connections"])
    stats = absorb_dsp_registers(nl, "top")
    dsp = nl["modules"]["top"]["cells"]["dsp"]
    assert stats["input_registers"] == 0 and stats["output_registers"] == 1
    assert dsp["connections"]["A0"] == before["A0"] and "REG_INPUTA_CLK" not in dsp["parameters"]
    # a product bit that also drives logic: the output registers stay outside
    nl = netlist(p_extra_load=True)
    stats = absorb_dsp_registers(nl, "top")
    assert stats["output_registers"] == 0 and "rp0" in nl["modules"]["top"]["cells"]
    # both: nothing changes at all
    nl = netlist(a_ce=7, p_extra_load=True)
    pristine = copy.deepcopy(nl)
    assert absorb_dsp_registers(nl, "top") == {"dsp": 0, "input_registers": 0, "output_registers": 0,
                                               "ffs_removed": 0}
    assert nl == pristine
