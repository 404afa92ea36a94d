"""Update rules: what one training step does to D and G, as a replaceable piece of a GAN.

A rule is any function `rule(gan, state, hp, log) -> (state, metrics)` built from the GAN's own pieces
(`gan.draw`, `gan.d_update`, `gan.g_update`); the GAN then updates G's moving average and the step counter,
and the loop checks for divergence, whatever the rule. `alternating` is the shipped rule: the config's
losses, penalties, `n_disc` / `n_gen` and packing all run through it. A variant (simultaneous updates, a
new update order, consistency regularisation) is one function passed as `GAN(..., update_rule=rule)`.
Batches come from keys that depend on (member key, step, update) alone, so a resumed run draws what an
uninterrupted one would.
"""
from __future__ import annotations

from typing import Any, Callable

import jax

Metrics = dict[str, jax.Array]
UpdateRule = Callable[[Any, Any, Any, Any], tuple[Any, Metrics]]  # (gan, state, hp, log) -> (state, metrics)


def step_keys(state) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(D's, G's, the shared batch's) keys of this step: fold_in(member key, step), split three ways."""
    return tuple(jax.random.split(jax.random.fold_in(state.key, state.step), 3))


def alternating(gan, state, hp, log=True) -> tuple[Any, Metrics]:
    """`n_disc` D updates, then `n_gen` G updates. With `cfg.share_batch` (R1's tutorial) every update of
    the step uses one (x, z) batch, and XLA computes G(z) once for the D updates and the first G update.
    A batch holds `batch_size * pack` samples, which D sees as `batch_size` packed ones. Metrics: the last
    D update's and the last G update's."""
    k_d, k_g, k_shared = step_keys(state)
    batch = gan.cfg.batch_size * gan.cfg.pack
    shared = gan.draw(k_shared, batch) if gan.cfg.share_batch else None
    for i in range(gan.cfg.n_disc):
        k_batch, k_drop = jax.random.split(jax.random.fold_in(k_d, i))
        (real, real_labels), (z, fake_labels) = shared if shared is not None else gan.draw(k_batch, batch)
        state, d_metrics = gan.d_update(state, hp, real, z, k_drop, real_labels, fake_labels, log)
    for i in range(gan.cfg.n_gen):
        k_noise, k_drop = jax.random.split(jax.random.fold_in(k_g, i))
        z, labels = shared[1] if shared is not None else gan.sample_latent(k_noise, batch)
        real, real_labels = (None, None) if not gan.loss.relativistic else (
            shared[0] if shared is not None else gan.sample_real(jax.random.fold_in(k_noise, 1), batch))
        state, g_metrics = gan.g_update(state, hp, z, k_drop, labels, log, real, real_labels)
    return state, {**d_metrics, **g_metrics}


def simultaneous(gan, state, hp, log=True) -> tuple[Any, Metrics]:
    """One D update and one G update, both from the step's starting parameters and one batch (simultaneous
    gradient descent, as in the analysis of Mescheder et al. 2017), rather than G seeing the updated D."""
    k_d, k_g, k_shared = step_keys(state)
    (real, real_labels), (z, fake_labels) = gan.draw(k_shared, gan.cfg.batch_size * gan.cfg.pack)
    after_d, d_metrics = gan.d_update(state, hp, real, z, k_d, real_labels, fake_labels, log)
    after_g, g_metrics = gan.g_update(state, hp, z, k_g, fake_labels, log, real, real_labels)
    return after_d.replace(g_params=after_g.g_params, g_opt_state=after_g.g_opt_state,
                           g_stats=after_g.g_stats), {**d_metrics, **g_metrics}


RULES: dict[str, UpdateRule] = {"alternating": alternating, "simultaneous": simultaneous}
