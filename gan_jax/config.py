"""Experiment configuration: static settings (shapes, code paths) and traced hyperparameters.

Static settings (`Config`) change shapes or code, so each distinct value compiles its own program.
Traced hyperparameters (`HParams`) are plain arrays inside the program, so a batch of members can hold
different values and `jax.vmap` sweeps them in one compiled program.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
from flax import struct

OPTIMIZERS = ("adam", "rmsprop", "sgd")
ARCHITECTURES = ("mlp", "dcgan")
PENALTIES = ("none", "r1")


class ConfigError(ValueError):
    """A setting has a value gan_jax cannot run; the message names the setting and the fix."""


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


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything static about a run. Defaults are reference R1 (the TF1 toy quadratic GAN)."""

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
    gradient_penalty: str = "none"  # "r1": D loss += gp_weight / 2 * E||grad_x D(x_real)||^2 (Mescheder 2018)
    optimizer: str = "rmsprop"
    batch_size: int = 256
    steps: int = 10_000
    n_disc: int = 1  # D updates per step
    n_gen: int = 1  # G updates per step
    share_batch: bool = True  # every update of a step uses one (x, z) batch, as R1; else fresh batches
    log_every: int = 10  # steps per logged window: metrics of its first step, one divergence check at its end

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@struct.dataclass
class HParams:
    """Traced hyperparameters of one member; a stacked HParams (leading member axis) is a sweep.

    beta1/beta2 are first- and second-moment decays: Adam's b1/b2; RMSProp uses beta2 as its decay
    (beta1 unused); SGD uses beta1 as momentum (beta2 unused).
    """

    lr_g: Any = 1e-3
    lr_d: Any = 1e-3
    beta1: Any = 0.9
    beta2: Any = 0.999
    real_label: Any = 1.0  # one-sided label smoothing: D's target for real data (R3 uses 0.9)
    gp_weight: Any = 0.0  # weight of the gradient penalty, when cfg.gradient_penalty is set
    ema_decay: Any = 0.0  # decay of the moving average of G's parameters that samples use; 0: G itself

    def as_arrays(self) -> "HParams":
        return HParams(*(jnp.asarray(v, jnp.float32) for v in dataclasses.astuple(self)))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


DEFAULT_BETAS = {"adam": (0.9, 0.999), "rmsprop": (0.0, 0.9), "sgd": (0.0, 0.0)}


def default_hparams(optimizer: str, lr: float = 1e-3, **overrides: Any) -> HParams:
    """HParams with the optimizer's usual betas (Adam 0.9/0.999, RMSProp decay 0.9, SGD no momentum)."""
    b1, b2 = DEFAULT_BETAS[optimizer]
    values = dict(lr_g=lr, lr_d=lr, beta1=b1, beta2=b2, real_label=1.0, gp_weight=0.0, ema_decay=0.0)
    values.update(overrides)
    return HParams(**values)


def validate(cfg: Config, hp: HParams | None = None) -> None:
    """Raise ConfigError naming the first bad setting. Checked before anything is compiled or written."""
    from gan_jax import data, losses, models  # registries live with what they register

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{name}: {message}")

    datasets = sorted(data.TOY_DATASETS) + list(data.mnist.TFDS_NAMES)
    need(cfg.data in datasets, "data", f"unknown dataset {cfg.data!r}; choose one of {datasets}")
    need(cfg.loss in losses.LOSSES, "loss", f"unknown loss {cfg.loss!r}; choose one of {sorted(losses.LOSSES)}")
    need(cfg.optimizer in OPTIMIZERS, "optimizer",
         f"unknown optimizer {cfg.optimizer!r}; choose one of {list(OPTIMIZERS)}")
    need(cfg.architecture in ARCHITECTURES, "architecture",
         f"unknown architecture {cfg.architecture!r}; choose one of {list(ARCHITECTURES)}")
    need(cfg.gradient_penalty in PENALTIES, "gradient_penalty",
         f"unknown gradient penalty {cfg.gradient_penalty!r}; choose one of {list(PENALTIES)}")
    need(isinstance(cfg.num_classes, int) and cfg.num_classes >= 0, "num_classes",
         f"must be an integer >= 0, got {cfg.num_classes!r}")
    if cfg.architecture == "dcgan":
        _validate_dcgan(cfg, need)
    need(cfg.noise in ("uniform", "normal"), "noise", f"must be 'uniform' or 'normal', got {cfg.noise!r}")
    for name in ("latent_dim", "batch_size", "steps", "n_disc", "n_gen", "log_every"):
        value = getattr(cfg, name)
        need(isinstance(value, int) and value > 0, name, f"must be a positive integer, got {value!r}")
    for net in ("generator", "discriminator"):
        sub = getattr(cfg, net)
        need(all(isinstance(w, int) and w > 0 for w in sub.hidden), f"{net}.hidden",
             f"widths must be positive integers, got {sub.hidden!r}")
        need(sub.activation in models.ACTIVATIONS, f"{net}.activation",
             f"unknown activation {sub.activation!r}; choose one of {sorted(models.ACTIVATIONS)}")
        need(sub.kernel_init in models.INITIALIZERS, f"{net}.kernel_init",
             f"unknown initializer {sub.kernel_init!r}; choose one of {sorted(models.INITIALIZERS)}")
    need(cfg.generator.output_activation in models.ACTIVATIONS, "generator.output_activation",
         f"unknown activation {cfg.generator.output_activation!r}")
    need(0.0 <= cfg.discriminator.dropout < 1.0, "discriminator.dropout",
         f"must be in [0, 1), got {cfg.discriminator.dropout}")
    if hp is not None:
        validate_hparams(cfg, hp)


def _validate_dcgan(cfg: Config, need) -> None:
    shape = cfg.image_shape
    need(shape is not None and len(shape) == 3, "image_shape",
         f"the dcgan architecture needs (height, width, channels), got {shape!r}")
    factor = 2 ** len(cfg.generator.hidden)
    need(shape[0] % factor == 0 and shape[1] % factor == 0, "generator.hidden",
         f"{len(cfg.generator.hidden)} upsampling layers need height and width divisible by {factor}, "
         f"got {shape[:2]}; use fewer generator layers")


def validate_hparams(cfg: Config, hp: HParams) -> None:
    """Check every member's traced values (scalars or stacked arrays)."""
    import numpy as np

    def need(ok: bool, name: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{name}: {message}")

    for name in ("lr_g", "lr_d"):
        value = np.asarray(getattr(hp, name))
        need(bool(np.all(np.isfinite(value)) and np.all(value > 0)), name,
             f"learning rate must be > 0, got {value.tolist()}")
    for name in ("beta1", "beta2", "ema_decay"):  # decays
        value = np.asarray(getattr(hp, name))
        need(bool(np.all(value >= 0) and np.all(value < 1)), name, f"must be in [0, 1), got {value.tolist()}")
    real = np.asarray(hp.real_label)
    need(bool(np.all(real > 0) and np.all(real <= 1)), "real_label", f"must be in (0, 1], got {real.tolist()}")
    gp = np.asarray(hp.gp_weight)
    need(bool(np.all(np.isfinite(gp)) and np.all(gp >= 0)), "gp_weight", f"must be >= 0, got {gp.tolist()}")
    need(cfg.gradient_penalty != "none" or bool(np.all(gp == 0)), "gp_weight",
         "is set but cfg.gradient_penalty is 'none'; set gradient_penalty='r1'")
    need(cfg.loss != "hinge" or bool(np.all(real == 1.0)), "real_label",
         "label smoothing is not defined for the hinge loss; use real_label 1.0")
