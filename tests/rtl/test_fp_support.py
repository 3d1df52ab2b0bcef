"""Shared harness for the floating-point RTL tests (tests/rtl/test_fp_*.py).

- :func:`run_stream` drives a stream core (``i``/``o`` valid/ready) in the Amaranth
  simulator with random input gaps and random output back-pressure and returns the
  output payloads in order (checking that nothing is lost, duplicated or reordered is
  then a plain list comparison against the golden model).
- :func:`operands` makes TestFloat-style operand mixes: special values (zeros,
  subnormal extremes, min normal, max finite, infinities, quiet/signaling NaNs, one,
  values one ulp around them) and random bit patterns.
- :func:`check` compares against ``tensorforge.golden.fp`` and prints the seed and the
  first mismatches in hex on failure.

Vector counts scale with the ``TF_VECTORS`` environment variable (default: CI-sized).
The Amaranth simulator evaluates ~100 vectors/s for an FMA, so these tests are short;
the deep runs happen in Verilator (tests/sim).
"""

from __future__ import annotations

import numpy as np

from tensorforge.golden import fp as gfp

from stream_harness import drive_stream, fields_of, pack, unpack, vector_count as _vector_count


def vector_count(default: int) -> int:
    """``default`` scaled by TF_VECTORS (default 1000 = the CI size), at least 16."""
    return _vector_count(default, minimum=16)


def special_values(fmt) -> list[int]:
    """Bit patterns of the interesting values of ``fmt`` (both signs)."""
    pad = fmt.pad_bits
    man_mask = (1 << fmt.man_bits) - 1
    vals = {0, fmt.min_subnormal, fmt.pack(0, 0, man_mask), fmt.pack(0, 0, 1 << (fmt.man_bits - 1)),
            fmt.min_normal, fmt.pack(0, 1, 1), fmt.pack(0, 1, man_mask), fmt.max_finite,
            fmt.max_finite - (1 << pad), fmt.pack(0, fmt.bias, 0), fmt.pack(0, fmt.bias, 1),
            fmt.pack(0, fmt.bias - 1, man_mask), fmt.pack(0, fmt.bias, man_mask),
            fmt.pack(0, fmt.bias + 1, 1 << (fmt.man_bits - 1)), fmt.canonical_nan}
    if fmt.has_inf:
        vals |= {fmt.inf, fmt.pack(0, fmt.exp_max_field, 1), fmt.pack(0, fmt.exp_max_field, man_mask >> 1),
                 fmt.pack(0, fmt.exp_max_field, man_mask)}
    return sorted(vals | {v | fmt.sign_mask for v in vals})


def random_bits(fmt, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random bit patterns: half uniform over the container, half with an exponent near the
    bias (where products and sums cancel and round), padding bits random (they must be ignored)."""
    raw = rng.integers(0, 1 << fmt.width, n, dtype=np.uint64)
    near = rng.integers(0, 2, n).astype(bool)
    exp_field = np.clip(rng.normal(fmt.bias, 3, n).round(), 0, fmt.exp_max_field).astype(np.uint64)
    shift = np.uint64(fmt.man_bits + fmt.pad_bits)
    mask = np.uint64(((1 << fmt.exp_bits) - 1)) << shift
    centred = (raw & ~mask) | (exp_field << shift)
    return np.where(near, centred, raw)


def operands(fmt, rng: np.random.Generator, n: int, special_share: float = 0.25) -> np.ndarray:
    """n operands: a ``special_share`` of special values, the rest :func:`random_bits`."""
    out = random_bits(fmt, rng, n)
    pool = np.array(special_values(fmt), dtype=np.uint64)
    pick = rng.random(n) < special_share
    out[pick] = rng.choice(pool, int(pick.sum()))
    return out


def near_cancelling_addends(a, b, in_format, acc_format, rng, rounding="rne") -> np.ndarray:
    """c = -(a*b rounded to acc_format) moved by a few ulps: exercises massive cancellation,
    carries into a new binade and sticky handling in the aligner."""
    prod, _ = gfp.mul(a, b, in_format, rounding, out_format=acc_format)
    prod = prod.astype(np.uint64)
    delta = rng.integers(-3, 4, len(prod)).astype(np.int64) << acc_format.pad_bits
    mag = prod & np.uint64(acc_format.sign_mask - 1)
    moved = np.clip(mag.astype(np.int64) + delta, 0, acc_format.max_finite).astype(np.uint64)
    flip = rng.random(len(prod)) < 0.8
    sign = (prod & np.uint64(acc_format.sign_mask)) ^ np.where(flip, np.uint64(acc_format.sign_mask), np.uint64(0))
    return moved | sign


def run_stream(core, payloads: dict, *, seed: int, p_valid: float = 0.75, p_ready: float = 0.75):
    """Stream ``payloads`` (field -> sequence of ints) through ``core`` and return a list of
    (d, flags) in output order, with random input gaps and back-pressure
    (``stream_harness.drive_stream``, which also checks the stream contract)."""
    fin, fout = fields_of(core.i), fields_of(core.o)
    n = len(next(iter(payloads.values())))
    words = [pack(fin, payloads, k) for k in range(n)]
    outputs = drive_stream(core, words, seed=seed, p_valid=p_valid, p_ready=p_ready)
    return [(fields["d"], fields["flags"]) for fields in (unpack(fout, w) for w in outputs)]


def check(outputs, expected_bits, expected_flags, inputs: dict, *, seed: int, label: str):
    """Assert bit-exact (d, flags); report the seed and the first mismatches in hex."""
    assert len(outputs) == len(expected_bits), f"{label} seed {seed}: {len(outputs)} outputs for " \
                                               f"{len(expected_bits)} inputs"
    bad = []
    for k, (d, flags) in enumerate(outputs):
        if d != int(expected_bits[k]) or flags != int(expected_flags[k]):
            ins = " ".join(f"{f}={int(v[k]):#x}" for f, v in inputs.items())
            bad.append(f"#{k} {ins}: got d={d:#x} flags={flags:#04x}, "
                       f"expected d={int(expected_bits[k]):#x} flags={int(expected_flags[k]):#04x}")
    assert not bad, f"{label} seed {seed}: {len(bad)} mismatches of {len(outputs)}:\n" + "\n".join(bad[:8])


def test_special_values_are_distinct_and_in_range():
    from tensorforge.golden.formats import FP8_E4M3, FP16, TF32
    for fmt in (FP16, FP8_E4M3, TF32):
        vals = special_values(fmt)
        assert len(vals) == len(set(vals))
        assert all(0 <= v < (1 << fmt.width) for v in vals)


def test_harness_detects_a_wrong_core():
    """The bench must be able to fail: an FMA checked against the wrong rounding mode mismatches."""
    import pytest
    from tensorforge.golden.formats import FP8_E4M3
    from tensorforge.rtl.fp.mul import Mul
    a = np.array([0x31, 0x39, 0x3B, 0x45], dtype=np.uint64)   # products that need rounding
    b = np.array([0x3B, 0x3D, 0x3B, 0x43], dtype=np.uint64)
    out = run_stream(Mul(fmt=FP8_E4M3, rounding="rtz", stages=1), {"a": a, "b": b}, seed=1)
    bits, flags = gfp.mul(a, b, FP8_E4M3, "rup")
    with pytest.raises(AssertionError, match="mismatches"):
        check(out, bits, flags, {"a": a, "b": b}, seed=1, label="negative control")
