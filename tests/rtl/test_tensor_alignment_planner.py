"""AlignmentPlanner (all-pairs exponent planning of the NVIDIA lanes) against a Python model.

The model is the definition: ``max(e)``, the one-hot index of the first maximum, and
``min(max - e[i], 2**w[i] - 1)``. Stimulus: random exponents over the full signed range,
exponents clustered in a few values (ties), constants at the extremes; every count from 1 to 9
and shift widths narrower and wider than the distances.
"""

from __future__ import annotations

import random

import pytest
from tensorforge.rtl.tensor import AlignmentPlanner

from stream_harness import check_combinational, vector_count


def _model(es, widths):
    mx = max(es)
    win = es.index(mx)
    return mx, 1 << win, [min(mx - e, (1 << w) - 1) for e, w in zip(es, widths)]


def _vectors(rng, count, ew, n):
    lo, hi = -(1 << (ew - 1)), (1 << (ew - 1)) - 1
    out = [[lo] * count, [hi] * count, [lo] * (count - 1) + [hi], [hi] + [lo] * (count - 1)]
    for idx in range(n):
        if idx % 3 == 0:
            pool = [rng.randint(lo, hi) for _ in range(2)]
            out.append([rng.choice(pool) for _ in range(count)])         # ties
        elif idx % 3 == 1:
            base = rng.randint(lo + 40, hi - 40) if hi - lo > 100 else 0
            out.append([max(lo, min(hi, base + rng.randint(-40, 40))) for _ in range(count)])
        else:
            out.append([rng.randint(lo, hi) for _ in range(count)])
    return out


CASES = [  # count, exp_width, shift widths
    (1, 4, (3,)),
    (2, 3, (1, 4)),
    (3, 6, (2, 3, 7)),
    (5, 9, (5, 5, 5, 5, 5)),            # the volta lane: 4 products + c
    (6, 9, (5, 5, 5, 1, 5, 5)),
    (9, 12, (5, 5, 5, 5, 5, 5, 5, 5, 14)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"n{c[0]}-ew{c[1]}")
def test_planner_matches_model(case):
    count, ew, widths = case
    seed = 1000 * count + ew
    rng = random.Random(seed)
    dut = AlignmentPlanner(count=count, exp_width=ew, shift_widths=widths)
    vectors = _vectors(rng, count, ew, vector_count(300))

    def apply(ctx, es):
        for i, e in enumerate(es):
            ctx.set(dut.e[i], e)

    def observe(ctx):
        return ctx.get(dut.max), ctx.get(dut.winner), [ctx.get(dut.shift_of(i)) for i in range(count)]

    check_combinational(dut, vectors, apply=apply, observe=observe, seed=seed,
                        model=lambda es: _model(es, widths), describe=lambda es: f"e={es}")


@pytest.mark.parametrize("kwargs, message", [
    (dict(count=0, exp_width=4, shift_widths=()), "count must be an integer >= 1, not 0"),
    (dict(count=2, exp_width=1, shift_widths=(2, 2)), "exp_width must be an integer >= 2, not 1"),
    (dict(count=2, exp_width=4, shift_widths=(2,)),
     "shift_widths must be a sequence of 2 widths (one per exponent), not (2,)"),
    (dict(count=2, exp_width=4, shift_widths=5), "shift_widths must be a sequence of 2 widths"),
    (dict(count=2, exp_width=4, shift_widths=(2, 0)), "shift_widths[1] must be an integer >= 1, not 0"),
])
def test_planner_bad_parameters(kwargs, message):
    with pytest.raises(ValueError) as err:
        AlignmentPlanner(**kwargs)
    assert message in str(err.value)
