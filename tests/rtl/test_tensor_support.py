"""Shared harness for the tensor-core RTL tests (tests/rtl/test_tensor_*.py).

- :func:`run_stream` drives any stream core (``i``/``o``) in the Amaranth simulator with
  random input gaps and random output back-pressure (``stream_harness.drive_stream``).
  Payloads are packed and unpacked by the manifest's field list (``a[0]``, ``c``, ``d[1][0]``...), so the same harness
  serves DotProductAdd and MMA; it checks the stream contract (a stalled output keeps
  valid and payload) and returns the output fields in order.
- :func:`check` compares against expected field arrays and prints the seed and the
  first mismatches with their inputs in hex.
- :func:`vector_count` scales CI-sized counts with ``TF_VECTORS`` (default 1000 = 1x).
"""

from __future__ import annotations

import numpy as np

from stream_harness import drive_stream, fields_of, pack, unpack, vector_count  # noqa: F401 (vector_count re-exported)


def run_stream(core, inputs: dict, *, seed: int, p_valid: float = 0.8, p_ready: float = 0.8):
    """Stream ``inputs`` (manifest field name -> sequence of ints) through ``core``; return
    {output field: np.array(object)} in output order."""
    fin, fout = fields_of(core.i), fields_of(core.o)
    n = len(next(iter(inputs.values())))
    words = [pack(fin, inputs, k) for k in range(n)]
    outputs = drive_stream(core, words, seed=seed, p_valid=p_valid, p_ready=p_ready)
    return {name: np.array([unpack(fout, w)[name] for w in outputs], dtype=object) for name, _, _ in fout}


def check(got: dict, expected: dict, inputs: dict, *, seed: int, label: str):
    """Assert every expected field bit-exact; report the seed and the first mismatches in hex."""
    n = len(next(iter(inputs.values())))
    bad = []
    for k in range(n):
        diffs = [f"{f}: got {int(got[f][k]):#x} expected {int(expected[f][k]):#x}"
                 for f in expected if int(got[f][k]) != int(expected[f][k])]
        if diffs:
            ins = " ".join(f"{f}={int(v[k]):#x}" for f, v in inputs.items())
            bad.append(f"#{k} {ins}: " + "; ".join(diffs))
    assert not bad, f"{label} seed {seed}: {len(bad)} mismatches of {n}:\n" + "\n".join(bad[:8])


def dot_fields(a, b, c) -> dict:
    """(n, k), (n, k), (n,) arrays -> the DotProductAdd input field dict."""
    k = a.shape[1]
    out = {f"a[{j}]": a[:, j] for j in range(k)}
    out.update({f"b[{j}]": b[:, j] for j in range(k)})
    out["c"] = c
    return out


def test_pack_roundtrip():
    fields = [("x", 0, 4), ("y[0]", 4, 8), ("y[1]", 12, 8)]
    vals = {"x": [5], "y[0]": [0xAB], "y[1]": [0x1FF]}
    word = pack(fields, vals, 0)
    assert unpack(fields, word) == {"x": 5, "y[0]": 0xAB, "y[1]": 0xFF}
