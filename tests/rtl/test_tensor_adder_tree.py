"""AdderTree (adder tree and carry-save structures, optional unsigned extra) against Python sums.

Stimulus: random terms over the full signed range, all-extreme rows (every term at the most
negative / most positive value, the carry-out corner), and ones' complement negation as the
NVIDIA lanes use it (``~x`` with the +1s counted in ``extra``), for term counts 1..9.
"""

from __future__ import annotations

import random

import pytest
from tensorforge.rtl.tensor import AdderTree

from stream_harness import check_combinational, vector_count


def _signed(value, width):
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


CASES = [  # count, width, extra_width, carry_save
    (1, 5, 0, True),
    (2, 4, 0, True),
    (3, 6, 2, True),
    (5, 26, 3, True),          # the volta lane: 4 products + c, 5 ones' complement negations
    (5, 26, 0, False),
    (6, 7, 3, True),
    (9, 9, 4, True),
    (9, 9, 4, False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"n{c[0]}-w{c[1]}-x{c[2]}-{'csa' if c[3] else 'add'}")
def test_adder_tree_matches_python(case):
    count, width, xw, carry_save = case
    seed = 100 * count + width + xw
    rng = random.Random(seed)
    dut = AdderTree(count=count, width=width, extra_width=xw, carry_save=carry_save)
    assert dut.sum_width == width + (count - 1).bit_length()
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    vectors = [([lo] * count, 0), ([hi] * count, 0)]
    for _ in range(vector_count(400)):
        if xw and count < (1 << xw):
            # ones' complement negation: terms ~x (x >= 0) plus one unit of extra each
            mags = [rng.randint(0, hi) for _ in range(count)]
            neg = [rng.random() < 0.5 for _ in range(count)]
            vectors.append(([~x if n else x for x, n in zip(mags, neg)], sum(neg)))
        else:
            vectors.append(([rng.randint(lo, hi) for _ in range(count)], 0))

    def apply(ctx, vector):
        terms, extra = vector
        for i, t in enumerate(terms):
            ctx.set(dut.terms[i], t)
        if xw:
            ctx.set(dut.extra, extra)

    check_combinational(dut, vectors, apply=apply, observe=lambda ctx: ctx.get(dut.sum),
                        model=lambda vector: sum(vector[0]) + vector[1], seed=seed,
                        describe=lambda vector: f"terms={vector[0]} extra={vector[1]}")


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(count=0, width=4), ValueError, "count must be an integer >= 1, not 0"),
    (dict(count=2, width=0), ValueError, "width must be an integer >= 1, not 0"),
    (dict(count=4, width=4, extra_width=6), ValueError, "extra_width must be an integer between 0 and 5, not 6"),
    (dict(count=2, width=4, carry_save=1), TypeError, "carry_save must be a bool, not 1"),
])
def test_adder_tree_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc) as err:
        AdderTree(**kwargs)
    assert message in str(err.value)
