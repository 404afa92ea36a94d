"""The MNIST presets (R2, R3, R4, DCGAN, cGAN): sizes, vmapped == single runs, learning on real MNIST, CLI errors."""
import json

import jax
import numpy as np
import pytest

from conftest import SHARED_MNIST, needs_mnist, run_main, trained
from gan_jax import presets
from gan_jax.components.optim import default_hparams
from gan_jax.core.gan import GAN
from gan_jax.data import mnist
from gan_jax.errors import ConfigError
from gan_jax.engine.sweep import member_keys, stack_hparams, Sweep


def n_params(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def preset_gan(name, images, labels=None, **changes):
    cfg = presets.get(name).config.replace(**changes)
    scale = "sigmoid" if cfg.generator.output_activation == "sigmoid" else "tanh"
    return GAN.from_config(cfg, mnist.image_sampler(images, scale, labels), data_dim=784)


def synthetic_images(n=256):
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28)).astype(np.uint8)


def synthetic_labels(n=256):
    return np.random.default_rng(1).integers(0, 10, n).astype(np.uint8)


def test_r2_and_r4_parameter_counts():
    r2 = jax.eval_shape(preset_gan("r2", synthetic_images()).init, jax.random.key(0))  # shapes only
    # G 100-128-128-784, D 784-128-128-1: weights + biases by hand
    assert n_params(r2.g_params) == (100 * 128 + 128) + (128 * 128 + 128) + (128 * 784 + 784) == 130_576
    assert n_params(r2.d_params) == (784 * 128 + 128) + (128 * 128 + 128) + (128 + 1) == 117_121
    r4 = jax.eval_shape(preset_gan("r4", synthetic_images()).init, jax.random.key(0))
    assert n_params(r4.g_params) == 114_064 and n_params(r4.d_params) == 100_609


@pytest.mark.slow  # a duplicate: R2 is test_train's MLP (vmapped == single for RMSProp and Adam) at other widths
def test_r2_vmapped_members_equal_single_runs():
    gan = preset_gan("r2", synthetic_images(), log_every=10)
    hps = [default_hparams("adam", lr) for lr in (1e-3, 2e-4)]
    sweep = Sweep(gan, 2)
    hp = stack_hparams(hps)
    state = jax.device_get(sweep.run(sweep.init(member_keys([3, 4])), hp, 20)[0])  # host copy: see test_train
    for i, (seed, single_hp) in enumerate(zip([3, 4], hps)):
        single = jax.jit(gan.init)(jax.random.key(seed))
        single, _ = jax.jit(gan.run, static_argnums=2)(single, single_hp.as_arrays(), 20)
        for a, b in zip(jax.tree.leaves(state.g_params), jax.tree.leaves(single.g_params)):
            np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_dcgan_parameter_counts():
    state = jax.eval_shape(preset_gan("dcgan", synthetic_images()).init, jax.random.key(0))
    # G: dense 100 -> 7*7*64 (no bias), BN(64) scale+shift, convT 4x4 64->32 (no bias), BN(32), convT 4x4 32->1 + bias
    assert n_params(state.g_params) == 100 * 7 * 7 * 64 + 2 * 64 + 16 * 64 * 32 + 2 * 32 + 16 * 32 + 1 == 347_073
    assert n_params(state.g_stats) == 2 * 64 + 2 * 32  # running mean and variance per channel, per member
    # D: conv 4x4 1->32 + bias, conv 4x4 32->64 + bias, dense 7*7*64 -> 1
    assert n_params(state.d_params) == (16 * 32 + 32) + (16 * 32 * 64 + 64) + (7 * 7 * 64 + 1) == 36_513


# SGD with momentum, not the presets' Adam: Adam's update g / (|g| + eps) turns float32 rounding in
# near-zero gradients (common behind batch norm and relu) into lr-sized differences within 2 steps, which
# would hide a real mismatch; SGD's updates are proportional to the gradients.
@pytest.mark.slow  # about 40 s of DCGAN compiles; vmapped == single for r2 and for spectral norm's D state stay in the default suite
@pytest.mark.parametrize("preset", ["dcgan", "cdcgan"])
def test_dcgan_vmapped_members_equal_single_runs_batch_norm_included(preset, optimizer="sgd", steps=10):
    labels = synthetic_labels() if preset == "cdcgan" else None
    gan = preset_gan(preset, synthetic_images(), labels, optimizer=optimizer, log_every=1)
    hps = [default_hparams(optimizer, lr, beta1=0.5) for lr in (2e-4, 1e-3)]
    sweep = Sweep(gan, 2)
    hp = stack_hparams(hps)
    state = jax.device_get(sweep.run(sweep.init(member_keys([3, 4])), hp, steps)[0])  # host copy: see test_train
    for i, (seed, single_hp) in enumerate(zip([3, 4], hps)):
        single = jax.jit(gan.init)(jax.random.key(seed))
        single, _ = jax.jit(gan.run, static_argnums=2)(single, single_hp.as_arrays(), steps)
        mine = jax.tree.map(lambda a: a[i], (state.g_params, state.g_stats, state.d_params))
        theirs = (single.g_params, single.g_stats, single.d_params)
        assert jax.tree.structure(mine) == jax.tree.structure(theirs)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # the running averages moved away from their initial values, differently per member
    stats = state.g_stats["batch_stats"]["BatchNorm_0"]["mean"]
    assert np.abs(stats).max() > 1e-4 and not np.allclose(stats[0], stats[1])


def test_conditional_gan_needs_a_labelled_sampler():
    with pytest.raises(ConfigError, match="needs \\(x, labels\\) with int labels"):  # refused when built
        preset_gan("cgan", synthetic_images())  # no labels given to the sampler


def test_r3_is_r2_with_label_smoothing_and_dropout():
    r2, r3 = presets.get("r2"), presets.get("r3")
    assert r3.config.discriminator.dropout == 0.3 and r3.hparams == r2.hparams.replace(real_label=0.9)
    assert r3.config.replace(discriminator=r2.config.discriminator) == r2.config


def mean_image_error(images01: np.ndarray, real01: np.ndarray) -> float:
    """RMS over pixels of the difference between the mean generated and the mean real image."""
    return float(np.sqrt(np.mean((images01.mean(0) - real01.mean(0)) ** 2)))


def nearest_real_distance(images01: np.ndarray, real01: np.ndarray) -> float:
    """Mean over generated images of the RMS pixel distance to the nearest real image."""
    sq = (images01 ** 2).sum(1)[:, None] + (real01 ** 2).sum(1)[None] - 2 * images01 @ real01.T  # |a - b|^2
    return float(np.sqrt(np.maximum(sq, 0) / images01.shape[1]).min(1).mean())


@needs_mnist
def test_r2_moves_from_noise_toward_real_digits():
    images = mnist.load("mnist", "test", SHARED_MNIST).images
    gan = preset_gan("r2", images)
    hp = default_hparams("adam").as_arrays()
    state = jax.jit(gan.init)(jax.random.key(0))
    z = gan.sample_noise(jax.random.key(1), 500)
    real01 = images[:1000].reshape(-1, 784) / 255.0

    def measure(g_params):
        fake01 = (np.asarray(gan.generate(g_params, z)) + 1) / 2
        return mean_image_error(fake01, real01), nearest_real_distance(fake01[:200], real01)

    mean_before, nn_before = measure(state.g_params)
    state, _ = trained(gan, state, hp, 1000)
    mean_after, nn_after = measure(state.g_params)
    # untrained: a mid-grey haze (measured 0.41 and 0.47); after 1,000 steps 0.15 and 0.26
    assert mean_before > 0.3 and nn_before > 0.4, (mean_before, nn_before)
    assert mean_after < 0.5 * mean_before, (mean_before, mean_after)
    assert nn_after < 0.75 * nn_before, (nn_before, nn_after)


@pytest.mark.slow  # trains cgan long enough to read its digits (about 30 s); the README's cgan row measures it
@needs_mnist
def test_cgan_draws_the_digit_it_is_asked_for():
    """The cgan preset's grid rows must be the right digits: the shipped classifier reads its samples as
    the asked-for digit far above chance (0.1) after 4,000 steps; untrained, near chance."""
    from gan_jax.metrics import mnist as mnist_eval

    data = mnist.load("mnist", "test", SHARED_MNIST)
    gan = preset_gan("cgan", data.images, data.labels)
    hp = presets.get("cgan").hparams.as_arrays()
    classifier = mnist_eval.load_classifier()
    z, asked = gan.sample_latent(jax.random.key(1), 1000)

    def label_accuracy(state):
        logits, _ = mnist_eval.classify(classifier, (gan.generate(state.g_params, z, asked) + 1) / 2)
        return float(np.mean(np.argmax(logits, -1) == asked))

    state = jax.jit(gan.init)(jax.random.key(0))
    before = label_accuracy(state)
    state, _ = trained(gan, state, hp, 4000)
    after = label_accuracy(state)
    # measured: 0.098 untrained, 0.752 after 4,000 steps (0.168 after 2,000: it learns the labels late)
    assert before < 0.2 and after > 0.35, (before, after)


def test_no_data_and_no_network_exits_2_with_one_line(tmp_path):
    out = tmp_path / "run"
    proc = run_main("experiments.mnist_gan", "--data-dir", tmp_path / "missing", "--out", out)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist; pass --data-dir" in lines[0], proc.stderr
    assert not out.exists()


@needs_mnist
def test_mnist_gan_runs_on_the_shared_test_split(tmp_path):
    out = tmp_path / "run"
    # 4 seeds: 2 members per device on a 2-core machine, where the vmapped MNIST metrics once hung
    proc = run_main("experiments.mnist_gan", "--preset", "r4", "--data-dir", SHARED_MNIST, "--seeds", "4",
                    "--steps", "50", "--log-every", "10", "--snapshot-every", "50", "--out", out, "--no-progress",
                    "--g-hidden", "64", "--d-hidden", "96")  # widths: shared flags of every experiment
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["generator"]["hidden"] == [64] and config["discriminator"]["hidden"] == [96]
    assert "mnist/test from " in proc.stdout  # auto split: no train split there, so test
    assert "8000 training images; 2000 held out" in proc.stdout and "classifier_score over seeds" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["real_reference"]["classifier_score"] > 9.5 and summary["over_seeds"]["eval_frechet_distance"]["n"] == 4
    ceiling = summary["real_reference"]  # the new metrics' real-data ceiling, and what they depend on
    assert ceiling["precision"] > 0.8 and ceiling["recall"] > 0.8 and ceiling["coverage"] > 0.8
    assert abs(ceiling["kid"]) < 2 * ceiling["kid_std"]
    assert summary["over_seeds"]["eval_kid"]["mean"] > 10 * abs(ceiling["kid"])  # 50 steps: far from real
    assert summary["provenance"]["classifier_sha256"].startswith("da65593f") and summary["provenance"][
        "reference_samples"] == 2000 and summary["provenance"]["samples"] == 2000
    with np.load(out / "samples.npz") as f:  # every member's 2,000 evaluation samples, as uint8 pixels
        assert f["samples"].shape == (4, 2000, 784) and f["samples"].dtype == np.uint8 and list(f["seed"]) == [0, 1, 2, 3]
    names = {p.name for p in (out / "figures").iterdir()}
    assert {"losses.png", "samples.gif", "grid4x4_step0000050.png", "grid8x8_step0000000.png",
            "final_seed0.png", "final_seed1.png"} <= names
