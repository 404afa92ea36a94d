"""Checks of a Config and HParams against the registries, before anything is compiled or written.

A bad setting raises `ConfigError` naming it in backticks, with the valid choices or range.
"""
from __future__ import annotations

import importlib
import math

import numpy as np

from gan_jax.components import losses
from gan_jax.core.config import Config, HParams, Static
from gan_jax.errors import ConfigError


def need(ok: bool, setting: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"`{setting}`: {message}")


def registry(spec: Static) -> dict:
    """The dict a declaration's `choices` ("module:NAME") names."""
    module, _, name = spec.choices.partition(":")
    return getattr(importlib.import_module(module), name)


def _is_int(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# kind -> (is the value valid?, what a valid value is): the checks every declared setting gets
KINDS = {
    "positive_int": (lambda v, s: _is_int(v, 1), "must be a positive integer"),
    "non_negative_int": (lambda v, s: _is_int(v, 0), "must be an integer >= 0"),
    "optional_positive_int": (lambda v, s: v is None or _is_int(v, 1), "must be None or a positive integer"),
    "widths": (lambda v, s: isinstance(v, tuple) and all(_is_int(w, 1) for w in v),
               "widths must be positive integers"),
    "bool": (lambda v, s: isinstance(v, bool), "must be True or False"),
    "float": (lambda v, s: isinstance(v, (int, float)) and math.isfinite(v), "must be a finite number"),
    "str": (lambda v, s: isinstance(v, str) and bool(v), "must be a non-empty string"),
    "shape": (lambda v, s: v is None or (isinstance(v, tuple) and all(_is_int(d, 1) for d in v)),
              "must be None or positive integers (height, width, channels)"),
    "choice": (lambda v, s: v in registry(s), "unknown value"),
    "names": (lambda v, s: isinstance(v, tuple) and all(n in registry(s) for n in v) and len(set(v)) == len(v),
              "must be distinct names"),
}


def check_setting(name: str, spec: Static, value) -> None:
    """One declared setting's value against its kind (and registry): ConfigError naming it otherwise."""
    valid, says = KINDS[spec.kind]
    if valid(value, spec):
        return
    if spec.kind == "choice":
        what = name.split(".")[-1].replace("_", " ")
        raise ConfigError(f"`{name}`: unknown {what} {value!r}; choose one of {sorted(registry(spec))}")
    options = f" from {sorted(registry(spec))}" if spec.choices else ""
    raise ConfigError(f"`{name}`: {says}{options}, got {value!r}")


def validate(cfg: Config, hp: HParams | None = None, gan=None) -> None:
    """Raise ConfigError naming the first bad setting of `cfg` (and of `hp`, one value or member-stacked):
    each setting against its declaration (`Config.settings()`), then what relates settings."""
    for name, spec in Config.settings().items():
        check_setting(name, spec, cfg.get(name))
    need(0.0 <= cfg.discriminator.dropout < 1.0, "discriminator.dropout",
         f"must be in [0, 1), got {cfg.discriminator.dropout}")
    need(cfg.pack == 1 or not cfg.num_classes, "pack",
         "packing is for unconditional GANs; use pack 1 with num_classes > 0")
    need(not cfg.augment or (cfg.image_shape is not None and len(cfg.image_shape) == 3), "augment",
         "augmentations transform images: set image_shape (height, width, channels), or use none")
    need(cfg.convolutions == "windows" or cfg.architecture != "mlp", "convolutions",
         f"{cfg.convolutions!r} is for convolutional architectures (dcgan); the mlp has no convolutions: "
         f"leave it at 'windows'")
    if cfg.architecture == "dcgan":
        _validate_dcgan(cfg)
    if hp is not None:
        validate_hparams(cfg, hp, gan)


def _validate_dcgan(cfg: Config) -> None:
    shape = cfg.image_shape
    need(shape is not None and len(shape) == 3, "image_shape",
         f"the dcgan architecture needs (height, width, channels), got {shape!r}")
    factor = 2 ** len(cfg.generator.hidden)
    need(shape[0] % factor == 0 and shape[1] % factor == 0, "generator.hidden",
         f"{len(cfg.generator.hidden)} upsampling layers need height and width divisible by {factor}, "
         f"got {shape[:2]}; use fewer generator layers")


def validate_hparams(cfg: Config, hp: HParams, gan=None) -> None:
    """Every member's traced values within their declared ranges, and consistent with `cfg` (and with the
    pieces of `gan`, when given: a penalty or loss plugged in instead of the config's)."""
    for name, spec in HParams.specs().items():
        values = np.asarray(getattr(hp, name), np.float64).ravel()
        bad = values[~spec.contains(values)]
        if bad.size:
            raise ConfigError(f"`{name}`: must be finite and in {spec.describe()}, got {bad[0]:g}")
    gp = np.asarray(hp.gp_weight)
    has_penalty = cfg.gradient_penalty != "none" if gan is None else gan.penalty is not None
    need(has_penalty or bool(np.all(gp == 0)), "gp_weight",
         "is set but there is no penalty: choose one (`gradient_penalty`, e.g. 'r1') or plug in your own "
         "(GAN(..., penalty=fn))")
    loss = losses.LOSSES[cfg.loss] if gan is None else gan.loss
    need(loss.label_smoothing or bool(np.all(np.asarray(hp.real_label) == 1.0)), "real_label",
         f"label smoothing is not defined for the {cfg.loss} loss; use real_label 1.0")
    need(bool(cfg.augment) or bool(np.all(np.asarray(hp.augment_p) == 0)), "augment_p",
         "is set but the config's `augment` is empty; choose augmentations, e.g. translation,cutout")


def check_batch(x, labels, n: int, dim: int | None, num_classes: int) -> None:
    """A sampler's batch for `n` samples (shapes and dtypes, e.g. from jax.eval_shape) is float32 [n, dim],
    with int labels [n] for a conditional GAN; else ConfigError naming the mistake."""
    need(not isinstance(x, tuple), "sampler", "returns a tuple, but the GAN is unconditional (num_classes 0); "
         "return x alone, or set num_classes")
    need(np.issubdtype(x.dtype, np.floating), "sampler",
         f"returns {x.dtype} samples; return floats, float32[n, dim] (e.g. x.astype(jnp.float32))")
    need(x.dtype == np.float32, "sampler", f"returns {x.dtype} samples; return float32 (the networks' dtype), "
         "e.g. x.astype(jnp.float32)")
    need(len(x.shape) == 2, "sampler", f"returns shape {tuple(x.shape)} for n={n}; return [n, dim] (flatten "
         "images to [n, height * width * channels])")
    need(x.shape[0] == n, "sampler", f"returns {x.shape[0]} rows when asked for n={n}; return exactly n rows")
    need(dim is None or x.shape[1] == dim, "sampler",
         f"returns samples of width {x.shape[1]} but the GAN's data_dim is {dim}; give the matching data_dim")
    if num_classes:
        need(labels is not None and np.issubdtype(labels.dtype, np.integer) and tuple(labels.shape) == (n,),
             "sampler", f"a conditional GAN (num_classes {num_classes}) needs (x, labels) with int labels [n]")
