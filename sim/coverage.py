"""Functional coverage of the floating-point benches (a small equivalent of cocotb-coverage).

For a core whose input payload fields carry float formats in the manifest
(``fma``: a, b, c; ``mul``/``add``: a, b) and whose output has a float field
``d`` and a ``flags`` field, :class:`FpCoverage` counts hits of these cover
points over the vectors a bench ran (vectorized, after the run):

``operand.<x>``
    Class of every float input field: ``zero``, ``subnormal``, ``normal``,
    ``inf``, ``qnan``, ``snan`` (classes the format cannot hold, e.g. inf and
    snan of e4m3fn, are not bins).
``operands``
    The cross of all float input classes (a x b x c for the FMA): every
    combination is a legal input, so every bin is reachable.
``result``
    Class of ``d``: zero, subnormal, normal, inf (if the format has it), nan.
``result_x_flags``
    Cross of the result class with each flag raised (``inexact``,
    ``underflow``, ``overflow``, ``invalid``) and with "no flag". Only bins
    the arithmetic can produce are bins (IEEE rules, NUMERICS.md section 1):
    invalid only with a NaN result; overflow with inf, normal (max finite in
    directed modes) or nan (e4m3fn RNE); underflow with zero, subnormal or
    normal (tininess after rounding: a tiny value rounding to the smallest
    normal); inexact with any class. ``flags.infinite`` (division by zero) is
    never raised by these cores and is not a bin.

:meth:`FpCoverage.report` gives, per cover point, bins, hits, percentage and
the holes (bins never hit); reports of several runs merge with
:func:`merge_reports` (they carry the raw bin counts).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..golden.formats import FloatFormat, parse_float_format

__all__ = ["FpCoverage", "bench_coverage", "merge_reports", "format_report", "operand_classes",
           "FLAG_NAMES"]

#: Flag bits (TestFloat order) that the FP cores can raise.
FLAG_NAMES = {"inexact": 1, "underflow": 2, "overflow": 4, "invalid": 16}


def operand_classes(fmt: FloatFormat) -> tuple[str, ...]:
    """The class bins a format can hold."""
    if fmt.has_inf:
        return ("zero", "subnormal", "normal", "inf", "qnan", "snan")
    return ("zero", "subnormal", "normal", "qnan")


def _result_classes(fmt: FloatFormat) -> tuple[str, ...]:
    return ("zero", "subnormal", "normal", "inf", "nan") if fmt.has_inf else ("zero", "subnormal", "normal", "nan")


def _classify(bits, fmt: FloatFormat, nan_split: bool) -> np.ndarray:
    """Class index per value (into operand_classes / _result_classes)."""
    from ..golden.fp import classify
    c = classify(np.asarray(bits, dtype=np.uint64), fmt)
    names = operand_classes(fmt) if nan_split else _result_classes(fmt)
    out = np.full(len(c.zero), -1, dtype=np.int64)
    masks = {"zero": c.zero, "subnormal": c.subnormal, "normal": c.normal, "inf": c.inf,
             "qnan": c.qnan, "snan": c.snan, "nan": c.nan}
    for k, name in enumerate(names):
        out[masks[name]] = k
    return out


def _flag_results(fmt: FloatFormat, rounding: str) -> dict:
    """Result classes each flag can come with (NUMERICS.md section 1 overflow rules)."""
    if rounding in ("rne", "rmm"):
        over = ("inf",) if fmt.has_inf else ("nan",)
    elif rounding == "rtz" or not fmt.has_inf:
        over = ("normal",)
    else:                                   # rdn / rup: inf on one side, max finite on the other
        over = ("normal", "inf")
    return {
        "none": ("zero", "subnormal", "normal", "inf", "nan"),
        "inexact": ("zero", "subnormal", "normal") + over,
        "underflow": ("zero", "subnormal", "normal"),
        "overflow": over,
        "invalid": ("nan",),
    }


class FpCoverage:
    """Cover points of one FP core configuration (see the module docstring).

    ``inputs``: list of (field name, FloatFormat) for the float input fields;
    ``result_format``: format of ``d``; ``rounding`` decides which result
    classes can come with the overflow flag.
    """

    def __init__(self, inputs, result_format: FloatFormat, rounding: str = "rne"):
        self.inputs = [(name, fmt) for name, fmt in inputs]
        self.result_format = result_format
        self.points: dict[str, dict[str, int]] = {}
        for name, fmt in self.inputs:
            self.points[f"operand.{name}"] = {c: 0 for c in operand_classes(fmt)}
        cross = itertools.product(*[operand_classes(fmt) for _, fmt in self.inputs])
        self.points["operands"] = {" x ".join(c): 0 for c in cross}
        rc = _result_classes(result_format)
        self.points["result"] = {c: 0 for c in rc}
        bins = {}
        for flag, allowed in _flag_results(result_format, rounding).items():
            for c in rc:
                if c in allowed:
                    bins[f"{c} + {flag}"] = 0
        self.points["result_x_flags"] = bins
        self.unexpected: dict[str, int] = {}

    def sample(self, inputs: dict, d, flags):
        """Count one batch: ``inputs`` field name -> bit array, ``d`` and ``flags`` arrays."""
        d = np.asarray(d, dtype=np.uint64)
        flags = np.asarray(flags, dtype=np.uint64)
        idx = []
        for name, fmt in self.inputs:
            k = _classify(inputs[name], fmt, True)
            idx.append(k)
            names = operand_classes(fmt)
            counts = np.bincount(k, minlength=len(names))
            for j, c in enumerate(names):
                self.points[f"operand.{name}"][c] += int(counts[j])
        sizes = [len(operand_classes(fmt)) for _, fmt in self.inputs]
        flat = np.zeros(len(d), dtype=np.int64)
        for k, s in zip(idx, sizes):
            flat = flat * s + k
        counts = np.bincount(flat, minlength=int(np.prod(sizes)))
        for j, key in enumerate(self.points["operands"]):
            self.points["operands"][key] += int(counts[j])
        rc = _result_classes(self.result_format)
        r = _classify(d, self.result_format, False)
        counts = np.bincount(r, minlength=len(rc))
        for j, c in enumerate(rc):
            self.points["result"][c] += int(counts[j])
        bins = self.points["result_x_flags"]
        any_flag = np.zeros(len(d), dtype=bool)
        for flag, bit in list(FLAG_NAMES.items()) + [("none", 0)]:
            if flag == "none":
                sel = ~any_flag
            else:
                sel = (flags & np.uint64(bit)) != 0
                any_flag |= sel
            counts = np.bincount(r[sel], minlength=len(rc))
            for j, c in enumerate(rc):
                key = f"{c} + {flag}"
                if counts[j]:
                    if key not in bins:     # a reachability rule above is wrong: keep it visible
                        self.unexpected[key] = self.unexpected.get(key, 0) + int(counts[j])
                    else:
                        bins[key] += int(counts[j])
        return self

    def report(self) -> dict:
        out = _report(self.points)
        out["unexpected"] = dict(self.unexpected)
        return out


def _report(points: dict) -> dict:
    out = {"points": {}, "bins": 0, "hit": 0}
    for name, bins in points.items():
        hit = sum(1 for v in bins.values() if v)
        out["points"][name] = {"bins": len(bins), "hit": hit,
                               "percent": round(100.0 * hit / len(bins), 1) if bins else 100.0,
                               "holes": [k for k, v in bins.items() if not v], "counts": dict(bins)}
        out["bins"] += len(bins)
        out["hit"] += hit
    out["percent"] = round(100.0 * out["hit"] / out["bins"], 1) if out["bins"] else 100.0
    return out


def merge_reports(reports) -> dict | None:
    """Merge reports of several runs of the same configuration (sums the bin counts)."""
    reports = [r for r in reports if r]
    if not reports:
        return None
    points: dict[str, dict[str, int]] = {}
    for r in reports:
        for name, p in r["points"].items():
            acc = points.setdefault(name, {})
            for k, v in p["counts"].items():
                acc[k] = acc.get(k, 0) + v
    out = _report(points)
    out["unexpected"] = {}
    for r in reports:
        for k, v in (r.get("unexpected") or {}).items():
            out["unexpected"][k] = out["unexpected"].get(k, 0) + v
    return out


def _float_format(text):
    if text is None:
        return None
    try:
        return parse_float_format(text)
    except ValueError:
        return None


def for_manifest(manifest: dict, in_port="i__payload", out_port="o__payload"):
    """An :class:`FpCoverage` for a core whose manifest has float input fields and ``d`` + ``flags``
    outputs; None for any other core."""
    ports = {p["name"]: p for p in manifest["ports"]}
    fin = ports.get(in_port, {}).get("fields") or []
    fout = {f["name"]: f for f in ports.get(out_port, {}).get("fields") or []}
    inputs = [(f["name"], _float_format(f.get("format"))) for f in fin]
    if not inputs or any(fmt is None for _, fmt in inputs) or "d" not in fout or "flags" not in fout:
        return None
    if len(inputs) > 3:     # the operand cross is for fma/mul/add; dot/mma have 2k+1 fields (6^(2k+1) bins)
        return None
    rfmt = _float_format(fout["d"].get("format"))
    if rfmt is None:
        return None
    return FpCoverage(inputs, rfmt, rounding=str(manifest.get("params", {}).get("rounding", "rne")))


def bench_coverage(manifest: dict, in_fields: list, inputs: list, out_fields: list, outputs: list) -> dict | None:
    """Coverage report for a bench run (hook of ``sim.stream_bench``): the inputs sent and the
    outputs received (per-field arrays in manifest order). None for non-FP cores."""
    cov = for_manifest(manifest)
    if cov is None:
        return None
    n = min(len(outputs[0]) if outputs else 0, len(inputs[0]) if inputs else 0)
    if n == 0:
        return cov.report()
    ins = {f["name"]: np.asarray(a[:n]).astype(np.uint64) for f, a in zip(in_fields, inputs)}
    outs = {f["name"]: np.asarray(a[:n]).astype(np.uint64) for f, a in zip(out_fields, outputs)}
    return cov.sample(ins, outs["d"], outs["flags"]).report()


def format_report(report: dict | None, *, max_holes: int = 12) -> list[str]:
    """Human-readable lines (empty for None)."""
    if not report:
        return []
    lines = [f"functional coverage {report['percent']:.1f}% ({report['hit']}/{report['bins']} bins)"]
    for name, p in report["points"].items():
        holes = p["holes"]
        more = f" ... (+{len(holes) - max_holes})" if len(holes) > max_holes else ""
        tail = f"  holes: {', '.join(holes[:max_holes])}{more}" if holes else ""
        lines.append(f"  {name:<18} {p['percent']:5.1f}% ({p['hit']}/{p['bins']}){tail}")
    if report.get("unexpected"):
        lines.append(f"  UNEXPECTED result/flag combinations (outside the declared bins): {report['unexpected']}")
    return lines
