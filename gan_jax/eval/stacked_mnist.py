"""Stacked MNIST's mode metrics (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018): each of a
generator's 28x28x3 samples is read channel by channel by the shipped MNIST classifier
(`gan_jax.eval.mnist`), giving a digit triple, one of 1,000 modes. On EVAL_SAMPLES = 26,000 samples, as
VEEGAN and PacGAN count them:

- `modes`: the number of distinct triples among the samples (of 1,000);
- `mode_kl`: KL(p || uniform) of the triples' histogram, p the samples' share per mode (the papers' KL of
  the generated mode distribution from the data's, which is uniform): 0 for a perfect sampler, log 1000 =
  6.91 for one mode.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.eval import mnist as mnist_eval

MODES = 1000
EVAL_SAMPLES = 26_000
CHANNELS = 3


def triples(params, samples_unit: jax.Array) -> jax.Array:
    """Each sample's mode, 100 a + 10 b + c for the digits a, b, c the classifier reads in its channels;
    samples in [0, 1], [n, 28*28*3] in (row, column, channel) order."""
    n = samples_unit.shape[0]
    channels = jnp.moveaxis(samples_unit.reshape(n, 28, 28, CHANNELS), -1, 0).reshape(CHANNELS * n, 784)
    digits = jnp.argmax(mnist_eval.classify(params, channels)[0], axis=-1).reshape(CHANNELS, n)
    return digits[0] * 100 + digits[1] * 10 + digits[2]


def mode_metrics(modes: jax.Array) -> dict[str, jax.Array]:
    counts = jnp.zeros(MODES).at[modes].add(1.0)
    p = counts / modes.shape[0]
    return {"modes": jnp.sum(counts > 0).astype(jnp.float32),
            "mode_kl": jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30) * MODES), 0.0))}


def metrics_fn(params) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """`samples_unit -> {modes, mode_kl}`: pure, vmappable over members (Sweep.evaluate)."""
    return lambda samples_unit: mode_metrics(triples(params, samples_unit))


def real_reference(params, images: np.ndarray, n: int = EVAL_SAMPLES, seed: int = 0) -> dict[str, float]:
    """The same metrics of `n` real stacked samples (three test-split images drawn independently): the
    ceiling, which multinomial noise keeps above KL 0 (about (1000 - 1) / (2 n) = 0.019 at 26,000)."""
    idx = np.random.default_rng(seed).integers(0, len(images), (n, CHANNELS))
    stacked = np.moveaxis(np.asarray(images)[idx], 1, -1).reshape(n, -1).astype(np.float32) / 255.0
    return {k: float(v) for k, v in jax.jit(metrics_fn(params))(jnp.asarray(stacked)).items()}


def provenance(n_samples: int = EVAL_SAMPLES) -> dict:
    return {"classifier": "gan_jax/eval/mnist_classifier.msgpack", "classifier_sha256": mnist_eval.CLASSIFIER_SHA256,
            "samples": n_samples, "modes": MODES, "mode": "the digit triple the classifier reads, channel by channel",
            "kl": "KL(p_generated || uniform over 1,000 modes)"}
