"""Experiment configuration: static settings (shapes, code paths) and traced hyperparameters.

Static settings (`Config`) change shapes or code, so each distinct value compiles its own program.
Traced hyperparameters (`HParams`) are plain arrays inside the program, so a batch of members can hold
different values and `jax.vmap` sweeps them in one compiled program. Each traced hyperparameter is
declared once, as an `HParams` field with its `Traced` spec (default, bounds, help); command-line flags,
sweep grids, validation, report columns and log keys all derive from that declaration.

This module imports nothing of gan_jax: the registries that give names meaning (losses, optimizers,
architectures, penalties, datasets) live with what they register, and `gan_jax.core.validate` checks a
config against them.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import struct


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Generator z -> x. Output width is the data's dimension, so it is not set here. For the "dcgan"
    architecture `hidden` lists the channels of the layers before the output, coarsest first."""

    hidden: tuple[int, ...] = (16, 16)
    activation: str = "leaky_relu"
    negative_slope: float = 0.2  # TF1's tf.nn.leaky_relu default (PyTorch's is 0.01)
    output_activation: str = "linear"
    kernel_init: str = "glorot_uniform"  # TF1's tf.layers.dense default


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator x -> (logit, features). For the "dcgan" architecture `hidden` lists the channels of
    the strided convolutions.

    `feature_dim`, when set, adds a linear layer of that width after the hidden layers (R1 keeps a 2-unit
    one so its feature space can be plotted); the features returned are that layer's output, else the
    last hidden layer's.
    """

    hidden: tuple[int, ...] = (16, 16)
    feature_dim: int | None = 2
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    dropout: float = 0.0
    kernel_init: str = "glorot_uniform"
    spectral_norm: bool = False  # every layer's kernel divided by its largest singular value (Miyato 2018)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything static about a model and its training step. Defaults are reference R1 (the TF1 toy
    quadratic GAN). How long to train is not here: it is a property of a run (`RunOptions.steps`)."""

    data: str = "quadratic"
    architecture: str = "mlp"  # or "dcgan": transposed-conv G with batch norm, strided-conv D
    image_shape: tuple[int, ...] | None = None  # (height, width, channels) of image data, for "dcgan"
    num_classes: int = 0  # > 0: a conditional GAN; the sampler returns (x, labels), G and D see the label
    standardize: bool = True  # train on zero-mean unit-variance data (R1's tutorial used raw units)
    latent_dim: int = 2
    noise: str = "uniform"  # z ~ U(-1, 1)^latent_dim, or "normal"
    generator: GeneratorConfig = GeneratorConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    loss: str = "non_saturating"
    gradient_penalty: str = "none"  # D loss += gp_weight * penalty (gan_jax.components.penalties: r1, r2, r1+r2, wgan_gp)
    optimizer: str = "rmsprop"
    batch_size: int = 256
    n_disc: int = 1  # D updates per step
    n_gen: int = 1  # G updates per step
    share_batch: bool = True  # every update of a step uses one (x, z) batch, as R1; else fresh batches
    log_every: int = 10  # steps per logged window: metrics of its first step, one divergence check at its end
    pack: int = 1  # PacGAN: D judges `pack` samples at once, concatenated; a batch draws batch_size * pack
    augment: tuple[str, ...] = ()  # DiffAugment transformations of D's image inputs, each with prob. augment_p
    precision: str = "fp32"  # of matmuls and convolutions ("bf16": bfloat16); parameters stay float32

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Traced:
    """The declaration of one traced hyperparameter: what it means and which values are valid.

    Valid values are finite and lie between `low` and `high`; `low_open` / `high_open` exclude the bound.
    `log_scale`: the value spans orders of magnitude (learning rates): searched and plotted in log space.
    """

    help: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    log_scale: bool = False

    def contains(self, values) -> np.ndarray:
        """Elementwise: is each value valid?"""
        v = np.asarray(values, np.float64)
        above = v > self.low if self.low_open else v >= self.low
        below = v < self.high if self.high_open else v <= self.high
        return np.isfinite(v) & above & below

    def describe(self) -> str:
        """'in (0, inf)', '[0, 1)', ...: the valid range in interval notation."""
        left = "(" if self.low_open or math.isinf(self.low) else "["
        right = ")" if self.high_open or math.isinf(self.high) else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"


def traced(default: float, help: str, **bounds: Any) -> Any:
    """An HParams field: a float32 array inside the program, declared with its `Traced` spec."""
    return struct.field(default=default, metadata={"traced": Traced(help, **bounds)})


@struct.dataclass
class HParams:
    """Traced hyperparameters of one member; a stacked HParams (leading member axis) is a sweep.

    The values given to each update are the only source of every traced value: nothing is cached from
    `init`, so a value changed between chunks (a schedule, a population search) takes effect at once.
    """

    lr_g: Any = traced(1e-3, "generator learning rate", low=0.0, low_open=True, log_scale=True)
    lr_d: Any = traced(1e-3, "discriminator learning rate", low=0.0, low_open=True, log_scale=True)
    beta1: Any = traced(0.9, "first-moment decay: Adam b1, SGD momentum (RMSProp: unused)",
                        low=0.0, high=1.0, high_open=True)
    beta2: Any = traced(0.999, "second-moment decay: Adam b2, RMSProp decay (SGD: unused)",
                        low=0.0, high=1.0, high_open=True)
    real_label: Any = traced(1.0, "D's target for real data; 0.9 = one-sided label smoothing (R3)",
                             low=0.0, high=1.0, low_open=True)
    gp_weight: Any = traced(0.0, "weight of the gradient penalty chosen by the config's gradient_penalty; 0: off",
                            low=0.0)
    ema_decay: Any = traced(0.0, "decay of the moving average of G's parameters that samples and metrics use "
                                 "(e.g. 0.999); 0: G itself", low=0.0, high=1.0, high_open=True)
    augment_p: Any = traced(0.0, "probability that each of the config's augmentations is applied to an image "
                                 "D sees (real and fake alike)", low=0.0, high=1.0)

    @staticmethod
    def specs() -> dict[str, Traced]:
        """{name: Traced} of every traced hyperparameter, in declaration order."""
        return {f.name: f.metadata["traced"] for f in dataclasses.fields(HParams)}

    def as_arrays(self) -> "HParams":
        return HParams(*(jnp.asarray(v, jnp.float32) for v in dataclasses.astuple(self)))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
