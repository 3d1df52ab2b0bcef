"""Parameter checks shared by the flexpoint components (ValueError/TypeError naming the parameter)."""

from __future__ import annotations

__all__ = ["check_int", "accumulator_bits", "MAN_BITS_MIN", "MAN_BITS_MAX", "SHIFT_BITS_MIN", "SHIFT_BITS_MAX"]

#: Mantissa widths the flexpoint units accept (the range of ``golden.formats.FlexFormat.man_bits``).
MAN_BITS_MIN, MAN_BITS_MAX = 2, 32
#: Widths of the signed shift field.
SHIFT_BITS_MIN, SHIFT_BITS_MAX = 2, 16


def check_int(name, value, lo, hi):
    """Return ``value`` if it is an int in [lo, hi]; raise TypeError/ValueError naming ``name`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}, not {value!r}")
    return value


def accumulator_bits(man_bits: int, k: int) -> int:
    """Exact two's-complement accumulator width for ``k`` products of ``man_bits``-bit mantissas:
    ``2*man_bits + ceil(log2 k)`` (the rule of :func:`tensorforge.golden.flex.accumulator_bits`;
    repeated here because ``rtl`` imports only ``golden.formats``)."""
    return 2 * man_bits + (k - 1).bit_length()
