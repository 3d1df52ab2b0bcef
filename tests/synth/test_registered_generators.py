"""Every registered generator synthesizes through the generic flow (slow: full Yosys + nextpnr runs).

Resource figures of the FMA that the performance targets bound are checked here; Fmax is
reported by ``tensorforge synth`` / ``make tables`` and never asserted (benchmark, not test).
"""

from __future__ import annotations

import pytest

from tensorforge.gen import registry
from tensorforge.gen.synth import DoesNotFit, synthesize


def _registered():
    try:
        return sorted(registry.generators())
    except Exception as exc:  # a family under development that does not import yet
        pytest.skip(f"registry does not load: {exc}", allow_module_level=True)


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("name", _registered())
def test_default_configuration_synthesizes_on_ecp5_85k(name, tmp_path_factory):
    try:
        r = synthesize(name, {}, "ecp5-85k", seeds=1, progress=False)   # shared build/synth cache
    except DoesNotFit as exc:
        pytest.fail(f"default {name} should fit the ecp5-85k: {exc}")
    assert r.fmax["median"] > 0
    assert r.core["LUT4"] + r.core["DSP"] > 0
    assert r.critical_path is not None and r.critical_path["total_ns"] > 0


@pytest.mark.synth
@pytest.mark.slow
def test_fma_resources_on_ecp5_25k_and_ice40():
    if "fma" not in registry.generators():
        pytest.skip("fma not registered")
    r = synthesize("fma", {}, "ecp5-25k", seeds=1, progress=False)
    assert r.core["DSP"] <= 1            # target 1: one MULT18X18D for the 11x11 significand product
    assert r.core["LUT4"] <= 1500        # target 1: at most 1,500 LUT4
    r = synthesize("fma", {}, "ice40-up5k", seeds=1, progress=False)   # target 5: it fits
    assert r.placed["LUT4"]["used"] <= r.placed["LUT4"]["available"]
