"""Gradient penalties on the discriminator: the registry `PENALTIES`, each a pure function of D.

A penalty is `penalty(d_real, d_fake, real, fake, key) -> scalar`: `d_real(x) -> [n]` is D's logit
function as it sees real data (its parameters, dropout key and, for a conditional GAN, the real labels
fixed), `d_fake` as it sees the fakes; the D loss adds `hp.gp_weight * penalty`.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

LogitsFn = Callable[[jax.Array], jax.Array]
Penalty = Callable[[LogitsFn, LogitsFn, jax.Array, jax.Array, jax.Array], jax.Array]


def _grad_sq_norm(logits_fn: LogitsFn, x: jax.Array) -> jax.Array:
    """||grad_x D(x)||^2 per example: one backward pass of sum(D(x)), as examples do not interact in D."""
    grad = jax.grad(lambda v: jnp.sum(logits_fn(v)))(x)
    return jnp.sum(grad.reshape(grad.shape[0], -1) ** 2, axis=-1)


def r1_penalty(d_real, d_fake, real, fake, key):
    """E||grad_x D(x_real)||^2 / 2: the zero-centred penalty on real data (R1, Mescheder et al. 2018)."""
    del d_fake, fake, key
    return jnp.mean(_grad_sq_norm(d_real, real)) / 2


PENALTIES: dict[str, Penalty | None] = {
    "none": None,
    "r1": r1_penalty,
}
