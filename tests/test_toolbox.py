"""The GAN toolbox: penalties (R1, R2, R1+R2, WGAN-GP), spectral normalization, packing, DiffAugment, and
the sample metrics (KID, precision/recall, density/coverage), each against an independent computation."""
import json

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SHARED_MNIST, needs_mnist, run_main
from gan_jax.components import augment, models, penalties
from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config, DiscriminatorConfig
from gan_jax.core.gan import GAN
from gan_jax.core.loop import learned
from gan_jax.engine.checkpoint import Checkpointer
from gan_jax.engine.rundir import read_metrics
from gan_jax.engine.sweep import member_keys, stack_hparams, Sweep
from gan_jax.metrics import features

# --- penalties: a linear critic D(x) = w.x + b has grad_x D = w everywhere -----------------------------------
W = jnp.array([0.6, -1.7, 0.4])
LINEAR = lambda x: x @ W + 0.3  # noqa: E731


@pytest.mark.parametrize("name, expected", [
    ("r1", 0.5 * float(W @ W)),  # E||w||^2 / 2
    ("r2", 0.5 * float(W @ W)),
    ("r1+r2", float(W @ W)),
    ("wgan_gp", (float(jnp.linalg.norm(W)) - 1.0) ** 2),  # (||w|| - 1)^2 on any interpolate
])
def test_penalty_of_a_linear_critic_is_the_closed_form(name, expected):
    real, fake = jax.random.normal(jax.random.key(0), (2, 16, 3))
    value = penalties.PENALTIES[name].fn(LINEAR, LINEAR, real, fake, jax.random.key(1))
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_r2_and_wgan_gp_look_where_they_should():
    """R2 differentiates D as it sees fakes, R1 as it sees reals; WGAN-GP between them: with a quadratic
    critic D(x) = |x|^2 / 2 (gradient x), R1 measures |real|^2 / 2 and R2 |fake|^2 / 2."""
    quad = lambda x: 0.5 * jnp.sum(x * x, axis=-1)  # noqa: E731
    real, fake = jnp.full((4, 2), 3.0), jnp.full((4, 2), 1.0)
    assert float(penalties.r1_penalty(quad, quad, real, fake, None)) == pytest.approx(9.0)
    assert float(penalties.r2_penalty(quad, quad, real, fake, None)) == pytest.approx(1.0)
    e = jax.random.uniform(jax.random.key(5), (4, 1))
    x_hat = e * real + (1 - e) * fake
    expected = np.mean((np.linalg.norm(np.asarray(x_hat), axis=1) - 1) ** 2)
    assert float(penalties.wgan_gp_penalty(quad, None, real, fake, jax.random.key(5))) == pytest.approx(expected, rel=1e-5)


def test_the_d_update_adds_the_weighted_penalty(tiny_cfg):
    """Through the GAN's own D update: a linear D (no hidden layer) under wgan_gp adds 10 (||w|| - 1)^2."""
    cfg = tiny_cfg.replace(discriminator=DiscriminatorConfig(hidden=(), feature_dim=None), gradient_penalty="wgan_gp")
    gan = GAN.from_config(cfg)
    state = gan.init(jax.random.key(0))
    real, z = gan.sample_data(jax.random.key(1), 64), gan.sample_noise(jax.random.key(2), 64)
    hp = default_hparams("rmsprop").as_arrays()
    _, plain = gan.d_update(state, hp, real, z, jax.random.key(3))
    _, penalised = gan.d_update(state, hp.replace(gp_weight=jnp.float32(10.0)), real, z, jax.random.key(3))
    w = np.asarray(state.d_params["logit"]["kernel"])
    assert float(penalised["d_loss"]) == pytest.approx(float(plain["d_loss"]) + 10 * (np.linalg.norm(w) - 1) ** 2,
                                                       rel=1e-5)


# --- spectral normalization --------------------------------------------------------------------------------
def test_spectral_norm_converges_to_the_largest_singular_value():
    layer = models.spectral
    x = jnp.ones((1, 24))

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return layer(nn.Dense(9), True)(x)

    variables = Net().init(jax.random.key(0), x)
    step = jax.jit(lambda v: Net().apply(v, x, mutable=[models.SPECTRAL])[1])
    for _ in range(60):  # one power iteration per call
        variables = {**variables, **step(variables)}
    kernel = np.asarray(variables["params"]["Dense_0"]["kernel"])
    sigma = float(jax.tree.leaves({k: v for k, v in variables[models.SPECTRAL]["SpectralNorm_0"].items()
                                   if k.endswith("sigma")})[0])
    assert sigma == pytest.approx(np.linalg.svd(kernel, compute_uv=False)[0], rel=1e-4)
    assert np.linalg.svd(kernel / sigma, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-4)


TOOLS = Config(batch_size=32, log_every=10, loss="rpgan", gradient_penalty="r1+r2", pack=2,
               discriminator=DiscriminatorConfig(hidden=(16, 16), feature_dim=None, spectral_norm=True))


def test_spectral_norm_relativistic_packed_member_equals_its_single_run_and_resumes(tmp_path):
    """Spectral norm's vectors are per-member state: a vmapped member (with RpGAN, R1+R2 and packing too)
    equals its single run, the vectors move in D's updates, and a checkpoint brings them back bitwise."""
    gan = GAN.from_config(TOOLS)
    hps = [default_hparams("rmsprop", lr, gp_weight=0.1) for lr in (1e-3, 3e-3)]
    sweep = Sweep(gan, 2)
    start = sweep.init(member_keys([3, 4]))
    initial_u = jax.device_get(start.d_stats)
    state, _ = sweep.run(start, stack_hparams(hps), 20)
    state = jax.device_get(state)
    for i, (seed, hp) in enumerate(zip([3, 4], hps)):
        single, _ = jax.jit(gan.run, static_argnums=2)(gan.init(jax.random.key(seed)), hp.as_arrays(), 20)
        mine = jax.tree.map(lambda a: a[i], learned(state))
        chex.assert_trees_all_close(mine, learned(single), rtol=1e-4, atol=1e-6)
    assert not np.allclose(jax.tree.leaves(state.d_stats)[1], jax.tree.leaves(initial_u)[1])
    ckpt = Checkpointer(tmp_path, keep=1, config=TOOLS.to_dict())
    ckpt.save(sweep.shard(state), 20)
    restored, _ = ckpt.restore(sweep.init(member_keys([3, 4])))
    chex.assert_trees_all_equal(jax.device_get(restored.d_stats), state.d_stats)


# --- packing -----------------------------------------------------------------------------------------------
def test_packing_concatenates_consecutive_samples():
    x = jnp.arange(6 * 4, dtype=jnp.float32).reshape(6, 4)
    np.testing.assert_array_equal(models.pack(x, 2), np.concatenate([x[0::2], x[1::2]], axis=1))
    images = jnp.arange(4 * 2 * 2 * 3, dtype=jnp.float32).reshape(4, 2 * 2 * 3)  # 4 images of 2x2x3
    packed = np.asarray(models.pack(images, 2, (2, 2, 3))).reshape(2, 2, 2, 6)
    as_images = np.asarray(images).reshape(4, 2, 2, 3)
    np.testing.assert_array_equal(packed[1], np.concatenate([as_images[2], as_images[3]], axis=-1))  # channels
    assert models.pack(x, 1) is x


def test_pack_m_widens_d_and_pack_1_is_the_unpacked_gan(tiny_cfg):
    packed = GAN.from_config(tiny_cfg.replace(pack=3)).init(jax.random.key(0))
    assert packed.d_params["Dense_0"]["kernel"].shape == (3 * 2, 16)  # D's input: 3 samples of 2 coordinates
    run = lambda cfg: jax.jit(GAN.from_config(cfg).run, static_argnums=2)(  # noqa: E731
        GAN.from_config(cfg).init(jax.random.key(0)), default_hparams("rmsprop").as_arrays(), 20)
    chex.assert_trees_all_equal(run(tiny_cfg.replace(pack=1)), run(Config(batch_size=64, log_every=10)))


# --- DiffAugment ---------------------------------------------------------------------------------------------
def test_augmentations_are_keyed_shape_preserving_and_differentiable():
    images = jax.random.uniform(jax.random.key(0), (8, 28 * 28)) * 2 - 1
    names = ("translation", "cutout")
    a = augment.augment(names, jax.random.key(1), images, (28, 28, 1), 1.0)
    np.testing.assert_array_equal(a, augment.augment(names, jax.random.key(1), images, (28, 28, 1), 1.0))
    assert a.shape == images.shape and not np.allclose(a, augment.augment(names, jax.random.key(2), images,
                                                                          (28, 28, 1), 1.0))
    np.testing.assert_array_equal(augment.augment(names, jax.random.key(1), images, (28, 28, 1), 0.0), images)
    for c in np.asarray(augment.cutout(jax.random.key(3), images.reshape(8, 28, 28, 1), 1.0))[..., 0]:
        rows, cols = np.flatnonzero((c == 0).any(1)), np.flatnonzero((c == 0).any(0))
        assert (c == 0).sum() == len(rows) * len(cols)  # one rectangle: a 14 x 14 square clipped at the border
        assert 7 <= len(rows) <= 14 and 7 <= len(cols) <= 14 and np.ptp(rows) == len(rows) - 1
    grad = jax.grad(lambda x: jnp.sum(augment.augment(names, jax.random.key(1), x, (28, 28, 1), 1.0) ** 2))(images)
    # d sum(aug(x)^2) / dx = 2 x on every pixel that reaches the output, 0 on those cut or shifted out
    survives = np.asarray(grad) != 0
    np.testing.assert_allclose(np.asarray(grad), 2 * np.asarray(images) * survives, rtol=1e-6)
    assert survives.sum() == (np.asarray(a) != 0).sum() > 0.5 * images.size


def test_translation_moves_content_by_the_drawn_shift():
    image = jnp.zeros((1, 8, 8, 1)).at[0, 4, 4, 0].set(1.0)
    out = np.asarray(augment.translation(jax.random.key(7), image, 1.0))[0, ..., 0]
    (y, x), = np.argwhere(out == 1.0)
    assert abs(y - 4) <= 1 and abs(x - 4) <= 1 and out.sum() == 1.0  # up to 0.125 * 8 = 1 pixel


# --- metrics against numpy written here ----------------------------------------------------------------------
def np_metrics(real, fake, subsets_real, subsets_fake, k_pr=3, k_dc=5):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))  # noqa: E731
    rr, ff, rf = d(real, real), d(fake, fake), d(real, fake)
    r_pr, f_pr, r_dc = np.sort(rr, 1)[:, k_pr], np.sort(ff, 1)[:, k_pr], np.sort(rr, 1)[:, k_dc]
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    mmds = []
    for sr, sf in zip(subsets_real, subsets_fake):
        x, y = real[sr.astype(bool)], fake[sf.astype(bool)]
        m = len(x)
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        mmds.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return {"precision": (rf < r_pr[:, None]).any(0).mean(), "recall": (rf < f_pr[None]).any(1).mean(),
            "density": (rf < r_dc[:, None]).sum(0).mean() / k_dc, "coverage": (rf.min(1) < r_dc).mean(),
            "kid": np.mean(mmds), "kid_std": np.std(mmds, ddof=1)}


def test_feature_metrics_match_a_numpy_implementation():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(120, 5)), rng.normal(0.3, 1.2, size=(100, 5))
    ref = features.reference(real, 100, subsets=20, subset_size=40, seed=3)
    got = jax.jit(lambda f: features.metrics(ref, f))(fake)
    expected = np_metrics(real, fake, np.asarray(ref.real_subsets), np.asarray(ref.fake_subsets))
    for name, value in expected.items():
        assert float(got[name]) == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_real_versus_real_and_a_collapsed_generator():
    rng = np.random.default_rng(1)
    real, other = rng.normal(size=(2, 600, 8))
    ref = features.reference(real, 600)
    same = features.metrics(ref, other)
    assert float(same["precision"]) > 0.85 and float(same["recall"]) > 0.85 and float(same["coverage"]) > 0.85
    assert abs(float(same["kid"])) < 3 * float(same["kid_std"]) and abs(float(same["kid"])) < 0.05
    collapsed = features.metrics(ref, np.repeat(real[:1], 600, axis=0) + 1e-3 * rng.normal(size=(600, 8)))
    assert float(collapsed["recall"]) < 0.05 and float(collapsed["coverage"]) < 0.05
    assert float(collapsed["kid"]) > 10 * float(same["kid"]) + 0.1


# --- the toolbox from the command line ------------------------------------------------------------------------
def test_toolbox_flags_work_in_a_sweep_with_traced_grid_values(tmp_path):
    out = tmp_path / "sweep"
    proc = run_main("experiments.sweep", "--seeds", "2", "--gp-weight", "0.1,1", "--out", out, "--",
                    "--loss", "rpgan", "--gradient-penalty", "r1+r2", "--spectral-norm", "--pack", "2",
                    "--steps", "20", "--log-every", "10", "--snapshot-every", "20", "--no-progress", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "all" / "config.json").read_text())
    assert (config["config"]["loss"], config["config"]["gradient_penalty"], config["config"]["pack"]) == (
        "rpgan", "r1+r2", 2) and config["config"]["discriminator"]["spectral_norm"] is True
    assert sorted({hp["gp_weight"] for hp in config["hparams"]}) == [0.1, 1.0]
    summary = json.loads((out / "all" / "summary.json").read_text())
    assert summary["diverged"] == [] and len(summary["by_setting"]) == 2  # two gp_weights: never pooled
    assert {"kid", "precision", "recall", "density", "coverage"} <= {
        k[5:] for k in summary["by_setting"][0]["over_seeds"]}
    assert summary["provenance"]["features"]["precision_recall_k"] == 3 and "real_reference" in summary


@needs_mnist
def test_wasserstein_gp_and_diffaugment_run_on_mnist(tmp_path):
    out = tmp_path / "run"
    proc = run_main("experiments.mnist_gan", "--preset", "r2", "--loss", "wasserstein", "--gradient-penalty",
                    "wgan_gp", "--augment", "translation,cutout", "--data-dir", SHARED_MNIST, "--seeds", "2",
                    "--steps", "10", "--log-every", "5", "--snapshot-every", "10", "--out", out, "--no-progress",
                    "--no-figures", "--no-eval")
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in read_metrics(out / "metrics.jsonl") if "d_loss" in r]
    # the usual values of what the flags switched on: DiffAugment always applied, the penalty weighted 10
    assert {r["augment_p"] for r in rows} == {1.0} and {r["gp_weight"] for r in rows} == {10.0}
    assert all(np.isfinite(r["d_loss"]) for r in rows)


def test_every_preset_is_valid_and_builds():
    from gan_jax import data
    from gan_jax import presets
    from gan_jax.core.validate import validate

    for name, preset in presets.PRESETS.items():
        validate(preset.config, preset.hparams)
        dim = data.dimension(preset.config.data)
        def sampler(key, n):  # shapes only: never trained on
            x = jax.random.normal(key, (n, dim))
            return (x, jax.random.randint(key, (n,), 0, preset.config.num_classes)) if preset.config.num_classes else x

        gan = GAN.from_config(preset.config) if preset.task == "toy" else GAN.from_config(preset.config, sampler, dim)
        state = jax.eval_shape(gan.init, jax.random.key(0))
        assert (name in ("sngan",)) == bool(state.d_stats), name  # only spectral norm gives D a state
