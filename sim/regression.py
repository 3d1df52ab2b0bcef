"""The configurations that ``make test`` verifies in Verilator (tests/sim) and lints (tests/gen).

One list, so the Verilator tests and the lint tests cover the same Verilog.
Each entry is ``(generator, params)`` with Python parameter values; the
stages settings are chosen so that every FMA format is simulated with the
full pipeline and with a different, shorter register placement (including
the purely combinational ``stages=0``). Later issues append their
configurations (dot, mma, systolic...) here.
"""

from __future__ import annotations

from ..golden.formats import BF16, FP16, FP32

__all__ = ["REGRESSION", "config_id"]

REGRESSION: tuple = (
    ("fma", {"in_format": FP16, "acc_format": FP32, "stages": 3}),
    ("fma", {"in_format": FP16, "acc_format": FP32, "stages": 9}),
    ("fma", {"in_format": BF16, "acc_format": FP32, "stages": 0}),
    ("fma", {"in_format": BF16, "acc_format": FP32, "stages": 9}),
    ("fma", {"in_format": FP32, "acc_format": FP32, "stages": 2}),
    ("fma", {"in_format": FP32, "acc_format": FP32, "stages": 9}),
    ("mul", {"fmt": FP16, "out_format": FP16, "stages": 2}),
    ("add", {"fmt": FP32, "stages": 3}),
)


def config_id(generator: str, params: dict) -> str:
    """Readable test id: ``fma-in_format=e5m10-acc_format=e8m23-stages=3``."""
    return "-".join([generator] + [f"{k}={v}" for k, v in params.items()])
