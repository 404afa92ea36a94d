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
class Static:
    """The declaration of one static setting: what it means, which values are valid, and its flag.

    `kind` names the valid values: "positive_int", "non_negative_int", "optional_positive_int" (None or > 0;
    0 on the command line), "widths" (positive ints), "choice" (a key of `choices`), "names" (distinct keys of
    `choices`), "bool", "float", "str", "shape". `choices` is "module:REGISTRY", a dict whose keys are the valid
    names (resolved where it is needed, so this module imports nothing of gan_jax). `flag`: the command-line
    flag (without --); settings declaring one flag are set together by it. `sweep`: experiments.sweep may
    grid it, one compiled group per value.
    """

    help: str
    kind: str = "str"
    choices: str | None = None
    flag: str | None = None
    sweep: bool = False


def setting(default: Any, help: str, **declaration: Any) -> Any:
    """A Config field declared with its `Static` spec: flags, validation and config.json follow from it."""
    kwargs = {"default_factory": lambda: default} if dataclasses.is_dataclass(default) else {"default": default}
    return dataclasses.field(metadata={"static": Static(help, **declaration)}, **kwargs)


ACTIVATIONS, INITIALIZERS = "gan_jax.components.models:ACTIVATIONS", "gan_jax.components.models:INITIALIZERS"


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Generator z -> x. Output width is the data's dimension, so it is not set here. For the "dcgan"
    architecture `hidden` lists the channels of the layers before the output, coarsest first."""

    hidden: tuple[int, ...] = setting((16, 16), "G's hidden widths (dcgan: the channels of its layers before the "
                                      "output, coarsest first)", kind="widths", flag="g-hidden")
    activation: str = setting("leaky_relu", "hidden activation of both nets", kind="choice", choices=ACTIVATIONS,
                              flag="activation")
    negative_slope: float = setting(0.2, "leaky_relu's slope (TF1's default; PyTorch's is 0.01)", kind="float")
    output_activation: str = setting("linear", "G's output activation", kind="choice", choices=ACTIVATIONS)
    kernel_init: str = setting("glorot_uniform", "kernel initializer (TF1's tf.layers.dense default)", kind="choice",
                               choices=INITIALIZERS)


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator x -> (logit, features). For the "dcgan" architecture `hidden` lists the channels of
    the strided convolutions.

    `feature_dim`, when set, adds a linear layer of that width after the hidden layers (R1 keeps a 2-unit
    one so its feature space can be plotted); the features returned are that layer's output, else the
    last hidden layer's.
    """

    hidden: tuple[int, ...] = setting((16, 16), "D's hidden widths (dcgan: the channels of its strided convolutions)",
                                      kind="widths", flag="d-hidden")
    feature_dim: int | None = setting(2, "width of D's linear feature layer; 0: none (features = last hidden layer)",
                                      kind="optional_positive_int", flag="feature-dim")
    activation: str = setting("leaky_relu", "hidden activation of both nets", kind="choice", choices=ACTIVATIONS,
                              flag="activation")
    negative_slope: float = setting(0.2, "leaky_relu's slope", kind="float")
    dropout: float = setting(0.0, "dropout rate after each hidden layer of D, in [0, 1)", kind="float")
    kernel_init: str = setting("glorot_uniform", "kernel initializer", kind="choice", choices=INITIALIZERS)
    spectral_norm: bool = setting(False, "spectral normalization of every layer of D (Miyato et al. 2018)",
                                  kind="bool", flag="spectral-norm", sweep=True)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything static about a model and its training step, each setting declared once (`setting`).
    Defaults are reference R1 (the TF1 toy quadratic GAN). How long to train is not here: it is a property
    of a run (`RunOptions.steps`)."""

    data: str = setting("quadratic", "the data: a toy dataset's name, or what a task or a custom sampler calls it")
    architecture: str = setting("mlp", "mlp, or dcgan (transposed-conv G with batch norm, strided-conv D)",
                                kind="choice", choices="gan_jax.components.models:ARCHITECTURES")
    image_shape: tuple[int, ...] | None = setting(None, "(height, width, channels) of image data", kind="shape")
    num_classes: int = setting(0, "> 0: a conditional GAN; the sampler returns (x, labels), G and D see the label",
                               kind="non_negative_int")
    standardize: bool = setting(True, "train on zero-mean unit-variance toy data (R1's tutorial used raw units)",
                                kind="bool")
    latent_dim: int = setting(2, "z's dimension", kind="positive_int", flag="latent-dim")
    noise: str = setting("uniform", "z ~ U(-1, 1)^latent_dim (uniform) or N(0, 1) (normal)", kind="choice",
                         choices="gan_jax.core.config:NOISES", flag="noise")
    generator: GeneratorConfig = setting(GeneratorConfig(), "the generator", kind="nested")
    discriminator: DiscriminatorConfig = setting(DiscriminatorConfig(), "the discriminator", kind="nested")
    loss: str = setting("non_saturating", "loss family", kind="choice", choices="gan_jax.components.losses:LOSSES",
                        flag="loss", sweep=True)
    gradient_penalty: str = setting("none", "gradient penalty on D, weighted by gp_weight (r1, r2, r1+r2, wgan_gp)",
                                    kind="choice", choices="gan_jax.components.penalties:PENALTIES",
                                    flag="gradient-penalty", sweep=True)
    optimizer: str = setting("rmsprop", "optimizer of both networks", kind="choice",
                             choices="gan_jax.components.optim:OPTIMIZERS", flag="optimizer", sweep=True)
    batch_size: int = setting(256, "batch size", kind="positive_int", flag="batch-size", sweep=True)
    n_disc: int = setting(1, "D updates per step", kind="positive_int", flag="n-disc", sweep=True)
    n_gen: int = setting(1, "G updates per step", kind="positive_int", flag="n-gen", sweep=True)
    share_batch: bool = setting(True, "every update of a step uses one (x, z) batch, as R1; else fresh batches",
                                kind="bool")
    log_every: int = setting(10, "steps per logged window: metrics of its first step, one divergence check at its "
                                 "end", kind="positive_int", flag="log-every")
    pack: int = setting(1, "PacGAN: D judges this many samples at once; a batch draws batch_size * pack",
                        kind="positive_int", flag="pack", sweep=True)
    augment: tuple[str, ...] = setting((), "DiffAugment of D's images, each with probability augment_p",
                                       kind="names", choices="gan_jax.components.augment:AUGMENTATIONS", flag="augment")
    precision: str = setting("fp32", "of matmuls and convolutions (bf16: bfloat16, for accelerators); parameters "
                                     "stay float32", kind="choice", choices="gan_jax.components.models:PRECISIONS",
                             flag="precision")
    convolutions: str = setting("windows", "how the dcgan architecture computes its stride-2 convolutions: windows "
                                           "(each output's window copied out, then one matmul; on a CPU about 9x "
                                           "faster in training) or xla (XLA's own convolutions: cuDNN's on a GPU); "
                                           "the same parameters, the same numbers to float32 rounding",
                                kind="choice", choices="gan_jax.components.models:CONVOLUTIONS", flag="convolutions")

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(values: dict) -> "Config":
        """The Config that `to_dict` (and config.json) wrote: nested configs rebuilt, lists back to tuples."""
        def build(cls, values):
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name in values:
                    value, kind = values[f.name], f.metadata["static"].kind
                    if kind == "nested":
                        value = build(type(f.default_factory()), value)
                    elif isinstance(value, list):
                        value = tuple(value)
                    kwargs[f.name] = value
            return cls(**kwargs)
        return build(Config, values)

    @staticmethod
    def settings() -> dict[str, Static]:
        """{dotted name: Static} of every static setting ("generator.hidden"), in declaration order."""
        return _declared(Config)

    def get(self, name: str) -> Any:
        """The value of a dotted setting name."""
        value = self
        for part in name.split("."):
            value = getattr(value, part)
        return value

    def set(self, name: str, value: Any) -> "Config":
        """A copy with the dotted setting `name` changed."""
        head, _, rest = name.partition(".")
        if not rest:
            return dataclasses.replace(self, **{head: value})
        sub = getattr(self, head)
        return dataclasses.replace(self, **{head: Config.set(sub, rest, value)})


NOISES = {"uniform": None, "normal": None}  # the latent distributions (GAN.sample_noise)


def _declared(cls, prefix: str = "") -> dict[str, Static]:
    out = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata["static"]
        if spec.kind == "nested":
            out.update(_declared(type(f.default_factory()), f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = spec
    return out


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
