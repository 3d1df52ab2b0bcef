"""Parameter sweeps: one generator parameter over a list of values -> CSV + PNG (Fmax and LUT4)."""

from __future__ import annotations

import csv
from pathlib import Path

from .. import registry
from .flow import DoesNotFit, synthesize

__all__ = ["sweep", "SWEEP_COLUMNS"]

SWEEP_COLUMNS = ["value", "top", "status", "lut4", "ff", "dsp", "bram", "fmax_median_mhz", "fmax_min_mhz",
                 "fmax_max_mhz", "latency", "critical_path_ns", "critical_path_levels", "message"]


def _plot(rows, name, title, png: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = list(range(len(rows)))
    labels = [r["value"] for r in rows]
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
    fig, ax1 = plt.subplots(figsize=(7, 4.2))
    ax2 = ax1.twinx()
    if ok:
        med = [rows[i]["fmax_median_mhz"] for i in ok]
        lo = [rows[i]["fmax_median_mhz"] - rows[i]["fmax_min_mhz"] for i in ok]
        hi = [rows[i]["fmax_max_mhz"] - rows[i]["fmax_median_mhz"] for i in ok]
        ax1.errorbar(ok, med, yerr=[lo, hi], color="tab:blue", marker="o", capsize=3,
                     label="Fmax median (min-max over seeds)")
        ax2.plot(ok, [rows[i]["lut4"] for i in ok], color="tab:orange", marker="s", linestyle="--",
                 label="LUT4 (core)")
    for i, r in enumerate(rows):
        if r["status"] != "ok":
            ax1.annotate("does not fit", (i, 0), rotation=90, fontsize=8, color="tab:red",
                         xycoords=("data", "axes fraction"), xytext=(0, 5), textcoords="offset points")
    ax1.set_xticks(xs, labels)
    ax1.set_xlabel(name)
    ax1.set_ylabel("Fmax (MHz)", color="tab:blue")
    ax2.set_ylabel("LUT4", color="tab:orange")
    ax1.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    ax1.grid(True, alpha=0.3)
    ax1.set_title(title, fontsize=9)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    if h1 or h2:
        ax1.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def sweep(generator, name: str, values, params: dict | None = None, target: str = "ecp5-25k", *,
          out_dir="build/sweep", seeds=1, progress=None, **options) -> dict:
    """Synthesize ``generator`` for every value of parameter ``name``.

    ``values`` are command-line strings (parsed by the parameter) or Python
    values; ``params`` the other parameters (Python values, defaults filled
    in). Every value is validated before anything runs. Writes
    ``GENERATOR_NAME_TARGET.csv`` and ``.png`` into ``out_dir`` and returns
    ``{"rows", "csv", "png"}``. A configuration that does not fit becomes a
    row with status ``does not fit``.
    """
    from tqdm import tqdm

    gen = registry.get(generator) if isinstance(generator, str) else generator
    p = gen.param(name)
    values = list(values)
    if not values:
        raise registry.ParamError(f"--param {name}= needs at least one value")
    base = dict(params or {})
    configs = []
    for v in values:
        value = p.parse(v) if isinstance(v, str) else p.check(v)
        configs.append((p.show(value), registry.resolve(gen, {**base, name: value})))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for text, cfg in tqdm(configs, desc=f"sweep {gen.name} {name}", unit="config",
                          disable=(None if progress is None else not progress)):
        try:
            r = synthesize(gen, cfg, target, seeds=seeds, progress=progress, **options)
        except DoesNotFit as exc:
            rows.append({"value": text, "top": gen.top(cfg), "status": "does not fit", "message": str(exc)})
            continue
        cp = r.critical_path or {}
        rows.append({"value": text, "top": r.top, "status": "ok", "lut4": r.core["LUT4"], "ff": r.core["FF"],
                     "dsp": r.core["DSP"], "bram": r.core["BRAM"], "fmax_median_mhz": round(r.fmax["median"], 2),
                     "fmax_min_mhz": round(r.fmax["min"], 2), "fmax_max_mhz": round(r.fmax["max"], 2),
                     "latency": r.latency, "critical_path_ns": cp.get("total_ns"),
                     "critical_path_levels": cp.get("logic_levels"), "message": "; ".join(r.notes)})
    stem = f"{gen.name}_{name}_{target}"
    csv_path, png_path = out / f"{stem}.csv", out / f"{stem}.png"
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=SWEEP_COLUMNS)
        wr.writeheader()
        for row in rows:
            wr.writerow({k: row.get(k, "") for k in SWEEP_COLUMNS})
    fixed = ", ".join(f"{q.name}={q.show(base[q.name])}" for q in gen.params if q.name != name and q.name in base)
    _plot(rows, name, f"{gen.name} on {target}, seeds {seeds}" + (f"\n{fixed}" if fixed else ""), png_path)
    return {"rows": rows, "csv": str(csv_path), "png": str(png_path)}
