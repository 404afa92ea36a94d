"""Stacked MNIST's mode metrics (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018): each of a
generator's 28x28x3 samples is read channel by channel by the shipped MNIST classifier
(`gan_jax.metrics.mnist`), giving a digit triple, one of 1,000 modes. On EVAL_SAMPLES = 26,000 samples, as
VEEGAN and PacGAN count them:

- `modes`: the number of distinct triples among the samples (of 1,000);
- `mode_kl`: KL(p || uniform) of the triples' histogram, p the samples' share per mode (the papers' KL of
  the generated mode distribution from the data's, which is uniform): 0 for a perfect sampler, log 1000 =
  6.91 for one mode.

Two diagnostics beside them, which no paper reports: `digit_kl`, the sum over the three channels of the KL
of each channel's digit shares from uniform (the part of `mode_kl` that per-channel digit frequencies
explain: equal to it when the channels are independent, 3 log 10 for one mode), and `unsure`, the share of
channel readings whose top class has probability < UNSURE_BELOW (about 1% of real digits): how much of the
histogram rests on digits the classifier can hardly read.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.metrics import mnist as mnist_eval
from gan_jax.metrics.metric import higher, lower

METRICS = (higher("modes", "distinct digit triples among the samples, of 1,000"),
           lower("mode_kl", "KL(the triples' histogram || uniform over 1,000)"),
           lower("digit_kl", "sum over channels of KL(channel's digit shares || uniform over 10)"),
           lower("unsure", "share of channel readings whose top class has probability < 0.9"))

MODES = 1000
EVAL_SAMPLES = 26_000
CHANNELS = 3
UNSURE_BELOW = 0.9


def readings(params, samples_unit: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(each sample's mode, 100 a + 10 b + c for the digits a, b, c the classifier reads in its channels;
    the top class's probability of each reading [3, n]); samples in [0, 1], [n, 28*28*3] in (row, column,
    channel) order."""
    n = samples_unit.shape[0]
    channels = jnp.moveaxis(samples_unit.reshape(n, 28, 28, CHANNELS), -1, 0).reshape(CHANNELS * n, 784)
    probs = jax.nn.softmax(mnist_eval.classify(params, channels)[0], axis=-1)
    digits = jnp.argmax(probs, axis=-1).reshape(CHANNELS, n)
    return digits[0] * 100 + digits[1] * 10 + digits[2], jnp.max(probs, axis=-1).reshape(CHANNELS, n)


def _kl_from_uniform(counts: jax.Array) -> jax.Array:
    p = counts / jnp.sum(counts)
    return jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30) * counts.shape[0]), 0.0))


def mode_metrics(modes: jax.Array) -> dict[str, jax.Array]:
    """{modes, mode_kl, digit_kl} of the samples' modes (0 to 999)."""
    counts = jnp.zeros(MODES).at[modes].add(1.0)
    channel_digits = (modes // 100, modes // 10 % 10, modes % 10)
    digit_kl = sum(_kl_from_uniform(jnp.zeros(10).at[d].add(1.0)) for d in channel_digits)
    return {"modes": jnp.sum(counts > 0).astype(jnp.float32), "mode_kl": _kl_from_uniform(counts), "digit_kl": digit_kl}


def metrics_fn(params) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """`samples_unit -> {modes, mode_kl, digit_kl, unsure}`: pure, vmappable over members (Sweep.evaluate)."""
    def metrics(samples_unit):
        modes, confidence = readings(params, samples_unit)
        return {**mode_metrics(modes), "unsure": jnp.mean((confidence < UNSURE_BELOW).astype(jnp.float32))}
    return metrics


def real_reference(params, images: np.ndarray, n: int = EVAL_SAMPLES, seed: int = 0) -> dict[str, float]:
    """The same metrics of `n` real stacked samples (three test-split images drawn independently): the
    ceiling, which multinomial noise keeps above KL 0 (about (1000 - 1) / (2 n) = 0.019 at 26,000)."""
    idx = np.random.default_rng(seed).integers(0, len(images), (n, CHANNELS))
    stacked = np.moveaxis(np.asarray(images)[idx], 1, -1).reshape(n, -1).astype(np.float32) / 255.0
    return {k: float(v) for k, v in jax.jit(metrics_fn(params))(jnp.asarray(stacked)).items()}


def provenance(n_samples: int = EVAL_SAMPLES) -> dict:
    return {"classifier": "gan_jax/metrics/mnist_classifier.msgpack", "classifier_sha256": mnist_eval.CLASSIFIER_SHA256,
            "samples": n_samples, "modes": MODES, "mode": "the digit triple the classifier reads, channel by channel",
            "kl": "KL(p_generated || uniform over 1,000 modes)",
            "digit_kl": "sum over channels of KL(channel's digit shares || uniform over 10)",
            "unsure": f"share of channel readings whose top class has probability < {UNSURE_BELOW}"}
