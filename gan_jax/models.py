"""Flax linen MLP generator and discriminator, built from the static config."""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.config import DiscriminatorConfig, GeneratorConfig


def _leaky_relu(slope: float) -> Callable:
    # max(x, a*x) equals leaky_relu for a <= 1 and fuses into fewer XLA ops than a select.
    if slope <= 1.0:
        return lambda x: jnp.maximum(x, slope * x)
    return lambda x: nn.leaky_relu(x, slope)


ACTIVATIONS: dict[str, Callable[[float], Callable]] = {
    "leaky_relu": _leaky_relu,
    "relu": lambda _: nn.relu,
    "tanh": lambda _: jnp.tanh,
    "sigmoid": lambda _: nn.sigmoid,
    "elu": lambda _: nn.elu,
    "gelu": lambda _: nn.gelu,
    "swish": lambda _: nn.swish,
    "linear": lambda _: (lambda x: x),
}

INITIALIZERS = {
    "glorot_uniform": nn.initializers.glorot_uniform(),  # TF1 tf.layers.dense default ("Xavier")
    "glorot_normal": nn.initializers.glorot_normal(),
    "lecun_normal": nn.initializers.lecun_normal(),  # flax default
    "he_normal": nn.initializers.he_normal(),
    # The R4 notebook's "xavier_init": N(0, 2 / fan_in), untruncated.
    "r4_xavier": nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
}


def activation(name: str, negative_slope: float = 0.2) -> Callable:
    return ACTIVATIONS[name](negative_slope)


def _dense(features: int, init: str, name: str | None = None) -> nn.Dense:
    return nn.Dense(features, kernel_init=INITIALIZERS[init], bias_init=nn.initializers.zeros, name=name)


class Generator(nn.Module):
    """z -> x: hidden dense layers with `activation`, then a dense `out_dim` layer with `output_activation`."""

    hidden: Sequence[int]
    out_dim: int
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    output_activation: str = "linear"
    kernel_init: str = "glorot_uniform"

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
        act = activation(self.activation, self.negative_slope)
        h = z
        for width in self.hidden:
            h = act(_dense(width, self.kernel_init)(h))
        return activation(self.output_activation)(_dense(self.out_dim, self.kernel_init)(h))


class Discriminator(nn.Module):
    """x -> (logit, features). Dropout, when set, follows each hidden activation in training mode."""

    hidden: Sequence[int]
    feature_dim: int | None = None
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    dropout: float = 0.0
    kernel_init: str = "glorot_uniform"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        act = activation(self.activation, self.negative_slope)
        h = x
        for width in self.hidden:
            h = act(_dense(width, self.kernel_init)(h))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        features = h if self.feature_dim is None else _dense(self.feature_dim, self.kernel_init, "features")(h)
        logit = _dense(1, self.kernel_init, "logit")(features)
        return logit[..., 0], features


def make_generator(cfg: GeneratorConfig, out_dim: int) -> Generator:
    return Generator(cfg.hidden, out_dim, cfg.activation, cfg.negative_slope, cfg.output_activation, cfg.kernel_init)


def make_discriminator(cfg: DiscriminatorConfig) -> Discriminator:
    return Discriminator(cfg.hidden, cfg.feature_dim, cfg.activation, cfg.negative_slope, cfg.dropout, cfg.kernel_init)
