"""EIE load-balance experiment: queue depth 1..16 x 4/16/64 PEs at 9% weights, 35% activations.

``run(out_dir, seed)`` evaluates :func:`tensorforge.golden.eie.cycles` (the cycle model the
RTL array matches cycle for cycle) on uniformly random sparse layers:

- the paper's Alex-6 shape (4096 x 9216, as used for Fig. 11 of Han et al., ISCA 2016) and
- a 1024 x 1024 layer (fewer rows per PE: the regime in which imbalance shows),

for every queue depth 1..16 and 4, 16 and 64 PEs, and reports the load-balance efficiency
(entries processed / (PEs x compute cycles)) and the useful-MAC efficiency (non-zero weight x
non-zero activation products / (PEs x compute cycles)). It also spot-checks the model against
the RTL (:class:`tensorforge.rtl.eie.EIEArray` in Amaranth simulation, 4 PEs, a 64 x 128
layer, depths 1, 4 and 8): results bit-exact to ``spmv`` and cycles equal to the model.

Writes ``eie_load_balance.png`` (efficiency vs depth, one line per PE count and shape) and
returns a JSON-serializable dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tensorforge.golden.eie import compress, cycles, entry_counts, sparse_workload, spmv

__all__ = ["run", "summary", "rtl_run", "DEPTHS", "PES", "SHAPES"]

DEPTHS = tuple(range(1, 17))
PES = (4, 16, 64)
SHAPES = ((4096, 9216), (1024, 1024))
WEIGHT_DENSITY, ACT_DENSITY = 0.09, 0.35


def _pattern(n_rows, n_cols, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols), dtype=np.float32) < WEIGHT_DENSITY
    a = (rng.random(n_cols) < ACT_DENSITY).astype(np.int64)
    return mask, a


def rtl_run(layer, a, queue_depth, *, relu=True):
    """Run one layer on an EIEArray in Amaranth simulation; returns ``(values, cycles)``."""
    from amaranth.sim import Simulator

    from tensorforge.rtl.eie import EIEArray
    from tensorforge.rtl.eie.array import (
        TARGET_ACT, TARGET_CLEAR, TARGET_CODEBOOK, TARGET_MATRIX, TARGET_PTR_EVEN, TARGET_PTR_ODD,
    )
    rows = max(1, layer.rows_per_pe)
    dut = EIEArray(n_pe=layer.n_pe, queue_depth=queue_depth, rows=rows, max_cols=layer.n_cols,
                   matrix_depth=max(1, max(len(r) for r in layer.matrix_rows)),
                   codebook_bits=layer.codebook_bits, index_bits=layer.index_bits, row_bits=layer.row_bits,
                   pointer_bits=layer.pointer_bits, weight_format=layer.weight_format)
    cmds = [(TARGET_CLEAR, 0, 0, 0)] + [(TARGET_CODEBOOK, 0, c, int(w)) for c, w in enumerate(layer.codebook_image)]
    for pe in range(layer.n_pe):
        cmds += [(TARGET_PTR_EVEN, pe, k, int(x)) for k, x in enumerate(layer.ptr_even[pe])]
        cmds += [(TARGET_PTR_ODD, pe, k, int(x)) for k, x in enumerate(layer.ptr_odd[pe])]
        cmds += [(TARGET_MATRIX, pe, k, int(x)) for k, x in enumerate(layer.matrix_rows[pe])]
    mask = (1 << dut.act_format.width) - 1
    cmds += [(TARGET_ACT, 0, j, int(v) & mask) for j, v in enumerate(a) if v]
    out = {}

    async def bench(ctx):
        ctx.set(dut.load.valid, 1)
        for cmd in cmds:
            for name, v in zip(("target", "pe", "addr", "data"), cmd):
                ctx.set(getattr(dut.load.payload, name), v)
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        ctx.set(dut.start.valid, 1)
        ctx.set(dut.start.payload.n_out, layer.n_rows)
        ctx.set(dut.start.payload.shift, layer.weight_frac_bits)
        ctx.set(dut.start.payload.relu, int(relu))
        await ctx.tick()
        ctx.set(dut.start.valid, 0)
        while not ctx.get(dut.done):
            await ctx.tick()
        out["cycles"] = ctx.get(dut.cycles)
        ctx.set(dut.o.ready, 1)
        vals = []
        while len(vals) < layer.n_rows:
            if ctx.get(dut.o.valid):
                vals.append(ctx.get(dut.o.payload.value))
            await ctx.tick()
        out["values"] = vals

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(out["values"], dtype=np.int64), out["cycles"]


def run(out_dir="build/experiments", seed=1, *, shapes=SHAPES, depths=DEPTHS, pes=PES, rtl_checks=True,
        plot=True):
    """Sweep; returns {"settings", "table": {shape: {n_pe: {depth: {...}}}}, "rtl_checks": [...]}."""
    table = {}
    for (n_rows, n_cols) in shapes:
        mask, a = _pattern(n_rows, n_cols, seed)
        key = f"{n_rows}x{n_cols}"
        table[key] = {}
        for n_pe in pes:
            counts = entry_counts(mask, n_pe)
            nonzeros = np.stack([mask[p::n_pe].sum(axis=0) for p in range(n_pe)]).astype(np.int64)
            table[key][n_pe] = {}
            for d in depths:
                r = cycles(counts, a, queue_depth=d, nonzeros=nonzeros)
                table[key][n_pe][d] = {"compute": r.compute, "load_balance": round(r.load_balance_efficiency, 4),
                                       "mac": round(r.mac_efficiency, 4)}
    checks = []
    if rtl_checks:
        W, a = sparse_workload(64, 128, WEIGHT_DENSITY, ACT_DENSITY, seed=seed)
        layer = compress(W, 4)
        for d in (1, 4, 8):
            vals, cyc = rtl_run(layer, a, d)
            model = cycles(layer, a, queue_depth=d)
            checks.append({"shape": "64x128", "n_pe": 4, "queue_depth": d, "rtl_cycles": int(cyc),
                           "model_cycles": int(model.total),
                           "mismatches": int(np.count_nonzero(vals != spmv(layer, a)))})
    result = {"settings": {"weight_density": WEIGHT_DENSITY, "act_density": ACT_DENSITY, "seed": seed,
                           "index_bits": 4, "depths": list(depths), "pes": list(pes),
                           "shapes": [f"{r}x{c}" for r, c in shapes]},
              "table": table, "rtl_checks": checks}
    if plot:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result["plot"] = str(_plot(result, out / "eie_load_balance.png"))
    return result


def _plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shapes = list(result["table"])
    fig, axes = plt.subplots(1, len(shapes), figsize=(5.5 * len(shapes), 4), squeeze=False)
    for ax, shape in zip(axes[0], shapes):
        for n_pe, rows in result["table"][shape].items():
            ds = sorted(rows)
            ax.plot(ds, [rows[d]["load_balance"] for d in ds], marker="o", label=f"{n_pe} PEs")
        ax.set_title(f"{shape}, dw={WEIGHT_DENSITY:.0%}, da={ACT_DENSITY:.0%}")
        ax.set_xlabel("activation queue depth")
        ax.set_ylabel("load-balance efficiency")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary(result) -> str:
    """Markdown table (load-balance efficiency [useful-MAC efficiency]) and the RTL spot checks."""
    lines = []
    for shape, per_pe in result["table"].items():
        pes = list(per_pe)
        lines.append(f"{shape}, dw={WEIGHT_DENSITY:.0%}, da={ACT_DENSITY:.0%}: load-balance efficiency "
                     "[useful-MAC efficiency]")
        lines.append("| depth | " + " | ".join(f"{p} PEs" for p in pes) + " |")
        lines.append("|---" * (len(pes) + 1) + "|")
        for d in sorted(per_pe[pes[0]]):
            lines.append(f"| {d} | " + " | ".join(f"{per_pe[p][d]['load_balance']:.3f} [{per_pe[p][d]['mac']:.3f}]"
                                                 for p in pes) + " |")
        lines.append("")
    for c in result["rtl_checks"]:
        ok = c["rtl_cycles"] == c["model_cycles"] and c["mismatches"] == 0
        lines.append(f"RTL spot check {c['shape']}, {c['n_pe']} PEs, depth {c['queue_depth']}: "
                     f"{c['rtl_cycles']} cycles (model {c['model_cycles']}), {c['mismatches']} mismatches"
                     f" -> {'OK' if ok else 'MISMATCH'}")
    return "\n".join(lines)
