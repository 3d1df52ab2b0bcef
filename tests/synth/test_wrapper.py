"""The out-of-context wrapper built from a manifest: every port registered, every bit reaches a pin."""

from __future__ import annotations

import re

import pytest

from tensorforge.gen.synth.wrapper import ooc_wrapper

from small_cores import artifact


def _manifest(ins, outs, top="core_x"):
    ports = [{"name": "clk", "direction": "input", "width": 1}]
    ports += [{"name": n, "direction": "input", "width": w} for n, w in ins]
    ports += [{"name": n, "direction": "output", "width": w} for n, w in outs]
    return {"top": top, "clock": {"name": "clk"}, "ports": ports}


def _slices(text, sig):
    return [(int(h), int(lo)) for h, lo in re.findall(rf"\(\s*{sig}\[(\d+):(\d+)\]\)", text)]


def test_wrapper_of_an_elaborated_core():
    art = artifact()
    w = ooc_wrapper(art.manifest)
    widths = {p["name"]: p["width"] for p in art.manifest["ports"]}
    assert w.in_bits == widths["rst"] + widths["i__payload"] + widths["i__valid"] + widths["o__ready"]
    assert w.out_bits == widths["i__ready"] + widths["o__payload"] + widths["o__valid"]
    assert w.pins_in == 8 and w.pins_out <= 8 and w.pins <= 39           # fits the UP5K sg48
    assert f"{art.top} core (" in w.verilog and ".clk(clk)" in w.verilog


@pytest.mark.parametrize("ins,outs", [
    ([("rst", 1), ("i__payload", 64), ("i__valid", 1), ("o__ready", 1)],
     [("i__ready", 1), ("o__payload", 37), ("o__valid", 1)]),
    ([("rst", 1), ("a", 3)], [("y", 2)]),                                 # fewer bits than pins
    ([("rst", 1), ("x", 700)], [("y", 1000), ("z", 5)]),
])
def test_every_bit_is_registered_and_observable(ins, outs):
    w = ooc_wrapper(_manifest(ins, outs))
    v = w.verilog
    # inputs: the in_sr slices connected to the core partition the whole register
    cov = sorted(_slices(v, "in_sr"), key=lambda s: s[1])
    assert cov[0][1] == 0 and cov[-1][0] == w.in_bits - 1
    assert all(a[0] + 1 == b[1] for a, b in zip(cov, cov[1:]))
    assert "in_sr <= " in v                                                 # shift, no other logic
    # outputs: out_d slices partition the captured vector; out_q <= out_d is a plain register
    cov = sorted(_slices(v, "out_d"), key=lambda s: s[1])
    assert cov[0][1] == 0 and cov[-1][0] == w.out_bits - 1
    assert "always @(posedge clk) out_q <= out_d;" in v
    # every bit of each fold level feeds exactly one bit of the next level; the last level is the pins
    prev, prev_w = "out_q", w.out_bits
    level = 0
    while f"fold{level}" in v:
        body = re.findall(rf"fold{level}\[\d+\] <= ([^;]+);", v)
        bits = [int(b) for expr in body for b in re.findall(rf"{prev}\[(\d+)\]", expr)]
        assert sorted(bits) == list(range(prev_w))
        assert all(len(re.findall(r"\[", e)) <= 4 for e in body)        # at most one LUT4 per bit
        prev, prev_w = f"fold{level}", len(body)
        level += 1
    assert re.search(rf"assign so = {prev};", v)
    assert prev_w == w.pins_out <= 8


def test_wrapper_messages():
    m = _manifest([("rst", 1)], [("y", 1)])
    with pytest.raises(ValueError, match=r"^pins_in must be an integer between 1 and 64, not 0$"):
        ooc_wrapper(m, pins_in=0)
    with pytest.raises(ValueError, match=r"^core 'core_x' has no output ports; nothing to synthesize$"):
        ooc_wrapper(_manifest([("rst", 1)], []))
    bad = _manifest([("rst", 1)], [("y", 1)])
    bad["ports"].append({"name": "io", "direction": "inout", "width": 1})
    with pytest.raises(ValueError, match=r"^port 'io' has direction 'inout'"):
        ooc_wrapper(bad)
