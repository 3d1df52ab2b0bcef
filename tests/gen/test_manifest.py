"""The manifest describes the generated Verilog exactly: ports, payload fields, formats, latency."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tensorforge.gen.manifest import elaborate, write
from tensorforge.golden.formats import BF16, FP16, FP32
from tensorforge.sim.regression import config_id

CONFIGS = [
    ("fma", {"in_format": FP16, "acc_format": FP32, "stages": 7},
     {"i": [("a", 0, 16, "e5m10"), ("b", 16, 16, "e5m10"), ("c", 32, 32, "e8m23")],
      "o": [("d", 0, 32, "e8m23"), ("flags", 32, 5, None)]}),
    ("fma", {"in_format": BF16, "acc_format": FP32, "stages": 3},
     {"i": [("a", 0, 16, "e8m7"), ("b", 16, 16, "e8m7"), ("c", 32, 32, "e8m23")],
      "o": [("d", 0, 32, "e8m23"), ("flags", 32, 5, None)]}),
    ("mul", {"fmt": FP16, "out_format": FP32, "stages": 2},
     {"i": [("a", 0, 16, "e5m10"), ("b", 16, 16, "e5m10")],
      "o": [("d", 0, 32, "e8m23"), ("flags", 32, 5, None)]}),
    ("add", {"fmt": FP32, "stages": 0},
     {"i": [("a", 0, 32, "e8m23"), ("b", 32, 32, "e8m23")],
      "o": [("d", 0, 32, "e8m23"), ("flags", 32, 5, None)]}),
]


def _verilog_ports(text, top):
    """{name: (direction, width)} from the top module's declarations."""
    body = text[text.index(f"module {top}("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for direction, rng, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?([\w$]+)\s*;", body, re.M):
        ports[name] = (direction, int(rng) + 1 if rng else 1)
    return ports


@pytest.mark.parametrize("generator,params,fields", CONFIGS, ids=[config_id(g, p) for g, p, _ in CONFIGS])
def test_manifest_matches_component_and_verilog(generator, params, fields, tmp_path):
    art = elaborate(generator, params)
    m = art.manifest
    comp = art.component
    stages = params["stages"]
    assert m["generator"] == generator and m["top"] == art.top
    assert m["latency"] == comp.latency == stages
    assert m["initiation_interval"] == comp.initiation_interval == 1
    assert m["params"]["stages"] == str(stages)
    # ports: exactly what the Verilog declares, with the same widths and directions
    declared = _verilog_ports(art.verilog, art.top)
    assert {p["name"]: (p["direction"], p["width"]) for p in m["ports"]} == declared
    if stages == 0:        # purely combinational: Amaranth emits no clk/rst
        assert m["clock"] is None and m["reset"] is None and "clk" not in declared
    else:
        assert m["clock"] == {"name": "clk", "edge": "posedge"}
        assert m["reset"] == {"name": "rst", "polarity": "high", "synchronous": True}
        assert declared["clk"] == ("input", 1) and declared["rst"] == ("input", 1)
    by_name = {p["name"]: p for p in m["ports"]}
    for stream, expected in fields.items():
        port = by_name[f"{stream}__payload"]
        got = [(f["name"], f["offset"], f["width"], f["format"]) for f in port["fields"]]
        assert got == expected
        assert port["width"] == sum(w for _, _, w, _ in expected)
        # and the same as the Amaranth layout of the component's stream
        layout = getattr(comp, stream).payload.shape()
        for name, offset, width, _ in expected:
            assert layout[name].offset == offset and layout[name].width == width
        assert by_name[f"{stream}__valid"]["width"] == by_name[f"{stream}__ready"]["width"] == 1
    # written files: sha256 of the Verilog, tool versions, FuseSoC core
    paths = write(art, tmp_path)
    written = json.loads(paths[1].read_text())
    assert written["sha256"][f"{art.top}.v"] == hashlib.sha256(paths[0].read_bytes()).hexdigest()
    assert set(written["tools"]) >= {"tensorforge", "amaranth"}
    assert written["files"] == [f"{art.top}.v", f"{art.top}.core"]
    assert f"toplevel: {art.top}" in paths[2].read_text()
