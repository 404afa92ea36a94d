"""A task of your own, outside the package: its image data, a metric with its direction, an update rule.

    python -m experiments.train --task experiments.custom_task:TASK --seeds 4 --steps 600
    python -m experiments.tune --task experiments.custom_task:TASK --metric bar_share --population 8 \\
        --ready 200 -- --steps 600 --snapshot-every 200
"""
import jax
import jax.numpy as jnp

import gan_jax as gj

SIZE = 16  # 16x16 grey images, each one bright bar: a row or a column


def bars(key, n):
    """The data: images of one random bar, as flat float32 in [-1, 1] (a DCGAN's tanh range)."""
    k_axis, k_pos = jax.random.split(key)
    at = jax.nn.one_hot(jax.random.randint(k_pos, (n,), 0, SIZE), SIZE)  # [n, SIZE]
    rows = at[:, :, None] * jnp.ones((1, 1, SIZE))
    vertical = jax.random.bernoulli(k_axis, 0.5, (n, 1, 1))
    images = jnp.where(vertical, jnp.swapaxes(rows, 1, 2), rows)
    return (2 * images - 1).reshape(n, SIZE * SIZE)


def bar_share(samples):
    """The metric (higher is better): the share of samples whose brightest row or column holds at least
    half of the image's ink."""
    ink = (samples.reshape(-1, SIZE, SIZE) + 1) / 2
    best = jnp.maximum(ink.sum(1).max(-1), ink.sum(2).max(-1))
    return {"bar_share": jnp.mean(best >= 0.5 * ink.sum((1, 2)))}


def g_first(gan, state, hp, log=True):
    """The update rule: G's update before D's, both on the step's one batch (the shipped rule: D first)."""
    k_d, k_g, k_batch = gj.updates.step_keys(state)
    (real, _), (z, _) = gan.draw(k_batch, gan.cfg.batch_size)
    state, g_metrics = gan.g_update(state, hp, z, k_g, log=log)
    state, d_metrics = gan.d_update(state, hp, real, z, k_d, log=log)
    return state, {**d_metrics, **g_metrics}


class Bars(gj.Task):
    name = "bars"
    description = "16x16 images of one bright bar"
    presets = ("r2",)  # r2's MLPs: G 100-128-128-256 tanh, D 256-128-128-1
    metrics = (gj.Metric("bar_share", True, "share of samples that are one bar"),)

    def configure(self, cfg, args, data):
        return cfg.replace(data=self.name, image_shape=(SIZE, SIZE, 1))

    def make_gan(self, cfg, data):
        return gj.GAN.from_config(cfg, bars, SIZE * SIZE, update_rule=g_first)

    def scorer(self, cfg, data):  # scores samples as training does and as experiments.evaluate does
        ceiling = {k: float(v) for k, v in bar_share(bars(gj.stream_key("bars"), 512)).items()}  # our own stream
        return gj.Scorer(lambda samples, labels=None: bar_share(samples), self.metrics, ceiling)


TASK = Bars()
