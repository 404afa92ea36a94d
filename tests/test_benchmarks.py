"""The papers' protocols: PacGAN's toy metrics on hand-built samples, Stacked MNIST's modes, the published
tables beside ours, and samples.npz beside every number."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_MNIST, needs_mnist, run_main
from gan_jax import data
from gan_jax.data import toy
from gan_jax.metrics import toy as ev
from gan_jax.tasks import benchmarks

N = 2500


@pytest.mark.parametrize("name, modes, std", [("pacgan_ring", 8, 0.01), ("pacgan_grid", 25, 0.05),
                                              ("veegan_ring", 8, 0.02), ("veegan_grid", 25, 0.02)])
def test_protocol_data_and_the_real_distribution(name, modes, std):
    """Real samples capture every mode, and their high-quality share is a 2-D Gaussian's mass within 3 std,
    1 - exp(-4.5) = 98.89%, within 4 binomial standard errors: sqrt(p (1 - p) / 2500) = 0.0021."""
    ds = data.get_dataset(name)
    assert ds.modes.shape == (modes, 2) and ds.mode_std == std
    m = ev.mode_metrics(ds.sample(jax.random.key(3), N), ds.modes, ds.mode_std)
    p = 1 - np.exp(-4.5)
    assert float(m["modes_captured"]) == modes == float(m["modes_covered"])
    assert float(m["high_quality"]) == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / N))
    assert float(m["mode_reverse_kl"]) < 0.02


def test_pacgan_ring_and_grid_are_the_papers():
    ring, grid = data.get_dataset("pacgan_ring"), data.get_dataset("pacgan_grid")
    angles = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(ring.modes, np.stack([np.cos(angles), np.sin(angles)], 1), atol=1e-6)
    assert sorted({tuple(m) for m in grid.modes.tolist()}) == [(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]


def test_mode_metrics_on_hand_built_samples():
    ds = data.get_dataset("pacgan_grid")
    modes, std = ds.modes, ds.mode_std
    one_mode = np.repeat(modes[:1], N, axis=0)
    m = ev.mode_metrics(one_mode, modes, std)
    assert (float(m["modes_captured"]), float(m["high_quality"])) == (1, 1.0)
    assert float(m["mode_reverse_kl"]) == pytest.approx(np.log(25), rel=1e-6)  # everything on one mode
    each_once = np.concatenate([modes, np.full((N - 25, 2), 100.0, np.float32)])  # one per mode, the rest far
    m = ev.mode_metrics(each_once, modes, std)
    assert float(m["modes_captured"]) == 25 and float(m["modes_covered"]) == 0  # captured by 1, covered needs 20
    assert float(m["high_quality"]) == pytest.approx(25 / N) and float(m["mode_reverse_kl"]) == pytest.approx(0, abs=1e-6)
    near, far = modes[3] + [2.9 * std, 0], modes[7] + [0, 3.1 * std]  # 2.9 std is high quality, 3.1 is not
    m = ev.mode_metrics(np.stack([near, far] * (N // 2)), modes, std)
    assert float(m["modes_captured"]) == 1 and float(m["high_quality"]) == pytest.approx(0.5)


def test_published_rows_and_our_statistics():
    ring = benchmarks.get("pacgan_ring")
    assert ring.published["PacGAN3"]["high_quality"] == (0.977, 0.003)  # Table 1: 97.7 +- 0.3 %
    assert benchmarks.get("pacgan_grid").published["PacGAN4"]["modes_captured"] == (24.8, 0.2)
    assert benchmarks.get("stacked_mnist").published["PacDCGAN2"]["mode_kl"] == (0.06, 0.003)
    stats = benchmarks.mean_se_ci([7, 8, 8, 8])
    assert stats["mean"] == 7.75 and stats["se"] == pytest.approx(0.25) and stats["ci95"] == pytest.approx(0.25 * 3.182, rel=1e-3)
    text = benchmarks.table(ring, {c: stats for c in ring.metrics}, "ours")
    assert "| PacGAN2 | 7.9 +- 0.1 | 0.956 +- 0.02 | 0.07 +- 0.03 |" in text and "**7.75 +- 0.25**" in text


def test_benchmark_suite_prints_our_row_beside_the_papers_and_writes_samples(tmp_path):
    out = tmp_path / "run"
    proc = run_main("experiments.benchmark_suite", "--benchmark", "pacgan_ring", "--recipe", "ring8", "--seeds", "2",
                    "--steps", "200", "--snapshot-every", "200", "--out", out, "--no-progress", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    assert "| PacGAN3 | 7.8 +- 0.1 | 0.977 +- 0.003 | 0.1 +- 0.02 |" in proc.stdout
    assert "| gan_jax ring8, 2 seeds x 200 steps |" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    protocol = summary["benchmark"]["protocol"]
    assert protocol["dataset"] == "pacgan_ring" and protocol["provenance"]["mode_std"] == 0.01
    assert summary["benchmark"]["ours"]["modes_captured"]["n"] == 2
    with np.load(out / "samples.npz") as f:  # the raw samples behind every number, in the data's units
        assert f["samples"].shape == (2, 2500, 2) and f["samples"].dtype == np.float32
        assert list(f["seed"]) == [0, 1] and list(f["member"]) == [0, 1]
        recomputed = ev.mode_metrics(f["samples"][1], toy.PACGAN_RING_MODES, toy.PACGAN_RING_STD)
    assert float(recomputed["high_quality"]) == pytest.approx(summary["members"][1]["eval_high_quality"], abs=1e-6)


@needs_mnist
def test_stacked_mnist_modes_of_real_and_collapsed_samples():
    from gan_jax.data import mnist
    from gan_jax.metrics import mnist as mnist_eval
    from gan_jax.metrics import stacked_mnist as sm

    images = mnist.load("mnist", "test", SHARED_MNIST)
    params = mnist_eval.load_classifier()
    real = sm.real_reference(params, images.images, 26_000)
    assert real["modes"] >= 995 and real["mode_kl"] < 0.05  # multinomial noise alone: ~0.019
    assert real["digit_kl"] < 0.02 and real["unsure"] < 0.03  # MNIST's digit shares are 8.9% to 11.4%
    sampler = mnist.stacked_sampler(images.images, "sigmoid", images.labels)
    x, truth = sampler(jax.random.key(0), 2000)
    read = jax.jit(lambda s: sm.readings(params, s)[0])(x)
    assert np.mean(np.asarray(read) == np.asarray(truth)) > 0.95  # three 99%-accurate readings per sample
    one = np.repeat(np.asarray(x[:1]), 500, axis=0)
    m = jax.jit(sm.metrics_fn(params))(one)
    assert float(m["modes"]) == 1 and float(m["mode_kl"]) == pytest.approx(np.log(1000), rel=1e-6)
    assert float(m["digit_kl"]) == pytest.approx(3 * np.log(10), rel=1e-6)


def test_stacked_mnist_digit_kl_against_hand_values():
    from gan_jax.metrics import stacked_mnist as sm

    every = sm.mode_metrics(jnp.arange(1000))  # each mode once: uniform modes and digits
    assert float(every["modes"]) == 1000 and abs(float(every["mode_kl"])) < 1e-5 and abs(float(every["digit_kl"])) < 1e-5
    # first digit always 0, the others uniform: modes 0-99, each once; digit KL log 10 from the first channel
    first_zero = sm.mode_metrics(jnp.arange(100))
    assert float(first_zero["digit_kl"]) == pytest.approx(np.log(10), rel=1e-5)
    assert float(first_zero["mode_kl"]) == pytest.approx(np.log(10), rel=1e-5)
    # channels dependent: (d, d, d) for every d: each channel uniform, but only 10 modes
    diagonal = sm.mode_metrics(jnp.arange(10) * 111)
    assert abs(float(diagonal["digit_kl"])) < 1e-5 and float(diagonal["mode_kl"]) == pytest.approx(np.log(100), rel=1e-5)
