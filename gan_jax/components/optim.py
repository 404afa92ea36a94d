"""The optimizer registry: optax optimizers built from traced hyperparameters at every update.

An optimizer is rebuilt inside each update from that step's `HParams` (learning rate, beta1, beta2
as traced arrays), so the values passed to the update are the only ones it uses. Its state holds
moments and counts, never hyperparameters (unlike `optax.inject_hyperparams`, which keeps the values
given at `init` and ignores later ones), so a changed value takes effect at the next step.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import optax

from gan_jax.core.config import HParams


class Optimizer(NamedTuple):
    """How to build one optimizer from traced values, and its usual (beta1, beta2)."""

    build: Callable[[Any, Any, Any], optax.GradientTransformation]  # (lr, beta1, beta2) -> transformation
    betas: tuple[float, float]


OPTIMIZERS: dict[str, Optimizer] = {
    "adam": Optimizer(lambda lr, b1, b2: optax.adam(lr, b1=b1, b2=b2), (0.9, 0.999)),
    # TF1's RMSPropOptimizer (R1): decay beta2, eps 1e-10 inside the sqrt, mean square initialised to 1.
    "rmsprop": Optimizer(lambda lr, b1, b2: optax.rmsprop(lr, decay=b2, eps=1e-10, initial_scale=1.0), (0.0, 0.9)),
    "sgd": Optimizer(lambda lr, b1, b2: optax.sgd(lr, momentum=b1), (0.0, 0.0)),  # beta1 is the momentum
}


def make_optimizer(name: str, lr, beta1, beta2) -> optax.GradientTransformation:
    """The optax transformation `name` with these (traced or concrete) hyperparameters."""
    return OPTIMIZERS[name].build(lr, beta1, beta2)


def init_state(name: str, params) -> optax.OptState:
    """The optimizer's initial state: moments and counts only, whatever the hyperparameters will be."""
    return make_optimizer(name, 0.0, 0.0, 0.0).init(params)


def default_hparams(optimizer: str, lr: float = 1e-3, **overrides: Any) -> HParams:
    """HParams with the optimizer's usual betas (Adam 0.9/0.999, RMSProp decay 0.9, SGD no momentum)."""
    beta1, beta2 = OPTIMIZERS[optimizer].betas
    return HParams(**{**HParams().to_dict(), "lr_g": lr, "lr_d": lr, "beta1": beta1, "beta2": beta2, **overrides})
