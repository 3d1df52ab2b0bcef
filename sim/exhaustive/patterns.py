"""Input spaces for the exhaustive harness: TestFloat-style level-1 patterns and c-value sets.

Level 1 (after Berkeley TestFloat's case generation -- the idea, not the code):
every operand value is an *exponent class* crossed with a *significand
pattern* and a sign.

- Exponent fields: 0 (zero/subnormals), 1, 2 (smallest normals), bias-2 ..
  bias+2 (around 1.0), the middle of the range, the two largest finite
  binades and the all-ones field (inf/NaN, where the format has it).
- Significand patterns (fraction field of ``m`` bits): 0, 1, 2, 3, the
  top bit, top+1, top two bits, all ones, all ones - 1, all ones - the top
  bit (largest below the MSB), alternating 0101.., 1010.., a single bit in
  the middle, and the low half all ones.

The operand sets are cross-multiplied (a x b x c for the FMA), which puts
every class pair against every other, including the exact ties, carries and
cancellations that these patterns produce. Values are deduplicated.
"""

from __future__ import annotations

import numpy as np

from ...golden.formats import FloatFormat

__all__ = ["level1_values", "level1_vectors", "c_values"]


def _sig_patterns(m: int) -> list[int]:
    ones = (1 << m) - 1
    top = 1 << (m - 1)
    pats = {0, 1, 2, 3, top, top | 1, top | (top >> 1), ones, ones - 1, ones ^ top,
            int("01" * m, 2) & ones, int("10" * m, 2) & ones, 1 << (m // 2), (1 << ((m + 1) // 2)) - 1}
    return sorted(p & ones for p in pats)


def _exp_fields(fmt: FloatFormat) -> list[int]:
    e_all = fmt.exp_max_field
    b = fmt.bias
    exps = {0, 1, 2, b - 2, b - 1, b, b + 1, b + 2, (e_all + 1) // 2, e_all - 1, e_all - 2, e_all}
    return sorted(e for e in exps if 0 <= e <= e_all)


def level1_values(fmt: FloatFormat) -> np.ndarray:
    """All level-1 operand bit patterns of ``fmt`` (both signs), sorted, unique."""
    vals = set()
    for e in _exp_fields(fmt):
        for s in _sig_patterns(fmt.man_bits):
            for sign in (0, 1):
                vals.add(fmt.pack(sign, e, s))
    return np.array(sorted(vals), dtype=np.uint64)


def level1_vectors(field_formats) -> dict:
    """The full cross of the level-1 values of every input field (dict field -> uint64 array).

    ``field_formats``: ``[(name, FloatFormat)]``, or ``[(name, FloatFormat, values)]`` to cross
    given value sets instead."""
    sets = [f[2] if len(f) > 2 else level1_values(f[1]) for f in field_formats]
    grids = np.meshgrid(*sets, indexing="ij")
    return {f[0]: g.reshape(-1).astype(np.uint64) for f, g in zip(field_formats, grids)}


def c_values(spec: str, fmt: FloatFormat) -> np.ndarray:
    """Parse ``--c``: comma-separated bit patterns (``0x3c00``, ``0``), or ``zero`` (+0),
    ``specials`` (the bench's special-value pool), ``level1`` (the level-1 values), or
    ``all`` (every bit pattern of ``fmt``)."""
    from ..models import float_special_pool

    out = []
    for part in str(spec).split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == "zero":
            out.append(np.array([0], dtype=np.uint64))
        elif part == "specials":
            out.append(float_special_pool(fmt))
        elif part == "level1":
            out.append(level1_values(fmt))
        elif part == "all":
            out.append(np.arange(0, 1 << fmt.width, 1 << fmt.pad_bits, dtype=np.uint64))
        else:
            try:
                v = int(part, 0)
            except ValueError:
                raise ValueError(f"--c must be bit patterns (0x3c00, 0) or zero, specials, level1, all; "
                                 f"not {part!r}") from None
            if not 0 <= v < (1 << fmt.width):
                raise ValueError(f"--c value {part} does not fit the {fmt.width}-bit format {fmt}")
            out.append(np.array([v], dtype=np.uint64))
    if not out:
        raise ValueError(f"--c must name at least one value, not {spec!r}")
    vals = np.concatenate(out)
    _, first = np.unique(vals, return_index=True)
    return vals[np.sort(first)]
