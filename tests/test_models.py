import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_main
from gan_jax.components import models
from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config, DiscriminatorConfig, GeneratorConfig
from gan_jax.core.gan import GAN
from gan_jax.core.validate import validate
from gan_jax.data import mnist as mnist_data
from gan_jax.engine.sweep import member_keys, stack_hparams, Sweep
from gan_jax.errors import ConfigError


def init(module, *args):
    """module.init, jitted: flax's eager init dispatches op by op (over 4 s for a DCGAN generator)."""
    return jax.jit(module.init)(*args)


def apply(module, variables, *args, **kwargs):
    """module.apply, jitted (keyword arguments such as train, mutable and rngs fixed)."""
    return jax.jit(functools.partial(module.apply, **kwargs))(variables, *args)


def n_params(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def dense(n_in, n_out):  # weights + biases
    return n_in * n_out + n_out


def test_r1_parameter_counts_and_shapes():
    g, d = models.make_models(Config(generator=GeneratorConfig(hidden=(16, 16)),
                                     discriminator=DiscriminatorConfig(hidden=(16, 16), feature_dim=2)), 2)
    g_params = init(g, jax.random.key(0), jnp.zeros((1, 2)))["params"]
    d_params = init(d, jax.random.key(1), jnp.zeros((1, 2)))["params"]
    # G: 2->16->16->2; D: 2->16->16->2 (features) ->1 (logit)
    assert n_params(g_params) == dense(2, 16) + dense(16, 16) + dense(16, 2) == 354
    assert n_params(d_params) == dense(2, 16) + dense(16, 16) + dense(16, 2) + dense(2, 1) == 357
    x = apply(g, {"params": g_params}, jnp.ones((7, 2)))
    logits, features = apply(d, {"params": d_params}, x)
    assert x.shape == (7, 2) and logits.shape == (7,) and features.shape == (7, 2)


def test_r4_parameter_counts():
    g, d = models.make_models(Config(
        generator=GeneratorConfig(hidden=(128,), activation="relu", output_activation="sigmoid", kernel_init="r4_xavier"),
        discriminator=DiscriminatorConfig(hidden=(128,), feature_dim=None, activation="relu", kernel_init="r4_xavier")),
        784)
    g_params = init(g, jax.random.key(0), jnp.zeros((1, 100)))["params"]
    d_params = init(d, jax.random.key(0), jnp.zeros((1, 784)))["params"]
    assert n_params(g_params) == 100 * 128 + 128 + 128 * 784 + 784 == 114_064
    assert n_params(d_params) == 784 * 128 + 128 + 128 + 1 == 100_609
    x = apply(g, {"params": g_params}, jnp.ones((3, 100)))
    assert x.shape == (3, 784) and float(x.min()) >= 0 and float(x.max()) <= 1  # sigmoid output
    logits, features = apply(d, {"params": d_params}, x)
    assert logits.shape == (3,) and features.shape == (3, 128)  # no feature layer: last hidden


def test_glorot_uniform_default_and_zero_biases():
    g = models.make_models(Config(generator=GeneratorConfig(hidden=(64,))), 32)[0]
    params = init(g, jax.random.key(0), jnp.zeros((1, 16)))["params"]
    kernel = np.asarray(params["Dense_0"]["kernel"])
    limit = np.sqrt(6 / (16 + 64))  # Glorot-uniform bound, TF1's tf.layers.dense default
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert np.all(np.asarray(params["Dense_0"]["bias"]) == 0)


def test_leaky_relu_slope_is_configurable():
    assert models.activation("leaky_relu", 0.2)(jnp.array(-10.0)) == pytest.approx(-2.0)
    assert models.activation("leaky_relu", 0.01)(jnp.array(-10.0)) == pytest.approx(-0.1)
    assert models.activation("leaky_relu", 0.2)(jnp.array(3.0)) == pytest.approx(3.0)


@pytest.mark.parametrize("name", sorted(models.ACTIVATIONS))
def test_every_activation_builds(name):
    g = models.make_models(Config(generator=GeneratorConfig(hidden=(8,), activation=name, output_activation=name)), 3)[0]
    params = init(g, jax.random.key(0), jnp.zeros((1, 2)))
    assert apply(g, params, jnp.ones((4, 2))).shape == (4, 3)


def test_dropout_only_in_training_mode():
    d = models.make_models(Config(discriminator=DiscriminatorConfig(hidden=(256,), feature_dim=None, dropout=0.5)), 1)[1]
    x = jnp.ones((4, 2))
    params = init(d, jax.random.key(0), x)
    eval_a, _ = apply(d, params, x)
    eval_b, _ = apply(d, params, x)
    train_a, feats = apply(d, params, x, train=True, rngs={"dropout": jax.random.key(1)})
    train_b, _ = apply(d, params, x, train=True, rngs={"dropout": jax.random.key(2)})
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(train_a, train_b)
    zero_share = float(jnp.mean(feats == 0))  # leaky_relu is never exactly 0 here, so zeros are dropped units
    assert 0.35 < zero_share < 0.65


DCGAN = Config(architecture="dcgan", image_shape=(28, 28, 1), latent_dim=100,
               generator=GeneratorConfig(hidden=(128, 64), activation="relu", output_activation="tanh"),
               discriminator=DiscriminatorConfig(hidden=(64, 128), feature_dim=None))


def test_dcgan_parameter_counts_and_shapes():
    g, d = models.make_models(DCGAN, 784)
    g_vars = init(g, jax.random.key(0), jnp.zeros((1, 100)))
    d_vars = init(d, jax.random.key(1), jnp.zeros((1, 784)))
    # G: dense 100 -> 7*7*128 (no bias), BN(128), convT 4x4 128->64 (no bias), BN(64), convT 4x4 64->1 + bias
    g_count = 100 * 7 * 7 * 128 + 2 * 128 + 4 * 4 * 128 * 64 + 2 * 64 + 4 * 4 * 64 * 1 + 1
    assert n_params(g_vars["params"]) == g_count == 759_681
    assert n_params(g_vars["batch_stats"]) == 2 * 128 + 2 * 64  # mean and variance per channel
    # D: conv 4x4 1->64 + bias, conv 4x4 64->128 + bias, dense 7*7*128 -> 1
    assert n_params(d_vars["params"]) == (16 * 64 + 64) + (16 * 64 * 128 + 128) + (7 * 7 * 128 + 1) == 138_561
    x = apply(g, g_vars, jnp.ones((3, 100)))
    assert x.shape == (3, 784) and float(jnp.abs(x).max()) <= 1
    logits, features = apply(d, d_vars, x)
    assert logits.shape == (3,) and features.shape == (3, 7 * 7 * 128)


def test_batch_norm_train_mode_uses_batch_statistics_and_updates_averages():
    g = models.make_models(DCGAN, 784)[0]
    g_vars = init(g, jax.random.key(0), jnp.zeros((1, 100)))
    z = jax.random.normal(jax.random.key(1), (16, 100))
    x_train, updated = apply(g, g_vars, z, train=True, mutable=["batch_stats"])
    x_eval = apply(g, g_vars, z)
    assert not np.allclose(x_train, x_eval)  # batch statistics vs the initial running averages
    before, after = g_vars["batch_stats"]["BatchNorm_0"], updated["batch_stats"]["BatchNorm_0"]
    assert not np.allclose(before["mean"], after["mean"])
    # one sample's output in train mode depends on the rest of its batch; in eval mode it does not
    assert not np.allclose(apply(g, g_vars, z[:2], train=True, mutable=["batch_stats"])[0][0], x_train[0], atol=1e-5)
    np.testing.assert_allclose(apply(g, g_vars, z[:2])[0], x_eval[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_conditional_models_use_the_label(architecture):
    cfg = (DCGAN if architecture == "dcgan" else Config(latent_dim=100, generator=GeneratorConfig(hidden=(32,)),
                                                         discriminator=DiscriminatorConfig(hidden=(32,))))
    cfg = cfg.replace(num_classes=10)
    g, d = models.make_models(cfg, 784)
    z, labels = jnp.ones((2, 100)), jnp.array([3, 7])
    g_vars = init(g, jax.random.key(0), z, labels)
    d_vars = init(d, jax.random.key(1), jnp.zeros((2, 784)), labels)
    x = apply(g, g_vars, z, labels)
    assert not np.allclose(x[0], x[1])  # same noise, different digits
    logits, _ = apply(d, d_vars, jnp.stack([x[0], x[0]]), labels)
    assert logits[0] != logits[1]
    with pytest.raises(ValueError, match="conditional"):
        apply(g, g_vars, z)


def test_with_label_broadcasts_one_hot_over_space():
    h = jnp.zeros((2, 4, 4, 3))
    out = models.with_label(h, jnp.array([1, 2]), 5)
    assert out.shape == (2, 4, 4, 8)
    np.testing.assert_array_equal(out[0, 2, 3, 3:], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(out[1, 0, 0, 3:], [0, 0, 1, 0, 0])


@pytest.mark.parametrize("convolutions", list(models.CONVOLUTIONS))
@pytest.mark.parametrize("shape", [(2, 7, 7, 5), (3, 14, 6, 4)])
def test_conv_transpose_2x_equals_flax_conv_transpose(shape, convolutions):
    x = jax.random.normal(jax.random.key(0), shape)
    mine = models.ConvTranspose2x(3, convolutions=convolutions)
    params = init(mine, jax.random.key(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    reference = nn.ConvTranspose(3, (4, 4), strides=(2, 2), padding="SAME")
    expected = apply(reference, params, x)
    np.testing.assert_allclose(apply(mine, params, x), expected, rtol=1e-5, atol=1e-5)
    assert expected.shape == (shape[0], 2 * shape[1], 2 * shape[2], 3)


@pytest.mark.parametrize("convolutions", list(models.CONVOLUTIONS))
@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (3, 14, 6, 4)])
def test_conv_2x_equals_flax_conv(shape, convolutions):
    x = jax.random.normal(jax.random.key(0), shape)
    mine = models.Conv2x(5, convolutions=convolutions)
    params = jax.tree.map(lambda p: p + 0.1, init(mine, jax.random.key(1), x))
    expected = apply(nn.Conv(5, (4, 4), strides=(2, 2), padding="SAME"), params, x)
    np.testing.assert_allclose(apply(mine, params, x), expected, rtol=1e-5, atol=1e-5)
    assert expected.shape == (shape[0], shape[1] // 2, shape[2] // 2, 5)


def test_xla_convolutions_give_the_windows_gradients_and_training_vmapped_over_members():
    """convolutions="xla" against the default windows, same parameters: each layer's input and kernel
    gradients, then 3 steps of a small DCGAN over 4 members (vmapped: per-member kernels, which XLA batches
    into grouped convolutions) equal to float32 rounding."""
    x = jax.random.normal(jax.random.key(0), (3, 8, 6, 4))
    for layer in (models.Conv2x, models.ConvTranspose2x):
        params = init(layer(5), jax.random.key(1), x)
        loss = lambda p, x, c: jnp.sum(jnp.sin(apply(layer(5, convolutions=c), p, x)))  # noqa: E731
        grads = {c: jax.grad(loss, argnums=(0, 1))(params, x, c) for c in models.CONVOLUTIONS}
        for a, b in zip(jax.tree.leaves(grads["windows"]), jax.tree.leaves(grads["xla"])):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    cfg = Config(architecture="dcgan", image_shape=(8, 8, 2), latent_dim=8, batch_size=6, optimizer="adam",
                 generator=GeneratorConfig(hidden=(8,), activation="relu", output_activation="tanh"),
                 discriminator=DiscriminatorConfig(hidden=(8,), feature_dim=None))
    images = np.random.default_rng(0).integers(0, 256, (12, 8, 8, 2), np.uint8)
    trained = {}
    for c in models.CONVOLUTIONS:
        sweep = Sweep(GAN.from_config(cfg.replace(convolutions=c), mnist_data.image_sampler(images), 128), 4)
        state, _ = sweep.run(sweep.init(member_keys(range(4))), stack_hparams([default_hparams("adam")] * 4), 3)
        trained[c] = jax.device_get((state.g_params, state.d_params, state.g_stats))
    for a, b in zip(jax.tree.leaves(trained["windows"]), jax.tree.leaves(trained["xla"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_xla_convolutions_on_an_mlp_are_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="`convolutions`: 'xla' is for convolutional architectures"):
        validate(Config(convolutions="xla"))
    ran = run_main("experiments.toy_quadratic", "--convolutions", "xla", "--out", tmp_path / "run")
    assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1
    assert "--convolutions: 'xla' is for convolutional architectures (dcgan)" in ran.stderr  # named by its flag
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("architecture", ["mlp", "dcgan"])
def test_bf16_precision_keeps_float32_parameters_and_outputs_close_to_fp32(architecture):
    """--precision bf16 runs matmuls and convolutions in bfloat16: parameters and outputs stay float32, and
    with the same parameters the outputs agree with fp32 to bfloat16's precision (8 bits of mantissa)."""
    cfg = DCGAN if architecture == "dcgan" else Config(latent_dim=100, generator=GeneratorConfig(hidden=(64, 64)))
    (g32, d32), (g16, d16) = models.make_models(cfg, 784), models.make_models(cfg.replace(precision="bf16"), 784)
    z = jax.random.normal(jax.random.key(1), (8, 100))
    g_vars = init(g32, jax.random.key(0), z)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(init(g16, jax.random.key(0), z)))
    x32, x16 = apply(g32, g_vars, z), apply(g16, g_vars, z)
    assert x16.dtype == jnp.float32 and not np.array_equal(x32, x16)
    np.testing.assert_allclose(x16, x32, atol=0.05 * float(jnp.abs(x32).max()))
    d_vars = init(d32, jax.random.key(2), x32)
    (l32, f32), (l16, f16) = apply(d32, d_vars, x32), apply(d16, d_vars, x32)
    assert l16.dtype == f16.dtype == jnp.float32
    np.testing.assert_allclose(l16, l32, atol=0.05 * float(jnp.abs(l32).max()) + 1e-3)
