"""Gradient penalties on the discriminator: the registry `PENALTIES`, each a pure function of D.

A penalty is `penalty(d_real, d_fake, real, fake, key) -> scalar`: `d_real(x) -> [n]` is D's logit
function as it sees real data (its parameters, dropout key and, for a conditional GAN, the real labels
fixed), `d_fake` as it sees the fakes; `real` and `fake` are D's inputs (after augmentation and packing).
The D loss adds `hp.gp_weight * penalty`. Each registry entry has the weight a run uses when a penalty
is chosen without a weight.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

LogitsFn = Callable[[jax.Array], jax.Array]
PenaltyFn = Callable[[LogitsFn, LogitsFn, jax.Array, jax.Array, jax.Array], jax.Array]


def _grad_sq_norm(logits_fn: LogitsFn, x: jax.Array) -> jax.Array:
    """||grad_x D(x)||^2 per example: one backward pass of sum(D(x)), as examples do not interact in D."""
    grad = jax.grad(lambda v: jnp.sum(logits_fn(v)))(x)
    return jnp.sum(grad.reshape(grad.shape[0], -1) ** 2, axis=-1)


def r1_penalty(d_real, d_fake, real, fake, key):
    """E||grad_x D(x_real)||^2 / 2: the zero-centred penalty on real data (R1, Mescheder et al. 2018)."""
    del d_fake, fake, key
    return jnp.mean(_grad_sq_norm(d_real, real)) / 2


def r2_penalty(d_real, d_fake, real, fake, key):
    """E||grad_x D(G(z))||^2 / 2: the zero-centred penalty on fake data (R2, Mescheder et al. 2018)."""
    del d_real, real, key
    return jnp.mean(_grad_sq_norm(d_fake, fake)) / 2


def r1_r2_penalty(d_real, d_fake, real, fake, key):
    """R1 + R2, both weighted by gp_weight: the regularizer of R3GAN (Huang et al. 2024), gamma/2 each."""
    return r1_penalty(d_real, d_fake, real, fake, key) + r2_penalty(d_real, d_fake, real, fake, key)


def wgan_gp_penalty(d_real, d_fake, real, fake, key):
    """E[(||grad_x D(x_hat)|| - 1)^2] on x_hat = e x_real + (1 - e) x_fake, e ~ U[0, 1] per example: the
    WGAN-GP penalty (Gulrajani et al. 2017, Algorithm 1), D seen as it sees real data."""
    del d_fake
    e = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
    return jnp.mean((jnp.sqrt(_grad_sq_norm(d_real, e * real + (1 - e) * fake) + 1e-12) - 1.0) ** 2)


class Penalty(NamedTuple):
    fn: PenaltyFn | None
    default_weight: float  # gp_weight when the penalty is chosen without one


PENALTIES: dict[str, Penalty] = {
    "none": Penalty(None, 0.0),
    "r1": Penalty(r1_penalty, 10.0),  # Mescheder et al. 2018's gamma = 10
    "r2": Penalty(r2_penalty, 10.0),
    "r1+r2": Penalty(r1_r2_penalty, 10.0),
    "wgan_gp": Penalty(wgan_gp_penalty, 10.0),  # Gulrajani et al. 2017's lambda = 10
}
