"""The flexpoint training experiment, CI-sized (2 epochs): structure, plots, and flex16+5 tracking FP32.

Measured on this configuration (seed 0, 2 epochs, batch 32, lr 1/8, 360 test digits): test accuracy 0.8917
for all three variants (FP32, FP16, flex16+5); mean training loss of epoch 2: FP32 0.71019, FP16 0.70942,
flex16+5 0.71009.
The tolerances below (2 points of accuracy, 2 % of loss) are what "tracks FP32" means here; a broken flex
path (wrong shift direction, no rounding, a stuck exponent) misses them by far.
"""

import json
import math

import pytest

from tensorforge.gen.experiments.flexpoint import TRAJECTORY_TENSORS, run, summary


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flexpoint")
    return out, run(epochs=2, seed=0, out_dir=out)


def test_result_structure_and_json(small_run):
    out, r = small_run
    variants = ["fp32", "fp16", "flex16+5"]
    assert r["experiment"] == "flexpoint"
    assert list(r["accuracy"]) == variants and list(r["final_loss"]) == variants
    assert all(len(r["loss_curves"][v]) == 2 and len(r["accuracy_curves"][v]) == 2 for v in variants)
    assert r["settings"]["epochs"] == 2 and r["settings"]["seed"] == 0
    assert r["settings"]["batch_size"] == 32 and r["settings"]["learning_rate"] == 0.125
    assert r["settings"]["train_samples"] + r["settings"]["test_samples"] == 1797
    assert r["flex"]["flex16+5"]["manager"]["history_len"] == 16
    assert set(TRAJECTORY_TENSORS) <= set(r["flex"]["flex16+5"]["final_exponents"])
    json.loads(json.dumps(r))                               # JSON-serializable as is
    g = r["fp32_gradients_vs_fp16_range"]
    assert g["entries"] > 0 and 0 <= g["underflow_to_zero_fraction"] <= g["subnormal_fraction"] <= 1
    assert all(0 <= r["lost_update_fraction"][v] <= 1 for v in variants)
    text = summary(r)
    for v in variants:
        assert f"{r['accuracy'][v] * 100:.2f}%" in text
    assert "flex16+5: matches FP32" in text or "flex16+5: differs from FP32" in text


def test_plots_are_written(small_run):
    out, r = small_run
    assert r["plots"] == ["flexpoint_loss.png", "flexpoint_exponents.png"]
    for name in r["plots"]:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_training_learns_and_flex_tracks_fp32(small_run):
    _, r = small_run
    acc, loss = r["accuracy"], r["final_loss"]
    assert acc["fp32"] > 0.85                               # it learns at all (chance is 0.10)
    assert r["loss_curves"]["fp32"][1] < r["loss_curves"]["fp32"][0]
    assert abs(acc["flex16+5"] - acc["fp32"]) <= 0.02
    assert math.isclose(loss["flex16+5"], loss["fp32"], rel_tol=0.02)
    for v in ("fp16", "flex16+5"):
        assert all(math.isfinite(x) for x in r["loss_curves"][v])


def test_flex_exponents_are_managed(small_run):
    _, r = small_run
    fx = r["flex"]["flex16+5"]
    # the weight exponents are chosen by Autoflex and stay inside flex16+5's range
    assert all(-16 <= e <= 15 for e in fx["final_exponents"].values())
    # inputs are pixels / 16 in [0, 1]: conversion puts max |x| = 1.0 at exponent 0 - 14
    assert fx["final_exponents"]["x"] == -14


def test_deterministic_and_no_files_without_out_dir():
    a = run(epochs=1, seed=3, out_dir=None)
    b = run(epochs=1, seed=3, out_dir=None)
    assert a == b and a["plots"] == []


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be a positive integer, not 0"),
    ({"seed": -1}, "seed must be a non-negative integer, not -1"),
    ({"batch_size": 30}, "batch_size must be a power of two between 1 and 1024, not 30"),
    ({"learning_rate": 0.1}, "learning_rate must be a power of two .* not 0.1"),
])
def test_parameter_errors(kwargs, message):
    args = {"epochs": 1, "seed": 0, "out_dir": None} | kwargs
    with pytest.raises(ValueError, match=message):
        run(**args)
