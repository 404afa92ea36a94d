import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.config import DiscriminatorConfig, GeneratorConfig


def n_params(params) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def dense(n_in, n_out):  # weights + biases
    return n_in * n_out + n_out


def test_r1_parameter_counts_and_shapes():
    g = models.make_generator(GeneratorConfig(hidden=(16, 16)), out_dim=2)
    d = models.make_discriminator(DiscriminatorConfig(hidden=(16, 16), feature_dim=2))
    g_params = g.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]
    d_params = d.init(jax.random.key(1), jnp.zeros((1, 2)))["params"]
    # G: 2->16->16->2; D: 2->16->16->2 (features) ->1 (logit)
    assert n_params(g_params) == dense(2, 16) + dense(16, 16) + dense(16, 2) == 354
    assert n_params(d_params) == dense(2, 16) + dense(16, 16) + dense(16, 2) + dense(2, 1) == 357
    x = g.apply({"params": g_params}, jnp.ones((7, 2)))
    logits, features = d.apply({"params": d_params}, x)
    assert x.shape == (7, 2) and logits.shape == (7,) and features.shape == (7, 2)


def test_r4_parameter_counts():
    g = models.make_generator(GeneratorConfig(hidden=(128,), activation="relu", output_activation="sigmoid",
                                              kernel_init="r4_xavier"), out_dim=784)
    d = models.make_discriminator(DiscriminatorConfig(hidden=(128,), feature_dim=None, activation="relu",
                                                      kernel_init="r4_xavier"))
    g_params = g.init(jax.random.key(0), jnp.zeros((1, 100)))["params"]
    d_params = d.init(jax.random.key(0), jnp.zeros((1, 784)))["params"]
    assert n_params(g_params) == 100 * 128 + 128 + 128 * 784 + 784 == 114_064
    assert n_params(d_params) == 784 * 128 + 128 + 128 + 1 == 100_609
    x = g.apply({"params": g_params}, jnp.ones((3, 100)))
    assert x.shape == (3, 784) and float(x.min()) >= 0 and float(x.max()) <= 1  # sigmoid output
    logits, features = d.apply({"params": d_params}, x)
    assert logits.shape == (3,) and features.shape == (3, 128)  # no feature layer: last hidden


def test_glorot_uniform_default_and_zero_biases():
    g = models.make_generator(GeneratorConfig(hidden=(64,)), out_dim=32)
    params = g.init(jax.random.key(0), jnp.zeros((1, 16)))["params"]
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
    g = models.make_generator(GeneratorConfig(hidden=(8,), activation=name, output_activation=name), out_dim=3)
    params = g.init(jax.random.key(0), jnp.zeros((1, 2)))
    assert g.apply(params, jnp.ones((4, 2))).shape == (4, 3)


def test_dropout_only_in_training_mode():
    d = models.make_discriminator(DiscriminatorConfig(hidden=(256,), feature_dim=None, dropout=0.5))
    x = jnp.ones((4, 2))
    params = d.init(jax.random.key(0), x)
    eval_a, _ = d.apply(params, x)
    eval_b, _ = d.apply(params, x)
    train_a, feats = d.apply(params, x, train=True, rngs={"dropout": jax.random.key(1)})
    train_b, _ = d.apply(params, x, train=True, rngs={"dropout": jax.random.key(2)})
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(train_a, train_b)
    zero_share = float(jnp.mean(feats == 0))  # leaky_relu is never exactly 0 here, so zeros are dropped units
    assert 0.35 < zero_share < 0.65
