"""The pure GAN training core: state, one update step, and a whole run as one `lax.scan`.

Nothing here applies jit, vmap or sharding (that is `gan_jax.sweep`): every function is pure, so it
can be jitted, vmapped over a member axis, or called eagerly.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from gan_jax import data, losses, models
from gan_jax.config import Config, HParams

Metrics = dict[str, jax.Array]


@struct.dataclass
class TrainState:
    """Everything a run carries from step to step, and nothing else."""

    g_params: Any
    d_params: Any
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    key: jax.Array  # the member's base key; step keys are fold_in(key, step), never split off
    step: jax.Array
    diverged_at: jax.Array  # the step at which this member went non-finite and froze; -1 while healthy


def make_optimizer(name: str, lr, beta1, beta2) -> optax.GradientTransformation:
    """An optax optimizer whose learning rate and betas live in its state (`inject_hyperparams`), so they
    are traced arrays that differ between members of one vmapped batch."""
    if name == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=beta1, b2=beta2)
    if name == "rmsprop":
        # TF1's RMSPropOptimizer (R1): eps 1e-10 inside the sqrt, mean square initialised to 1.
        rmsprop = functools.partial(optax.rmsprop, eps=1e-10, initial_scale=1.0)
        return optax.inject_hyperparams(rmsprop)(learning_rate=lr, decay=beta2)
    if name == "sgd":
        return optax.inject_hyperparams(optax.sgd)(learning_rate=lr, momentum=beta1)
    raise KeyError(f"unknown optimizer {name!r}; choose one of adam, rmsprop, sgd")


@dataclasses.dataclass(frozen=True)
class GAN:
    """The static parts of a GAN (modules, loss, data sampler, config) and its pure functions.

    Plug in your own pieces by passing them in: any flax generator `z -> x` and discriminator
    `x -> (logit, features)`, any `GANLoss`, any sampler `(key, n) -> float32[n, dim]`.
    """

    cfg: Config
    sample_data: data.Sampler
    generator: nn.Module
    discriminator: nn.Module
    loss: losses.GANLoss

    @classmethod
    def from_config(cls, cfg: Config, sampler: data.Sampler | None = None, data_dim: int | None = None) -> "GAN":
        """Build from `cfg`; `sampler` (with its `data_dim`) overrides the config's named toy dataset."""
        if sampler is None:
            dataset = data.get_dataset(cfg.data)
            sampler, data_dim = dataset.sampler(cfg.standardize), dataset.dim
        return cls(cfg, sampler, models.make_generator(cfg.generator, data_dim),
                   models.make_discriminator(cfg.discriminator), losses.get_loss(cfg.loss))

    # -- pieces ---------------------------------------------------------------------------------
    def sample_noise(self, key: jax.Array, n: int) -> jax.Array:
        shape = (n, self.cfg.latent_dim)
        if self.cfg.noise == "uniform":
            return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
        return jax.random.normal(key, shape)

    def generate(self, g_params, z: jax.Array) -> jax.Array:
        return self.generator.apply({"params": g_params}, z)

    def discriminate(self, d_params, x: jax.Array, dropout_key: jax.Array | None = None):
        """(logits, features); training mode (dropout on) iff a dropout key is given."""
        train = dropout_key is not None
        rngs = {"dropout": dropout_key} if train else None
        return self.discriminator.apply({"params": d_params}, x, train=train, rngs=rngs)

    def optimizers(self, hp: HParams) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
        name = self.cfg.optimizer
        return (make_optimizer(name, hp.lr_g, hp.beta1, hp.beta2),
                make_optimizer(name, hp.lr_d, hp.beta1, hp.beta2))

    # -- state and updates ----------------------------------------------------------------------
    def init(self, hp: HParams, key: jax.Array) -> TrainState:
        k_g, k_d, k_train = jax.random.split(key, 3)
        z = jnp.zeros((1, self.cfg.latent_dim))
        g_params = self.generator.init(k_g, z)["params"]
        x = jax.eval_shape(self.generate, g_params, z)
        d_params = self.discriminator.init(k_d, jnp.zeros(x.shape, x.dtype))["params"]
        g_tx, d_tx = self.optimizers(hp)
        return TrainState(g_params, d_params, g_tx.init(g_params), d_tx.init(d_params), k_train,
                          jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32))

    def d_update(self, state: TrainState, hp: HParams, real: jax.Array, z: jax.Array,
                 dropout_key: jax.Array) -> tuple[TrainState, Metrics]:
        """One discriminator update on real data and G(z), with G fixed."""
        fake = self.generate(state.g_params, z)
        k_real, k_fake = jax.random.split(dropout_key)
        dropout = self.cfg.discriminator.dropout > 0

        def loss_fn(d_params):
            real_logits, _ = self.discriminate(d_params, real, k_real if dropout else None)
            fake_logits, _ = self.discriminate(d_params, fake, k_fake if dropout else None)
            return self.loss.discriminator(real_logits, fake_logits, hp.real_label), (real_logits, fake_logits)

        (loss, (real_logits, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
        _, d_tx = self.optimizers(hp)
        updates, d_opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
        metrics = {"d_loss": loss, "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                   "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)), "d_grad_norm": optax.tree.norm(grads)}
        return state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=d_opt_state), metrics

    def g_update(self, state: TrainState, hp: HParams, z: jax.Array,
                 dropout_key: jax.Array) -> tuple[TrainState, Metrics]:
        """One generator update through D, with D fixed."""
        dropout = self.cfg.discriminator.dropout > 0

        def loss_fn(g_params):
            fake_logits, _ = self.discriminate(state.d_params, self.generate(g_params, z),
                                               dropout_key if dropout else None)
            return self.loss.generator(fake_logits)

        loss, grads = jax.value_and_grad(loss_fn)(state.g_params)
        g_tx, _ = self.optimizers(hp)
        updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
        metrics = {"g_loss": loss, "g_grad_norm": optax.tree.norm(grads)}
        return state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt_state=g_opt_state), metrics

    def step(self, state: TrainState, hp: HParams) -> tuple[TrainState, Metrics]:
        """`n_disc` D updates then `n_gen` G updates. Batches come from keys that depend on (member key,
        step, update) alone, so a resumed run draws what an uninterrupted one would. With
        `cfg.share_batch` (R1's tutorial) every update of the step uses one (x, z) batch, and XLA
        computes G(z) once for the D updates and the first G update."""
        old = state
        k_d, k_g, k_shared = jax.random.split(jax.random.fold_in(state.key, state.step), 3)
        batch = self.cfg.batch_size

        def draw(key):
            k_data, k_noise = jax.random.split(key)
            return self.sample_data(k_data, batch), self.sample_noise(k_noise, batch)

        shared = draw(k_shared) if self.cfg.share_batch else None
        metrics = {"step": state.step}
        for i in range(self.cfg.n_disc):
            k_batch, k_drop = jax.random.split(jax.random.fold_in(k_d, i))
            real, z = shared if shared is not None else draw(k_batch)
            state, d_metrics = self.d_update(state, hp, real, z, k_drop)
        for i in range(self.cfg.n_gen):
            k_noise, k_drop = jax.random.split(jax.random.fold_in(k_g, i))
            z = shared[1] if shared is not None else self.sample_noise(k_noise, batch)
            state, g_metrics = self.g_update(state, hp, z, k_drop)
        metrics.update(d_metrics)  # the last update's values
        metrics.update(g_metrics)
        return self._freeze_if_diverged(old, state, metrics), metrics

    def _freeze_if_diverged(self, old: TrainState, new: TrainState, metrics: Metrics) -> TrainState:
        """Advance the step; keep the update only while the member is healthy and its losses and
        parameters stay finite. A member that goes non-finite keeps its last finite parameters and
        optimizer states, and records the step, so its neighbours and its logs stay usable."""
        learned = (new.g_params, new.d_params, new.g_opt_state, new.d_opt_state)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in
                                    jax.tree.leaves((new.g_params, new.d_params, metrics["d_loss"], metrics["g_loss"]))]))
        keep = (old.diverged_at < 0) & finite
        g_params, d_params, g_opt_state, d_opt_state = jax.tree.map(
            lambda n, o: jnp.where(keep, n, o), learned, (old.g_params, old.d_params, old.g_opt_state, old.d_opt_state))
        diverged_at = jnp.where((old.diverged_at < 0) & ~finite, old.step, old.diverged_at)
        return new.replace(g_params=g_params, d_params=d_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
                           step=old.step + 1, diverged_at=diverged_at)

    def run(self, state: TrainState, hp: HParams, num_steps: int) -> tuple[TrainState, Metrics]:
        """`num_steps` steps in one scan; metrics of every step whose index is a multiple of
        `log_every` (given that `state.step` starts at such a multiple), stacked along a leading axis."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
        window = min(self.cfg.log_every, num_steps)

        def run_window(state, length):
            state, metrics = jax.lax.scan(lambda s, _: self.step(s, hp), state, None, length=length)
            return state, jax.tree.map(lambda m: m[0], metrics)

        state, logged = jax.lax.scan(lambda s, _: run_window(s, window), state, None,
                                     length=num_steps // window)
        remainder = num_steps % window
        if remainder:
            state, last = run_window(state, remainder)
            logged = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), logged, last)
        return state, logged


def make_train(cfg: Config, sampler: data.Sampler | None = None,
               data_dim: int | None = None) -> Callable[[HParams, jax.Array], tuple[TrainState, Metrics]]:
    """A pure `train(hp, key) -> (final_state, metrics)` for `cfg.steps` steps; vmap it to sweep."""
    gan = GAN.from_config(cfg, sampler, data_dim)

    def train(hp: HParams, key: jax.Array):
        return gan.run(gan.init(hp, key), hp, cfg.steps)

    return train
