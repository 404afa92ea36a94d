"""GAN losses: pure functions of discriminator logits, in numerically stable log-sigmoid form.

Each family has `<name>_discriminator_loss(real_logits, fake_logits, real_label=1.0)` and
`<name>_generator_loss(fake_logits)`; a relativistic family's generator loss also sees the real logits,
`<name>_generator_loss(fake_logits, real_logits)`. With D(x) = sigmoid(logit):
log D(x) = log_sigmoid(logit) and log(1 - D(x)) = log_sigmoid(-logit), stable for any logit.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def _bce(logits: jax.Array, target) -> jax.Array:
    """Mean binary cross-entropy of sigmoid(logits) against a (possibly smoothed) target."""
    return -jnp.mean(target * jax.nn.log_sigmoid(logits) + (1.0 - target) * jax.nn.log_sigmoid(-logits))


def minimax_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014), real target `real_label`.

    `real_label` < 1 is one-sided label smoothing (Salimans et al. 2016): fakes keep target 0.
    """
    return _bce(real_logits, real_label) + _bce(fake_logits, 0.0)


def minimax_generator_loss(fake_logits):
    """E[log(1 - D(G(z)))]: the original, saturating minimax generator loss (Goodfellow et al. 2014)."""
    return jnp.mean(jax.nn.log_sigmoid(-fake_logits))


non_saturating_discriminator_loss = minimax_discriminator_loss


def non_saturating_generator_loss(fake_logits):
    """-E[log D(G(z))]: the non-saturating generator loss (Goodfellow et al. 2014, section 3)."""
    return -jnp.mean(jax.nn.log_sigmoid(fake_logits))


def least_squares_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """0.5 E[(D(x) - real_label)^2] + 0.5 E[D(G(z))^2] on raw outputs (LSGAN, Mao et al. 2017, a=0, b=1)."""
    return 0.5 * jnp.mean((real_logits - real_label) ** 2) + 0.5 * jnp.mean(fake_logits ** 2)


def least_squares_generator_loss(fake_logits):
    """0.5 E[(D(G(z)) - 1)^2] (LSGAN, Mao et al. 2017, c=1)."""
    return 0.5 * jnp.mean((fake_logits - 1.0) ** 2)


def hinge_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018). real_label unused."""
    del real_label  # validated to be 1.0 for this family
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits):
    """-E[D(G(z))] (Lim & Ye 2017)."""
    return -jnp.mean(fake_logits)


def non_saturating_prob_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """R4's "loss 1": -mean(log D(x) + log(1 - D(G(z)))) written with probabilities, D = sigmoid(logit),
    as the notebook does. Kept to show why the logit form exists: it overflows to inf once D saturates."""
    d_real, d_fake = jax.nn.sigmoid(real_logits), jax.nn.sigmoid(fake_logits)
    return -jnp.mean(real_label * jnp.log(d_real) + (1.0 - real_label) * jnp.log(1.0 - d_real)) - jnp.mean(
        jnp.log(1.0 - d_fake))


def non_saturating_prob_generator_loss(fake_logits):
    """R4's "loss 1" generator: -mean(log D(G(z))) with probabilities (non-saturating)."""
    return -jnp.mean(jnp.log(jax.nn.sigmoid(fake_logits)))


def wasserstein_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """E[D(G(z))] - E[D(x)]: the critic's loss of WGAN (Arjovsky et al. 2017); D is a critic with unbounded
    output, kept near 1-Lipschitz by a penalty (wgan_gp, Gulrajani et al. 2017) or spectral norm."""
    del real_label  # validated to be 1.0 for this family
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_generator_loss(fake_logits):
    """-E[D(G(z))] (Arjovsky et al. 2017)."""
    return -jnp.mean(fake_logits)


def rpgan_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """E[softplus(D(G(z)) - D(x))] over pairs (x_i, G(z_i)): the relativistic pairing loss (RpGAN;
    Jolicoeur-Martineau 2019's relativistic standard GAN, the loss of R3GAN, Huang et al. 2024)."""
    del real_label
    return jnp.mean(jax.nn.softplus(fake_logits - real_logits))


def rpgan_generator_loss(fake_logits, real_logits):
    """E[softplus(D(x) - D(G(z)))] over pairs (RpGAN): G makes each fake more real than its real partner."""
    return jnp.mean(jax.nn.softplus(real_logits - fake_logits))


def ragan_discriminator_loss(real_logits, fake_logits, real_label=1.0):
    """-E_x[log sigmoid(D(x) - E D(G(z)))] - E_z[log(1 - sigmoid(D(G(z)) - E D(x)))]: the relativistic
    average GAN (RaGAN, Jolicoeur-Martineau 2019, eq. 9 with the standard GAN's f)."""
    del real_label
    return (-jnp.mean(jax.nn.log_sigmoid(real_logits - jnp.mean(fake_logits)))
            - jnp.mean(jax.nn.log_sigmoid(-(fake_logits - jnp.mean(real_logits)))))


def ragan_generator_loss(fake_logits, real_logits):
    """The same with real and fake swapped (RaGAN's generator, Jolicoeur-Martineau 2019)."""
    return ragan_discriminator_loss(fake_logits, real_logits)


class GANLoss(NamedTuple):
    """The contract between the training step and a loss family. A relativistic loss's generator takes
    (fake_logits, real_logits), so the G update also runs D on a real batch; a loss without label
    smoothing refuses real_label < 1."""

    discriminator: Callable[..., jax.Array]
    generator: Callable[..., jax.Array]
    relativistic: bool = False
    label_smoothing: bool = True
    name: str | None = None  # what a run records it as (default: its functions' module and qualname)


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(minimax_discriminator_loss, minimax_generator_loss),
    "non_saturating": GANLoss(non_saturating_discriminator_loss, non_saturating_generator_loss),
    "least_squares": GANLoss(least_squares_discriminator_loss, least_squares_generator_loss),
    "hinge": GANLoss(hinge_discriminator_loss, hinge_generator_loss, label_smoothing=False),
    "non_saturating_prob": GANLoss(non_saturating_prob_discriminator_loss, non_saturating_prob_generator_loss),
    "wasserstein": GANLoss(wasserstein_discriminator_loss, wasserstein_generator_loss, label_smoothing=False),
    "rpgan": GANLoss(rpgan_discriminator_loss, rpgan_generator_loss, relativistic=True, label_smoothing=False),
    "ragan": GANLoss(ragan_discriminator_loss, ragan_generator_loss, relativistic=True, label_smoothing=False),
}


