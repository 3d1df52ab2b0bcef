"""`verilator --lint-only -Wall` with the shipped waiver file passes for every configuration the tests use.

The Verilog comes from ``tensorforge.sim.runner.prepare`` (build/sim/<top>, the
same files the Verilator tests build; elaboration is cached by source hash).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tensorforge.golden.formats import BF16, FP16, FP32
from tensorforge.sim import runner
from tensorforge.sim.regression import REGRESSION, config_id

BUILD_ROOT = Path(__file__).resolve().parents[2] / "build"

# configurations of tests/gen (determinism, manifest) and the demo, besides the Verilator regression
EXTRA = [
    ("fma", {"in_format": BF16, "acc_format": FP32, "stages": 3}),
    ("mul", {"fmt": FP16, "out_format": FP32, "stages": 2}),
    ("add", {"fmt": FP32, "stages": 0}),
    ("fma", {"in_format": FP16, "acc_format": FP32}),          # the demo (default stages)
]
CONFIGS = list(REGRESSION) + [c for c in EXTRA if c not in REGRESSION]


@pytest.mark.verilator
@pytest.mark.parametrize("generator,params", CONFIGS, ids=[config_id(g, p) for g, p in CONFIGS])
def test_generated_verilog_is_lint_clean(generator, params):
    b = runner.prepare(generator, params, build_root=BUILD_ROOT)
    assert runner.lint(b.verilog, b.top) == ""


def test_waiver_file_is_scoped():
    text = runner.WAIVER_FILE.read_text()
    rules = [line.split() for line in text.splitlines() if line.startswith("lint_off")]
    assert rules, "no waivers"
    for words in rules:
        assert words[1] == "-rule", f"blanket waiver without -rule: {' '.join(words)}"
        assert "-file" in words
    assert sorted(w[2] for w in rules) == ["DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "WIDTHEXPAND",
                                           "WIDTHTRUNC"]
