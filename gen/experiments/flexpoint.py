"""Flexpoint training experiment: a 64-64-10 MLP on scikit-learn's digits, three (optionally four) ways.

``run(epochs, seed, out_dir)`` trains the same network with identical data order, initial weights (rounded
to each format) and hyperparameters:

``fp32``
    numpy float32 throughout (matmuls by numpy/BLAS in float32).
``fp16``
    FP16 storage *and* arithmetic, no loss scaling, no FP32 master weights. Every value is a numpy float16;
    each elementwise numpy float16 operation is correctly rounded to FP16 (numpy evaluates it in float32 and
    rounds once, which for +, -, *, / equals the correctly rounded FP16 result since 24 >= 2*11 + 2).
    numpy's own float16 matmul and reductions accumulate in float32, so they are NOT used: every matmul and
    every sum is an explicit sequential loop ``acc = fp16(acc + fp16(a_k * b_k))`` in index order, starting
    from +0 (non-fused, FP16 accumulator). Softmax/log-softmax, the loss and the update ``w - lr * dw`` are
    FP16 operations too.
``flex16+5``
    Every GEMM of the forward pass, the backward pass and the weight-gradient/bias-gradient computations runs
    through :func:`tensorforge.golden.flex.flex_gemm` (exact integer accumulation, shift, RNE, saturation)
    with output exponents from an Autoflex :class:`~tensorforge.golden.autoflex.ExponentManager`; bias adds
    and the weight updates ``w <- w - lr * dw`` are :func:`~tensorforge.golden.flex.flex_add` (the
    power-of-two learning rate is applied as an exponent offset, exactly). Weights and biases live only as
    flex16+5 tensors (no float master copy), as in the paper. ReLU and its derivative act on the integer
    mantissas (exact). Host-side float work is limited to: converting each input batch to flex, and the
    softmax/cross-entropy at the output, computed in float64 from the flex logits with the gradient
    ``(softmax - onehot) / B`` converted back to flex (exponent from its max |x|, RNE).
``dfp16`` (optional, ``include_dfp16=True``)
    The same integer pipeline with the DFP-16 recipe (:class:`~tensorforge.golden.dfp16.DFP16Manager`):
    exponents derived from each output's maximum instead of predicted.

Settings (all backends): inputs = pixels / 16; stratified 80/20 train/test split (``random_state=seed``);
minibatches of ``batch_size`` (32) in a fresh permutation each epoch from ``numpy.random.default_rng(seed +
1)``, the incomplete last batch dropped (so B is always a power of two); W1 ~ N(0, 2/64) (He), W2 ~
N(0, 2/(64+10)) (Glorot), zero biases, drawn once in float64 from ``default_rng(seed)`` and rounded to each
format; plain SGD with ``learning_rate`` (must be a power of two, default 1/8); softmax cross-entropy.

Returns a JSON-serializable dict (see :func:`run`) and writes ``flexpoint_loss.png`` (training loss and test
accuracy per epoch) and ``flexpoint_exponents.png`` (Autoflex exponent trajectories) into ``out_dir``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tensorforge.golden.autoflex import ExponentManager
from tensorforge.golden.dfp16 import DFP16Manager
from tensorforge.golden.flex import FlexTensor, flex_from_float
from tensorforge.golden.formats import FLEX16_5

__all__ = ["run", "summary", "load_data", "TRAJECTORY_TENSORS"]

#: Tensors whose exponent trajectories are plotted.
TRAJECTORY_TENSORS = ("W1", "W2", "l1.z", "da1", "dW1", "dW2")


# ---------------------------------------------------------------------------------------------------------
# data and initialization
# ---------------------------------------------------------------------------------------------------------
def load_data(seed: int, test_fraction: float = 0.2):
    """Digits (no download): ``(x_train, y_train, x_test, y_test)``, pixels scaled to [0, 1] (float64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


def _init_params(seed, n_in, n_hidden, n_out):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_in, n_hidden))
    w2 = rng.normal(0.0, math.sqrt(2.0 / (n_hidden + n_out)), size=(n_hidden, n_out))
    return {"W1": w1, "b1": np.zeros(n_hidden), "W2": w2, "b2": np.zeros(n_out)}


def _log_softmax64(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# ---------------------------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------------------------
class _Fp32:
    name = "fp32"

    def __init__(self, params, lr):
        self.p = {k: v.astype(np.float32) for k, v in params.items()}
        self.lr = np.float32(lr)
        self.lost = [0, 0]
        self.grad_census = [0, 0, 0]   # nonzero gradient entries; below FP16's zero threshold; FP16-subnormal

    def _census(self, g):
        a = np.abs(g[g != 0]).astype(np.float64)
        self.grad_census[0] += a.size
        self.grad_census[1] += int(np.count_nonzero(a <= 2.0 ** -25))   # rounds to 0 in FP16 (RNE)
        self.grad_census[2] += int(np.count_nonzero(a < 2.0 ** -14))    # FP16 subnormal (or zero)

    def _forward(self, x):
        z1 = x @ self.p["W1"] + self.p["b1"]
        a1 = np.maximum(z1, np.float32(0))
        z2 = a1 @ self.p["W2"] + self.p["b2"]
        return z1, a1, z2

    def logits(self, x):
        return self._forward(x.astype(np.float32))[2].astype(np.float64)

    def step(self, x, onehot):
        x = x.astype(np.float32)
        b = x.shape[0]
        z1, a1, z2 = self._forward(x)
        zs = z2 - z2.max(axis=1, keepdims=True)
        e = np.exp(zs)
        s = e.sum(axis=1, keepdims=True)
        logp = zs - np.log(s)
        loss = float(-(logp * onehot.astype(np.float32)).sum() / np.float32(b))
        dz2 = (e / s - onehot.astype(np.float32)) / np.float32(b)
        grads = {"W2": a1.T @ dz2, "b2": dz2.sum(axis=0)}
        dz1 = (dz2 @ self.p["W2"].T) * (z1 > 0)
        grads["W1"] = x.T @ dz1
        grads["b1"] = dz1.sum(axis=0)
        for g in (dz2, dz1, grads["W1"], grads["W2"]):
            self._census(g)
        for k, g in grads.items():
            upd = self.lr * g
            new = self.p[k] - upd
            self.lost[0] += int(np.count_nonzero((upd != 0) & (new == self.p[k])))
            self.lost[1] += int(np.count_nonzero(upd != 0))
            self.p[k] = new
        return loss


def _f16_matmul(a, b):
    """a (M, K) @ b (K, N) with an FP16 accumulator: acc = fp16(acc + fp16(a_k * b_k)) in k order."""
    acc = np.zeros((a.shape[0], b.shape[1]), dtype=np.float16)
    for k in range(a.shape[1]):
        acc = acc + a[:, k:k + 1] * b[k:k + 1, :]
    return acc


def _f16_sum(x, axis):
    """Sequential FP16 sum along ``axis`` (keepdims)."""
    x = np.moveaxis(x, axis, 0)
    acc = np.zeros(x.shape[1:], dtype=np.float16)
    for row in x:
        acc = acc + row
    return np.expand_dims(acc, axis)


class _Fp16:
    name = "fp16"

    def __init__(self, params, lr):
        self.p = {k: v.astype(np.float16) for k, v in params.items()}
        self.lr = np.float16(lr)
        self.lost = [0, 0]

    def _forward(self, x):
        z1 = _f16_matmul(x, self.p["W1"]) + self.p["b1"]
        a1 = np.maximum(z1, np.float16(0))
        z2 = _f16_matmul(a1, self.p["W2"]) + self.p["b2"]
        return z1, a1, z2

    def logits(self, x):
        return self._forward(x.astype(np.float16))[2].astype(np.float64)

    def step(self, x, onehot):
        x = x.astype(np.float16)
        oh = onehot.astype(np.float16)
        b = np.float16(x.shape[0])
        z1, a1, z2 = self._forward(x)
        zs = z2 - z2.max(axis=1, keepdims=True)
        e = np.exp(zs)
        s = _f16_sum(e, 1)
        logp = zs - np.log(s)
        loss = float(-_f16_sum(_f16_sum(logp * oh, 1), 0)[0, 0] / b)
        dz2 = (e / s - oh) / b
        grads = {"W2": _f16_matmul(a1.T, dz2), "b2": _f16_sum(dz2, 0)[0]}
        dz1 = _f16_matmul(dz2, self.p["W2"].T) * (z1 > 0).astype(np.float16)
        grads["W1"] = _f16_matmul(x.T, dz1)
        grads["b1"] = _f16_sum(dz1, 0)[0]
        for k, g in grads.items():
            upd = self.lr * g
            new = self.p[k] - upd
            self.lost[0] += int(np.count_nonzero((upd != 0) & (new == self.p[k])))
            self.lost[1] += int(np.count_nonzero(upd != 0))
            self.p[k] = new
        return loss


class _Flex:
    """The integer pipeline; ``manager`` is an ExponentManager (Autoflex) or a DFP16Manager."""

    def __init__(self, name, params, lr, manager):
        self.name = name
        self.m = manager
        fmt = manager.fmt
        self.fmt = fmt
        self.p = {k: flex_from_float(v, fmt).tensor for k, v in params.items()}
        self.lr_log2 = int(round(math.log2(lr)))
        self.lost = [0, 0]
        self._ones = {}

    def ones(self, n):
        if n not in self._ones:
            self._ones[n] = FlexTensor(np.ones(n, dtype=np.int64), 0, self.fmt)
        return self._ones[n]

    def _forward(self, x, prefix):
        m, p = self.m, self.p
        z1 = m.add(prefix + "l1.z", m.gemm(prefix + "l1.xw", x, p["W1"]), p["b1"])
        a1 = z1.with_man(np.maximum(z1.man, 0))
        z2 = m.add(prefix + "l2.z", m.gemm(prefix + "l2.xw", a1, p["W2"]), p["b2"])
        return z1, a1, z2

    def logits(self, x):
        xf = self.m.convert("eval.x", x)
        return self._forward(xf, "eval.")[2].to_float()

    def step(self, x, onehot):
        m, p = self.m, self.p
        b = x.shape[0]
        xf = m.convert("x", x)
        z1, a1, z2 = self._forward(xf, "")
        logp = _log_softmax64(z2.to_float())
        loss = float(-(logp * onehot).sum() / b)
        dz2 = m.convert("dz2", (np.exp(logp) - onehot) / b)
        grads = {"W2": m.gemm("dW2", a1.T, dz2), "b2": m.gemm("db2", self.ones(b), dz2)}
        da1 = m.gemm("da1", dz2, p["W2"].T)
        dz1 = da1.with_man(np.where(z1.man > 0, da1.man, 0))
        grads["W1"] = m.gemm("dW1", xf.T, dz1)
        grads["b1"] = m.gemm("db1", self.ones(b), dz1)
        for k, g in grads.items():
            old = p[k]
            new = m.add(k, old, g, subtract=True, b_exp_offset=self.lr_log2)
            nz = g.man != 0
            self.lost[0] += int(np.count_nonzero(nz & (new.to_float() == old.to_float())))
            self.lost[1] += int(np.count_nonzero(nz))
            p[k] = new
        return loss


# ---------------------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------------------
def _accuracy(backend, x, y):
    return float(np.mean(np.argmax(backend.logits(x), axis=1) == y))


def run(epochs: int = 60, seed: int = 0, out_dir=None, *, batch_size: int = 32, learning_rate: float = 0.125,
        hidden: int = 64, test_fraction: float = 0.2, include_dfp16: bool = False, plots: bool = True,
        progress: bool = False) -> dict:
    """Train the MLP in FP32, FP16 and flex16+5 (Autoflex) and report.

    Parameters
    ----------
    epochs : int
        Passes over the training set (>= 1).
    seed : int
        Seeds the split, the initial weights and the batch order (>= 0).
    out_dir : str, Path or None
        Where the PNGs go (created if missing); None writes no files.
    batch_size : int
        A power of two between 1 and 1024 (so ``1/B`` is exact in every format).
    learning_rate : float
        A power of two (the flex update applies it as an exponent offset).
    hidden, test_fraction, include_dfp16, plots, progress
        Hidden width; test split fraction; also train the DFP-16 variant; write PNGs; show a tqdm bar.

    Returns
    -------
    dict with ``accuracy`` and ``final_loss`` (per variant: final test accuracy, mean training loss of the
    last epoch), ``loss_curves`` and ``accuracy_curves`` (per epoch), ``lost_update_fraction`` (nonzero
    updates ``lr * dw`` that left the stored weight unchanged), ``fp32_gradients_vs_fp16_range`` (census of
    the FP32 run's nonzero gradient entries dz2, dz1, dW1, dW2: the fractions that FP16 would round to zero
    (|g| <= 2**-25) or hold as subnormals (|g| < 2**-14)), ``flex`` (Autoflex overflow and exponent-clamp
    counts per tensor, final exponents), ``settings`` and ``plots`` (written file names).
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, not {epochs!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 1024 \
            or batch_size & (batch_size - 1):
        raise ValueError(f"batch_size must be a power of two between 1 and 1024, not {batch_size!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0 \
            or math.frexp(learning_rate)[0] != 0.5:
        raise ValueError(f"learning_rate must be a power of two (the flex update scales by exponent "
                         f"arithmetic), not {learning_rate!r}")
    if not isinstance(hidden, int) or isinstance(hidden, bool) or not 1 <= hidden <= 4096:
        raise ValueError(f"hidden must be an integer between 1 and 4096, not {hidden!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, float) or not 0.05 <= test_fraction <= 0.5:
        raise ValueError(f"test_fraction must be a float between 0.05 and 0.5, not {test_fraction!r}")

    x_tr, y_tr, x_te, y_te = load_data(seed, test_fraction)
    n_out = 10
    params = _init_params(seed, x_tr.shape[1], hidden, n_out)
    managers = {"flex16+5": ExponentManager(FLEX16_5)}
    backends = [_Fp32(params, learning_rate), _Fp16(params, learning_rate),
                _Flex("flex16+5", params, learning_rate, managers["flex16+5"])]
    if include_dfp16:
        managers["dfp16"] = DFP16Manager()
        backends.append(_Flex("dfp16", params, learning_rate, managers["dfp16"]))
    names = [bk.name for bk in backends]
    n_batches = x_tr.shape[0] // batch_size
    onehot = np.eye(n_out)[y_tr]

    loss_curves = {n: [] for n in names}
    acc_curves = {n: [] for n in names}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs * len(backends), desc="flexpoint", unit="epoch")
    for bk in backends:
        order_rng = np.random.default_rng(seed + 1)      # the same batch order for every variant
        for _ in range(epochs):
            perm = order_rng.permutation(x_tr.shape[0])
            losses = []
            for i in range(n_batches):
                idx = perm[i * batch_size:(i + 1) * batch_size]
                losses.append(bk.step(x_tr[idx], onehot[idx]))
            loss_curves[bk.name].append(float(np.mean(losses)))
            acc_curves[bk.name].append(_accuracy(bk, x_te, y_te))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()

    flex_stats = {}
    for n, m in managers.items():
        train_names = [t for t in m.names if not t.startswith("eval.")]
        flex_stats[n] = {
            "manager": m.settings(),
            "overflows": {t: m.overflow_count(t) for t in train_names},
            "exponent_clamps": {t: m.clamp_count(t) for t in train_names},
            "final_exponents": {t: m.trajectory(t)[-1] for t in train_names if m.trajectory(t)},
        }

    result = {
        "experiment": "flexpoint",
        "accuracy": {n: acc_curves[n][-1] for n in names},
        "final_loss": {n: loss_curves[n][-1] for n in names},
        "loss_curves": loss_curves,
        "accuracy_curves": acc_curves,
        "lost_update_fraction": {bk.name: (bk.lost[0] / bk.lost[1] if bk.lost[1] else 0.0) for bk in backends},
        "fp32_gradients_vs_fp16_range": {
            "entries": backends[0].grad_census[0],
            "underflow_to_zero_fraction": backends[0].grad_census[1] / max(backends[0].grad_census[0], 1),
            "subnormal_fraction": backends[0].grad_census[2] / max(backends[0].grad_census[0], 1),
        },
        "flex": flex_stats,
        "settings": {
            "epochs": epochs, "seed": seed, "batch_size": batch_size, "learning_rate": learning_rate,
            "optimizer": "sgd", "loss": "softmax cross-entropy", "network": f"64-{hidden}-{n_out} ReLU MLP",
            "init": "W1 He normal, W2 Glorot normal, zero biases (float64, rounded per format)",
            "dataset": "sklearn digits, pixels/16, stratified split", "train_samples": int(x_tr.shape[0]),
            "test_samples": int(x_te.shape[0]), "batches_per_epoch": n_batches, "variants": names,
            "fp16": "float16 storage and arithmetic, sequential FP16 accumulation, no loss scaling, "
                    "no master weights",
            "flex": "flex16+5 integer GEMMs/adds (RNE, saturation), Autoflex exponents, weights as flex "
                    "tensors; softmax/cross-entropy on the host in float64",
        },
        "plots": [],
    }
    if out_dir is not None and plots:
        result["plots"] = _plots(Path(out_dir), result, managers, n_batches)
    return result


def summary(result: dict) -> str:
    """Human-readable report of a :func:`run` result: a table and a verdict derived from the numbers."""
    acc, loss, lost = result["accuracy"], result["final_loss"], result["lost_update_fraction"]
    s = result["settings"]
    lines = [f"flexpoint experiment: {s['network']} on digits, {s['epochs']} epochs, batch {s['batch_size']}, "
             f"lr {s['learning_rate']}, seed {s['seed']}",
             f"{'variant':<10} {'test acc':>9} {'vs fp32':>8} {'final loss':>11} {'lost updates':>13}"]
    for n in acc:
        lines.append(f"{n:<10} {acc[n] * 100:8.2f}% {(acc[n] - acc['fp32']) * 100:+7.2f}  {loss[n]:11.5f} "
                     f"{lost[n] * 100:12.2f}%")
    n_test = s["test_samples"]
    for n in acc:
        if n == "fp32":
            continue
        d = round((acc[n] - acc["fp32"]) * n_test)
        verdict = "matches FP32" if d == 0 else f"differs from FP32 by {d:+d} of {n_test} test digits"
        lines.append(f"{n}: {verdict} (final loss {loss[n] / loss['fp32'] - 1:+.1%} relative to FP32).")
    lines.append("lost updates = nonzero lr*dw that left the stored weight unchanged (rounded away).")
    g = result["fp32_gradients_vs_fp16_range"]
    lines.append(f"FP32 gradient entries FP16 would flush to zero: {g['underflow_to_zero_fraction']:.2%}, "
                 f"hold as subnormals: {g['subnormal_fraction']:.2%} (of {g['entries']}).")
    if result["plots"]:
        lines.append("plots: " + ", ".join(result["plots"]))
    return "\n".join(lines)


def _plots(out_dir: Path, result, managers, n_batches):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for n, curve in result["loss_curves"].items():
        ep = np.arange(1, len(curve) + 1)
        ax1.plot(ep, curve, marker=".", label=f"{n}")
        ax2.plot(ep, np.array(result["accuracy_curves"][n]) * 100, marker=".", label=f"{n}")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("mean training loss"), ax1.set_yscale("log")
    ax1.set_title("training loss (digits, 64-64-10 MLP)"), ax1.legend()
    ax2.set_xlabel("epoch"), ax2.set_ylabel("test accuracy (%)"), ax2.set_title("test accuracy"), ax2.legend()
    fig.tight_layout()
    path = out_dir / "flexpoint_loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path.name)

    m = managers["flex16+5"]
    fmt = m.fmt
    fig, ax = plt.subplots(figsize=(9, 4.8))
    styles = ["-", "--", "-.", ":", "-", "--"]
    lo, hi = fmt.exp_max, fmt.exp_min
    for t, ls in zip(TRAJECTORY_TENSORS, styles):
        traj = m.trajectory(t)
        if traj:
            lo, hi = min(lo, min(traj)), max(hi, max(traj))
            label = f"{t} (clamped {m.clamp_count(t)}x, overflows {m.overflow_count(t)})"
            ax.step(np.arange(len(traj)) / n_batches, traj, where="post", ls=ls, lw=1.6, label=label)
    ax.axhline(fmt.exp_min, color="grey", lw=0.8, ls=":")
    ax.text(0, fmt.exp_min - 0.45, f"lowest {fmt} exponent ({fmt.exp_min})", fontsize=8, color="grey")
    ax.set_ylim(min(lo, fmt.exp_min) - 1, max(hi, fmt.exp_min) + 1.5)
    ax.set_xlabel("epoch"), ax.set_ylabel("shared exponent κ (value = mantissa · 2**κ)")
    ax.set_title(f"Autoflex exponent trajectories ({fmt}, one step per training iteration)")
    ax.legend(ncol=2, fontsize=8, loc="upper right")
    fig.tight_layout()
    path = out_dir / "flexpoint_exponents.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path.name)
    return written
