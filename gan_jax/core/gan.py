"""The pure GAN bundle: its state and update rules (one D update, one G update, one training step).

The loop over steps and its divergence policy are `gan_jax.core.loop`; nothing here or there applies jit,
vmap or sharding (that is `gan_jax.engine.sweep`): every function is pure, so it can be jitted, vmapped over a
member axis, or called eagerly.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from gan_jax import data
from gan_jax.components import augment, losses, models, optim, penalties
from gan_jax.core import loop
from gan_jax.core.config import Config, HParams
from gan_jax.core.validate import validate
from gan_jax.errors import ConfigError

Metrics = dict[str, jax.Array]
STANDING_BATCHES, STANDING_BATCH = 48, 64  # batches (and their size) of G's standing statistics


@struct.dataclass
class TrainState:
    """Everything a run carries from step to step, and nothing else."""

    g_params: Any
    d_params: Any
    g_ema: Any  # moving average of g_params (decay hp.ema_decay): the generator that samples and metrics use
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    key: jax.Array  # the member's base key; step keys are fold_in(key, step), never split off
    step: jax.Array
    diverged_at: jax.Array  # -1 while healthy; else the first step of the window in which it went non-finite
    # (its parameters and optimizer states are frozen as they were at that step)
    g_stats: Any = struct.field(default_factory=dict)  # G's non-parameter state: batch-norm averages
    d_stats: Any = struct.field(default_factory=dict)  # D's only state: spectral norm's power-iteration vectors


def _grad_norm(grads, log) -> jax.Array:
    """The gradients' global norm where `log` (a bool, or traced inside a loop) is true, else 0: it is
    a full pass over the gradients, so unlogged steps skip it."""
    if log is True:
        return optax.tree.norm(grads)
    return jax.lax.cond(log, optax.tree.norm, lambda g: jnp.zeros_like(jax.tree.leaves(g)[0], shape=()), grads)


def _inputs(x: jax.Array, labels: jax.Array | None) -> tuple:
    """A module's positional inputs: labels only for a conditional GAN, so unconditional modules need not
    take them."""
    return (x,) if labels is None else (x, labels)


@dataclasses.dataclass(frozen=True)
class GAN:
    """The static parts of a GAN (modules, loss, penalty, data sampler, config) and its pure functions.

    Plug in your own pieces by passing them in: any flax generator `(z, train=...) -> x` and
    discriminator `(x, train=...) -> (logit, features)` (with `cfg.num_classes`, `(z, labels, train=...)`
    and `(x, labels, train=...)`), any `GANLoss`, any `Penalty`, any sampler `(key, n) -> float32[n, dim]`
    (or `-> (x, labels)` for a conditional GAN).
    """

    cfg: Config
    sample_data: data.Sampler
    generator: nn.Module
    discriminator: nn.Module
    loss: losses.GANLoss
    penalty: penalties.PenaltyFn | None = None  # D loss += hp.gp_weight * penalty(...)

    @classmethod
    def from_config(cls, cfg: Config, sampler: data.Sampler | None = None, data_dim: int | None = None) -> "GAN":
        """Build from `cfg` (validated first: a bad setting raises ConfigError); `sampler` (with its
        `data_dim`) replaces the config's named toy dataset, and is required for an image dataset."""
        validate(cfg)
        if sampler is None:
            dataset = data.DATASETS[cfg.data]
            if not isinstance(dataset, data.ToyDataset):
                raise ConfigError(f"`data`: {cfg.data!r} is an image dataset, loaded from files: pass its sampler, "
                                  f"e.g. GAN.from_config(cfg, mnist.image_sampler(images), data_dim=784), or "
                                  "build it with gan_jax.tasks.mnist")
            sampler, data_dim = dataset.sampler(cfg.standardize), dataset.dim
        if data_dim is None:
            raise ConfigError("`data_dim`: give the dimension of the custom sampler's samples")
        generator, discriminator = models.make_models(cfg, data_dim)
        return cls(cfg, sampler, generator, discriminator, losses.LOSSES[cfg.loss],
                   penalties.PENALTIES[cfg.gradient_penalty].fn)

    # -- pieces ---------------------------------------------------------------------------------
    def sample_noise(self, key: jax.Array, n: int) -> jax.Array:
        shape = (n, self.cfg.latent_dim)
        if self.cfg.noise == "uniform":
            return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
        return jax.random.normal(key, shape)

    def sample_latent(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array | None]:
        """G's inputs: noise, and for a conditional GAN labels drawn uniformly over the classes."""
        if not self.cfg.num_classes:
            return self.sample_noise(key, n), None
        labels = jax.random.randint(jax.random.fold_in(key, 1), (n,), 0, self.cfg.num_classes)
        return self.sample_noise(key, n), labels

    def sample_real(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array | None]:
        """(x, labels) from the data sampler; a conditional GAN's sampler returns both, others x alone."""
        drawn = self.sample_data(key, n)
        if not self.cfg.num_classes:
            if isinstance(drawn, tuple):
                raise TypeError("the sampler returns (x, labels) but the GAN is unconditional (num_classes=0); "
                                "set num_classes or use a sampler that returns x alone")
            return drawn, None
        if not isinstance(drawn, tuple) or len(drawn) != 2:
            raise TypeError(f"a conditional GAN (num_classes={self.cfg.num_classes}) needs a sampler "
                            "returning (x, labels), e.g. mnist.image_sampler(images, scale, labels)")
        return drawn

    def generate(self, g_params, z: jax.Array, labels: jax.Array | None = None, g_stats=None) -> jax.Array:
        """G(z) in evaluation mode: batch norm uses its running averages from `g_stats`."""
        return self.generator.apply({"params": g_params, **(g_stats or {})}, *_inputs(z, labels))

    def standing_stats(self, g_params, g_stats, key: jax.Array):
        """G's batch-norm averages recomputed for `g_params` (BigGAN's standing statistics): G in training
        mode on STANDING_BATCHES batches of STANDING_BATCH latents from `key`, its averages updated after
        each. The averages a run carries describe the trained G's activations, not those of its moving
        average `g_ema`, the network that samples. A module's batch-norm momentum m leaves m^STANDING_BATCHES
        of the averages it starts from (the shipped G's 0.9: 0.006). Without batch norm nothing changes."""
        if not g_stats:
            return g_stats

        def update(i, stats):
            z, labels = self.sample_latent(jax.random.fold_in(key, i), STANDING_BATCH)
            return self.generate_train(g_params, stats, z, labels)[1]

        return jax.lax.fori_loop(0, STANDING_BATCHES, update, g_stats)

    def generate_train(self, g_params, g_stats, z: jax.Array, labels: jax.Array | None):
        """G(z) in training mode (batch norm uses this batch's statistics) and G's updated `g_stats`."""
        if not g_stats:
            return self.generator.apply({"params": g_params}, *_inputs(z, labels), train=True), g_stats
        return self.generator.apply({"params": g_params, **g_stats}, *_inputs(z, labels), train=True,
                                    mutable=list(g_stats))

    def discriminate(self, d_params, x: jax.Array, dropout_key: jax.Array | None = None,
                     labels: jax.Array | None = None, d_stats=None):
        """(logits, features) of D's inputs `x` (already augmented; packed here); training mode (dropout
        on) iff a dropout key is given. Spectral norm's vectors are read from `d_stats`, not updated."""
        train = dropout_key is not None
        rngs = {"dropout": dropout_key} if train else None
        return self.discriminator.apply({"params": d_params, **(d_stats or {})}, *_inputs(self.pack(x), labels),
                                        train=train, rngs=rngs)

    def discriminate_train(self, d_params, d_stats, x: jax.Array, dropout_key: jax.Array | None,
                           labels: jax.Array | None):
        """((logits, features), D's updated `d_stats`): as `discriminate`, and one power iteration of spectral
        norm stored (D's update does this once per update: every forward pass of an update computes the
        same iteration from the same stored vectors)."""
        if not d_stats:
            return self.discriminate(d_params, x, dropout_key, labels), d_stats
        rngs = {"dropout": dropout_key} if dropout_key is not None else None
        return self.discriminator.apply({"params": d_params, **d_stats}, *_inputs(self.pack(x), labels),
                                        train=dropout_key is not None, rngs=rngs, mutable=list(d_stats))

    def pack(self, x: jax.Array) -> jax.Array:
        """D's view of a batch: `cfg.pack` consecutive samples as one (PacGAN); the batch itself otherwise."""
        image_shape = self.cfg.image_shape if self.cfg.architecture == "dcgan" else None
        return models.pack(x, self.cfg.pack, image_shape)

    def augment(self, x: jax.Array, key: jax.Array, hp: HParams) -> jax.Array:
        """D's input images with the config's differentiable augmentations (none: x itself)."""
        return augment.augment(self.cfg.augment, key, x, self.cfg.image_shape, hp.augment_p)

    def optimizer(self, lr, hp: HParams) -> optax.GradientTransformation:
        """This step's optimizer, built from its traced values (`hp` is the only source of them)."""
        return optim.make_optimizer(self.cfg.optimizer, lr, hp.beta1, hp.beta2)

    # -- state and updates ----------------------------------------------------------------------
    def init(self, key: jax.Array) -> TrainState:
        """A member's initial state from its key alone (no hyperparameter is stored in it)."""
        k_g, k_d, k_train = jax.random.split(key, 3)
        z = jnp.zeros((1, self.cfg.latent_dim))
        labels = jnp.zeros((1,), jnp.int32) if self.cfg.num_classes else None
        g_vars = dict(self.generator.init(k_g, *_inputs(z, labels)))
        g_params = g_vars.pop("params")
        x = jax.eval_shape(self.generate, g_params, z, labels, g_vars)
        x = jnp.zeros((self.cfg.pack,) + x.shape[1:], x.dtype)
        d_vars = dict(self.discriminator.init(k_d, *_inputs(self.pack(x), labels)))
        d_params = d_vars.pop("params")
        if set(d_vars) - {models.SPECTRAL}:
            raise ValueError(f"the discriminator has state {sorted(set(d_vars) - {models.SPECTRAL})}; gan_jax keeps "
                             "D's state to spectral norm's vectors (no batch norm), so D's output for one input "
                             "never depends on its batch")
        name = self.cfg.optimizer
        g_ema = jax.tree.map(jnp.array, g_params)  # a copy: a donated state must not hold one buffer twice
        return TrainState(g_params, d_params, g_ema, optim.init_state(name, g_params), optim.init_state(name, d_params),
                          k_train, jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32), g_vars, d_vars)

    def d_update(self, state: TrainState, hp: HParams, real: jax.Array, z: jax.Array, dropout_key: jax.Array,
                 real_labels: jax.Array | None = None, fake_labels: jax.Array | None = None, log=True
                 ) -> tuple[TrainState, Metrics]:
        """One discriminator update on real data and G(z), with G fixed (G's batch-norm averages are
        updated by the generator's update, once per G forward pass that is trained)."""
        fake, _ = self.generate_train(state.g_params, state.g_stats, z, fake_labels)
        k_real, k_fake = jax.random.split(dropout_key)
        k_penalty = jax.random.fold_in(dropout_key, 2)  # interpolation weights, for penalties that need them
        real = self.augment(real, jax.random.fold_in(dropout_key, 3), hp)
        fake = self.augment(fake, jax.random.fold_in(dropout_key, 4), hp)
        dropout = self.cfg.discriminator.dropout > 0
        k_real, k_fake = (k_real, k_fake) if dropout else (None, None)

        def loss_fn(d_params):
            (real_logits, _), d_stats = self.discriminate_train(d_params, state.d_stats, real, k_real, real_labels)
            fake_logits, _ = self.discriminate(d_params, fake, k_fake, fake_labels, state.d_stats)
            loss = self.loss.discriminator(real_logits, fake_logits, hp.real_label)
            if self.penalty is not None:
                d_real = lambda x: self.discriminate(d_params, x, k_real, real_labels, state.d_stats)[0]  # noqa: E731
                d_fake = lambda x: self.discriminate(d_params, x, k_fake, fake_labels, state.d_stats)[0]  # noqa: E731
                loss += hp.gp_weight * self.penalty(d_real, d_fake, real, fake, k_penalty)
            return loss, (real_logits, fake_logits, d_stats)

        (loss, (real_logits, fake_logits, d_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
        updates, d_opt_state = self.optimizer(hp.lr_d, hp).update(grads, state.d_opt_state, state.d_params)
        metrics = {"d_loss": loss, "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
                   "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)), "d_grad_norm": _grad_norm(grads, log)}
        return state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=d_opt_state,
                             d_stats=d_stats), metrics

    def g_update(self, state: TrainState, hp: HParams, z: jax.Array, dropout_key: jax.Array,
                 labels: jax.Array | None = None, log=True, real: jax.Array | None = None,
                 real_labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
        """One generator update through D, with D fixed. A relativistic loss compares with D's logits of
        the real batch `real`."""
        dropout = self.cfg.discriminator.dropout > 0
        k_fake = dropout_key if dropout else None
        if self.loss.relativistic:
            k_real = jax.random.fold_in(dropout_key, 5) if dropout else None
            real = self.augment(real, jax.random.fold_in(dropout_key, 6), hp)
            real_logits = self.discriminate(state.d_params, real, k_real, real_labels, state.d_stats)[0]

        def loss_fn(g_params):
            fake, g_stats = self.generate_train(g_params, state.g_stats, z, labels)
            fake = self.augment(fake, jax.random.fold_in(dropout_key, 3), hp)
            fake_logits, _ = self.discriminate(state.d_params, fake, k_fake, labels, state.d_stats)
            if self.loss.relativistic:
                return self.loss.generator(fake_logits, real_logits), g_stats
            return self.loss.generator(fake_logits), g_stats

        (loss, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
        updates, g_opt_state = self.optimizer(hp.lr_g, hp).update(grads, state.g_opt_state, state.g_params)
        metrics = {"g_loss": loss, "g_grad_norm": _grad_norm(grads, log)}
        return state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt_state=g_opt_state,
                             g_stats=g_stats), metrics

    def update(self, state: TrainState, hp: HParams, log=True) -> tuple[TrainState, Metrics]:
        """`n_disc` D updates then `n_gen` G updates, then G's moving average; no divergence check.
        Batches come from keys that depend on (member key, step, update) alone, so a resumed run draws
        what an uninterrupted one would. With `cfg.share_batch` (R1's tutorial) every update of the step
        uses one (x, z) batch, and XLA computes G(z) once for the D updates and the first G update. A batch
        holds `batch_size * pack` samples, which D sees as `batch_size` packed ones."""
        k_d, k_g, k_shared = jax.random.split(jax.random.fold_in(state.key, state.step), 3)
        batch = self.cfg.batch_size * self.cfg.pack

        def draw(key):
            k_data, k_noise = jax.random.split(key)
            return self.sample_real(k_data, batch), self.sample_latent(k_noise, batch)

        shared = draw(k_shared) if self.cfg.share_batch else None
        metrics = {"step": state.step}
        for i in range(self.cfg.n_disc):
            k_batch, k_drop = jax.random.split(jax.random.fold_in(k_d, i))
            (real, real_labels), (z, fake_labels) = shared if shared is not None else draw(k_batch)
            state, d_metrics = self.d_update(state, hp, real, z, k_drop, real_labels, fake_labels, log)
        for i in range(self.cfg.n_gen):
            k_noise, k_drop = jax.random.split(jax.random.fold_in(k_g, i))
            z, labels = shared[1] if shared is not None else self.sample_latent(k_noise, batch)
            real, real_labels = (None, None) if not self.loss.relativistic else (
                shared[0] if shared is not None else self.sample_real(jax.random.fold_in(k_noise, 1), batch))
            state, g_metrics = self.g_update(state, hp, z, k_drop, labels, log, real, real_labels)
        # decay 0 gives g_params exactly (1 * p + 0 * e)
        state = state.replace(g_ema=optax.incremental_update(state.g_params, state.g_ema, 1 - hp.ema_decay))
        metrics.update(d_metrics)  # the last update's values
        metrics.update(g_metrics)
        return state.replace(step=state.step + 1), metrics

    # -- the loop (gan_jax.core.loop), bound to this GAN -------------------------------------------------
    def step(self, state: TrainState, hp: HParams) -> tuple[TrainState, Metrics]:
        """One training step, checked for divergence (`loop.step`)."""
        return loop.step(self, state, hp)

    def run(self, state: TrainState, hp: HParams, num_steps: int) -> tuple[TrainState, Metrics]:
        """`num_steps` steps in one scan, checked for divergence once per logged window (`loop.run`)."""
        return loop.run(self, state, hp, num_steps)


def make_train(cfg: Config, steps: int, sampler: data.Sampler | None = None,
               data_dim: int | None = None) -> Callable[[HParams, jax.Array], tuple[TrainState, Metrics]]:
    """A pure `train(hp, key) -> (final_state, metrics)` for `steps` steps; vmap it to sweep."""
    gan = GAN.from_config(cfg, sampler, data_dim)

    def train(hp: HParams, key: jax.Array):
        return gan.run(gan.init(key), hp, steps)

    return train
