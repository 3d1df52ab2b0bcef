"""Parameter validation shared by the floating-point components (no hardware here).

Every check raises ``TypeError``/``ValueError`` naming the parameter, the value
and what is allowed, as ARCHITECTURE.md requires.
"""

from __future__ import annotations

from ...golden.formats import FloatFormat

__all__ = ["ROUNDING_MODES", "check_float_format", "check_rounding", "check_int", "check_bool",
           "check_acc_pair"]

#: The IEEE rounding modes every FP core accepts (fixed at generation time).
ROUNDING_MODES = ("rne", "rtz", "rdn", "rup", "rmm")


def check_float_format(name: str, value) -> FloatFormat:
    if not isinstance(value, FloatFormat):
        raise TypeError(f"{name} must be a FloatFormat (e.g. tensorforge.golden.formats.FP16), not {value!r}")
    return value


def check_rounding(value) -> str:
    if not isinstance(value, str) or value not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {value!r}")
    return value


def check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        allowed = f"an integer between {lo} and {hi}" if hi is not None else f"an integer >= {lo}"
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_acc_pair(in_name: str, in_format: FloatFormat, acc_name: str, acc_format: FloatFormat) -> None:
    """An accumulator format must hold every input value: at least the exponent and
    fraction widths, and infinities if the input format has them."""
    if acc_format.exp_bits < in_format.exp_bits or acc_format.man_bits < in_format.man_bits:
        raise ValueError(f"{acc_name} {acc_format} must have at least the exponent and fraction bits of "
                         f"{in_name} {in_format} (exp_bits >= {in_format.exp_bits}, "
                         f"man_bits >= {in_format.man_bits})")
    if in_format.has_inf and not acc_format.has_inf:
        raise ValueError(f"{acc_name} {acc_format} has no infinities but {in_name} {in_format} has: "
                         f"use an {acc_name} with infinities")


def silence_on_error(init):
    """Decorator for Component ``__init__``: a component whose parameters are rejected
    must not also trigger Amaranth's "created but never used" warning."""
    import functools

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
    return wrapper
