"""The pure GAN bundle: its state and update rules (one D update, one G update, one training step).

The loop over steps and its divergence policy are `gan_jax.core.loop`; nothing here or there applies jit,
vmap or sharding (that is `gan_jax.engine.sweep`): every function is pure, so it can be jitted, vmapped over a
member axis, or called eagerly.
"""
from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from gan_jax import data
from gan_jax.components import augment, losses, models, optim, penalties
from gan_jax.core import loop, pieces, updates
from gan_jax.core.config import Config, HParams
from gan_jax.core.validate import check_batch, validate
from gan_jax.errors import ConfigError

Metrics = dict[str, jax.Array]
# samplers that passed check_sampler, with what they passed for: the check compiles the sampler twice
_CHECKED_SAMPLERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
STANDING_BATCHES, STANDING_BATCH = 48, 64  # batches (and their size) of G's standing statistics


def learned_field(**kwargs) -> Any:
    """A TrainState field that training changes: a frozen (diverged) member keeps it as it was, and a
    population search's exploit copies it. Other fields (key, step, flags) stay each member's own."""
    return struct.field(metadata={"learned": True}, **kwargs)


@struct.dataclass
class TrainState:
    """Everything a run carries from step to step, and nothing else. A field declares itself learned
    (`learned_field`); `learned(state)` collects those, so nothing else lists them."""

    g_params: Any = learned_field()
    d_params: Any = learned_field()
    g_ema: Any = learned_field()  # moving average of g_params (decay hp.ema_decay): what samples and metrics use
    g_opt_state: optax.OptState = learned_field()
    d_opt_state: optax.OptState = learned_field()
    key: jax.Array = struct.field()  # the member's base key; step keys are fold_in(key, step), never split off
    step: jax.Array = struct.field()
    diverged_at: jax.Array = struct.field()  # -1 while healthy; else the first step of the window in which it
    # went non-finite (its learned state is frozen as it was at that step)
    g_stats: Any = learned_field(default_factory=dict)  # G's non-parameter state: batch-norm averages
    d_stats: Any = learned_field(default_factory=dict)  # D's only state: spectral norm's power-iteration vectors

    def learned(self) -> dict:
        """What training changes and a frozen member keeps, by field name (the learned fields)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("learned")}


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
    and `(x, labels, train=...)`), any `GANLoss`, any penalty function `(d_real, d_fake, real, fake, key) ->
    scalar` (weighted by `hp.gp_weight`, whatever the config's `gradient_penalty`), any update rule
    (`gan_jax.core.updates`), any sampler `(key, n) -> float32[n, dim]` (or `-> (x, labels)` for a
    conditional GAN). A run records each custom piece by name and code hash (`pieces`).
    """

    cfg: Config
    sample_data: data.Sampler
    generator: nn.Module
    discriminator: nn.Module
    loss: losses.GANLoss
    penalty: penalties.PenaltyFn | None = None  # D loss += hp.gp_weight * penalty(...)
    update_rule: updates.UpdateRule = updates.alternating  # one step of D and G updates (gan_jax.core.updates)

    @classmethod
    def from_config(cls, cfg: Config, sampler: data.Sampler | None = None, data_dim: int | None = None,
                    update_rule: updates.UpdateRule = updates.alternating) -> "GAN":
        """Build from `cfg` (validated first: a bad setting raises ConfigError); `sampler` (with its
        `data_dim`) replaces the config's named toy dataset, is required for an image dataset, and is
        checked once here (`check_sampler`)."""
        validate(cfg)
        if sampler is None:
            dataset = data.DATASETS.get(cfg.data)
            if not isinstance(dataset, data.ToyDataset):
                raise ConfigError(f"`data`: {cfg.data!r} is not a toy dataset (those are {sorted(data.TOY_DATASETS)}): "
                                  "pass a sampler, e.g. GAN.from_config(cfg, gan_jax.image_sampler(images), "
                                  "data_dim=784), or build it with a task (gan_jax.tasks)")
            sampler, data_dim = pieces.named(dataset.sampler(cfg.standardize), cfg.data), dataset.dim
        if data_dim is None:
            raise ConfigError("`data_dim`: give the dimension of the custom sampler's samples")
        generator, discriminator = models.make_models(cfg, data_dim)
        gan = cls(cfg, sampler, generator, discriminator, losses.LOSSES[cfg.loss],
                  penalties.PENALTIES[cfg.gradient_penalty].fn, update_rule)
        gan.check_sampler(data_dim)
        return gan

    def check_sampler(self, data_dim: int | None = None, n: int = 8) -> None:
        """Refuse, one line each, a sampler whose batches a step cannot use: not [n, data_dim] (rank, width,
        row count), not float32, labels that are not int [n] for a conditional GAN, or the same batch for
        two keys (a numpy or Python random generator runs once, when the step is traced). A sampler passes
        once per (width, classes): `run` asks again for a GAN whose sampler was replaced by hand."""
        data_dim = data_dim or self.output_dim()
        passed = (data_dim, self.cfg.num_classes, n)
        try:
            if passed in _CHECKED_SAMPLERS.get(self.sample_data, ()):
                return
        except TypeError:  # a sampler that cannot be weakly referenced is checked every time
            pass
        sample = lambda key: self.sample_data(key, n)  # noqa: E731
        try:
            shapes = jax.eval_shape(sample, jax.random.key(0))
        except Exception as e:  # the user's code failed: say where, in one line
            raise ConfigError(f"`sampler`: calling sampler(key, {n}) failed: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from e
        x, labels = (shapes if self.cfg.num_classes and isinstance(shapes, tuple) else (shapes, None))
        check_batch(x, labels, n, data_dim, self.cfg.num_classes)
        draw = jax.jit(sample)
        first, second = draw(jax.random.key(1)), draw(jax.random.key(2))
        if not all(np.isfinite(np.asarray(a, np.float64)).all() for a in jax.tree.leaves(first)):
            raise ConfigError("`sampler`: returns non-finite values (nan or inf); every sample must be finite")
        if all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second))):
            raise ConfigError("`sampler`: returns the same batch for two different keys; draw with jax.random from "
                              "the key it is given (numpy's or Python's random generator runs once, when the step "
                              "is traced, so every step would see one batch)")
        try:
            _CHECKED_SAMPLERS.setdefault(self.sample_data, set()).add(passed)
        except TypeError:
            pass

    def output_dim(self) -> int:
        """The width of G's flat samples: what the sampler's samples must match (from the shipped modules'
        fields, else from G's output shape, traced)."""
        shipped = getattr(self.generator, "out_dim", None) or (
            int(np.prod(self.generator.image_shape)) if isinstance(self.generator, models.ConvGenerator) else None)
        if shipped:
            return int(shipped)
        z, labels = self.sample_latent(jax.random.key(0), 1)
        out = jax.eval_shape(lambda k: self.generate(self.init(k).g_params, z, labels, self.init(k).g_stats),
                             jax.random.key(0))
        return int(out.shape[-1])

    def pieces(self) -> dict[str, dict]:
        """What ran, as config.json records it: a library piece by the config's name for it, a custom one
        by name and the sha256 of its code (`gan_jax.core.pieces`)."""
        def registered(piece, registry: dict) -> str | None:  # a library piece's registry name
            return next((name for name, entry in registry.items() if entry is piece), None)

        names = {"loss": registered(self.loss, losses.LOSSES),
                 "penalty": registered(self.penalty, {k: v.fn for k, v in penalties.PENALTIES.items()}),
                 "update_rule": registered(self.update_rule, updates.RULES)}
        given = {"loss": self.loss, "penalty": self.penalty, "update_rule": self.update_rule,
                 "sampler": self.sample_data, "generator": self.generator, "discriminator": self.discriminator}
        return {role: {"name": names[role]} if names.get(role) else pieces.describe(piece)
                for role, piece in given.items()}

    def recorded_config(self) -> dict:
        """`cfg` as config.json records it: a setting whose piece was replaced names the piece that ran."""
        recorded, ran = self.cfg.to_dict(), self.pieces()
        for setting, role in (("loss", "loss"), ("gradient_penalty", "penalty")):
            recorded[setting] = ran[role]["name"]  # the config's own name, unless another piece ran
        if "sha256" in ran["sampler"]:
            recorded["data"] = ran["sampler"]["name"]
        if "sha256" in ran["sampler"]:
            recorded["standardize"] = None  # the library's toy data only: a custom sampler's scale is its own
        return recorded

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

    def draw(self, key: jax.Array, n: int) -> tuple[tuple, tuple]:
        """One batch: ((real x, labels), (z, labels)) from `key`."""
        k_data, k_noise = jax.random.split(key)
        return self.sample_real(k_data, n), self.sample_latent(k_noise, n)

    def update(self, state: TrainState, hp: HParams, log=True) -> tuple[TrainState, Metrics]:
        """One step of the update rule (`gan_jax.core.updates`), then G's moving average and the step
        counter; no divergence check (that is the loop's)."""
        state, metrics = self.update_rule(self, state, hp, log)
        # decay 0 gives g_params exactly (1 * p + 0 * e)
        state = state.replace(g_ema=optax.incremental_update(state.g_params, state.g_ema, 1 - hp.ema_decay))
        return state.replace(step=state.step + 1), {"step": state.step, **metrics}

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
