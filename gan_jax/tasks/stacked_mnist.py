"""The Stacked MNIST task (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018): three MNIST digits
stacked as the channels of a 28x28x3 image, built from MNIST's IDX files (any split), 1,000 modes; each
member measured by the modes its 26,000 samples cover and their KL from uniform (`gan_jax.metrics.stacked_mnist`),
with the same numbers of real stacked images as the ceiling. Figures: losses, colour sample grids, metrics."""
from __future__ import annotations

import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import presets
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN, TrainState
from gan_jax.core.streams import stream_key
from gan_jax.data import mnist
from gan_jax.engine import experiment
from gan_jax.engine.members import Member
from gan_jax.engine.sweep import Sweep
from gan_jax.metrics import mnist as mnist_eval, stacked_mnist as stacked_eval
from gan_jax.reporting import plotting
from gan_jax.tasks import base, mnist as mnist_task
from gan_jax.tasks.mnist import as_uint8, to_unit


def make_gan(cfg: Config, images: np.ndarray) -> GAN:
    scale = "sigmoid" if cfg.generator.output_activation == "sigmoid" else "tanh"
    return GAN.from_config(cfg, mnist.stacked_sampler(images, scale), data_dim=28 * 28 * stacked_eval.CHANNELS)


def evaluation_latents(gan: GAN, n: int = stacked_eval.EVAL_SAMPLES) -> jax.Array:
    return gan.sample_noise(stream_key("evaluation"), n)


def evaluator(gan: GAN, images: np.ndarray, n: int = stacked_eval.EVAL_SAMPLES
              ) -> tuple[experiment.Evaluate, dict[str, float]]:
    """(every member's modes and mode KL on `n` samples, the same of `n` real stacked images)."""
    evaluation = StackedMnistTask(n).evaluation(gan, images)
    return evaluation.evaluate, evaluation.ceiling


class Snapshots:
    """The first member's 8x8 colour grid at every snapshot, every member's latest."""

    def __init__(self, gan: GAN):
        self.cfg, self.z = gan.cfg, gan.sample_noise(stream_key("snapshots"), 64)
        self.first: list[tuple[int, np.ndarray]] = []
        self.latest: list[np.ndarray] = []

    def __call__(self, sweep: Sweep, state: TrainState) -> dict[str, np.ndarray]:
        fake = to_unit(self.cfg, np.asarray(sweep.gather(sweep.generate(state, self.z))))
        fake = np.clip(fake.reshape(sweep.n_members, -1, 28, 28, stacked_eval.CHANNELS), 0, 1)
        self.first.append((int(sweep.gather(state.step)[0]), fake[0]))
        self.latest = list(fake)
        return {"samples": fake}  # every member's grid, for TensorBoard


def write_figures(result: experiment.Result, snapshots: Snapshots) -> None:
    fig_dir, seeds = result.run.figures, result.seeds
    base.curve_figures(result)
    for step, images in snapshots.first:
        plotting.image_grid(images, fig_dir / f"grid8x8_step{step:07d}.png", 8, f"step {step}")
    for seed, images in zip(seeds, snapshots.latest):
        plotting.image_grid(images, fig_dir / f"final_seed{seed}.png", 8, f"seed {seed}, step {result.summary['steps']}")


class StackedMnistTask(base.Task):
    """Stacked MNIST built from MNIST's IDX files: 1,000 modes, counted by the shipped classifier."""

    name = "stacked_mnist"
    description = "Stacked MNIST: three MNIST digits as the channels of a 28x28x3 image, 1,000 modes"
    presets = tuple(name for name, p in presets.PRESETS.items() if p.task == "stacked_mnist")
    metrics = stacked_eval.METRICS

    def __init__(self, eval_samples: int = stacked_eval.EVAL_SAMPLES):
        self.eval_samples = eval_samples

    def add_flags(self, parser, cfg: Config) -> None:
        parser.add_argument("--data-dir", default=None, help="directory of MNIST's IDX files (any split)")
        parser.add_argument("--split", choices=["auto", "train", "test"], default="auto", help="the MNIST split")

    def load(self, args) -> np.ndarray:
        return mnist_task.load("mnist", args.data_dir, args.split, evaluate=False).train.images

    def make_gan(self, cfg: Config, images: np.ndarray) -> GAN:
        return make_gan(cfg, images)

    def describe(self, images: np.ndarray) -> dict:
        return {"train_images": len(images)}

    def scorer(self, cfg: Config, images: np.ndarray) -> base.Scorer:
        """Modes of uint8 stacked images, read by the shipped classifier; `eval_samples` real ones the ceiling."""
        params = mnist_eval.load_classifier()
        metrics = stacked_eval.metrics_fn(params)
        provenance = {**stacked_eval.provenance(self.eval_samples), "samples_read_as": mnist_task.QUANTIZED}
        return base.Scorer(lambda x, labels=None: metrics(x.astype(jnp.float32) / 255), self.metrics,
                           stacked_eval.real_reference(params, images, self.eval_samples), provenance)

    def sample_latents(self, gan: GAN, data=None):
        return evaluation_latents(gan, self.eval_samples), None

    def encode(self, cfg: Config):
        return as_uint8(cfg)

    def snapshots(self, gan: GAN) -> Snapshots:
        return Snapshots(gan)

    def write_figures(self, result, gan: GAN, snapshots, members) -> None:
        if result.run.primary:
            write_figures(result, snapshots)


TASK = StackedMnistTask()


def train_and_evaluate(cfg: Config, members: Sequence[Member], out: str | pathlib.Path,
                       options: experiment.RunOptions, images: np.ndarray, extra_config: dict | None = None,
                       figures: bool = True, eval_samples: int = stacked_eval.EVAL_SAMPLES,
                       **run_options) -> experiment.Result:
    """Train `members` on Stacked MNIST built from `images` (uint8 [n, 28, 28]), measure their modes at
    every snapshot, write samples.npz (every evaluation sample, uint8) and the figures."""
    return StackedMnistTask(eval_samples).train_and_evaluate(cfg, members, out, options, images, extra_config,
                                                             figures, **run_options)


def summary_lines(result: experiment.Result) -> list[str]:
    return TASK.summary_lines(result)
