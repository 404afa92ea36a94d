"""The toy 2-D task: a named toy dataset, its sample-quality metrics (`gan_jax.metrics.toy`) on EVAL_SAMPLES
samples per member, and R1's figures (real data, losses, snapshots, every member's final samples, D's
feature space before and after a D and a G update, metrics against step).

Evaluation samples, snapshot latents and figure data come from named random streams (`gan_jax.core.streams`),
so a member's numbers depend on its own seed and hyperparameters only.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data, presets
from gan_jax.core.config import Config, HParams
from gan_jax.core.gan import GAN, TrainState
from gan_jax.core.streams import stream_key
from gan_jax.engine import experiment
from gan_jax.engine.members import Member
from gan_jax.engine.sweep import Sweep
from gan_jax.metrics import toy as toy_eval
from gan_jax.reporting import plotting
from gan_jax.tasks import base

EVAL_SAMPLES = 2500  # samples per member for the metrics (the VEEGAN / PacGAN protocol's count)
SNAPSHOT_SAMPLES = 512
REAL_SAMPLES = 1024  # real points drawn in the figures


def evaluation_latents(gan: GAN) -> jax.Array:
    return gan.sample_noise(jax.random.fold_in(stream_key("evaluation"), 1), EVAL_SAMPLES)


def evaluator(gan: GAN) -> tuple[experiment.Evaluate, dict[str, float]]:
    """(every member's metrics on EVAL_SAMPLES samples from the same latents against the same real draw,
    the same metrics of a second real draw: the ceiling)."""
    evaluation = TASK.evaluation(gan, None)
    return evaluation.evaluate, evaluation.ceiling


def scorer(dataset_name: str) -> base.Scorer:
    """The toy metrics of samples in the data's own units against a real draw from the evaluation stream;
    a second draw's metrics are the ceiling. Made once per dataset in a process, which the runs of a sweep's
    groups, a search's rungs or a test session then share (it took 4.4 s of a 2-member, 40-step toy run);
    each caller gets its own copies of the ceiling and provenance."""
    made = _scorer(dataset_name)
    return dataclasses.replace(made, ceiling=dict(made.ceiling), provenance=copy.deepcopy(made.provenance))


@functools.lru_cache(maxsize=None)
def _scorer(dataset_name: str) -> base.Scorer:
    dataset = data.get_dataset(dataset_name)
    key = stream_key("evaluation")
    metric_fn = toy_eval.evaluation_fn(dataset, dataset.sample(jax.random.fold_in(key, 0), EVAL_SAMPLES))
    ceiling = jax.jit(metric_fn)(dataset.sample(jax.random.fold_in(key, 2), EVAL_SAMPLES))
    return base.Scorer(lambda samples, labels=None: metric_fn(samples), toy_eval.METRICS,
                       {k: float(v) for k, v in ceiling.items()}, toy_eval.provenance(dataset, EVAL_SAMPLES),
                       min_samples=toy_eval.FEATURE_SAMPLES)


class Snapshots:
    """`on_snapshot` for experiment.run: the first member's samples at every snapshot and every member's
    latest samples, in the data's own units, from fixed latents."""

    def __init__(self, gan: GAN):
        self.dataset = data.get_dataset(gan.cfg.data)
        self.standardize = gan.cfg.standardize
        self.z = gan.sample_noise(stream_key("snapshots"), SNAPSHOT_SAMPLES)
        self.first: list[tuple[int, np.ndarray]] = []  # (step, member 0's samples)
        self.latest: list[np.ndarray] = []  # every member's samples at the latest snapshot

    def __call__(self, sweep: Sweep, state: TrainState) -> None:
        fake = self.dataset.to_raw(np.asarray(sweep.gather(sweep.generate(state, self.z))), self.standardize)
        self.first.append((int(sweep.gather(state.step)[0]), fake[0]))
        self.latest = list(fake)


def feature_views(gan: GAN, state: TrainState, hp: HParams, key: jax.Array) -> list[dict[str, np.ndarray]]:
    """D's features of one batch (real x, fake G(z)) before a D update, after it (= before the G update),
    and after the G update, for one member. As in R1, both updates use that same batch."""
    def views(state, hp, key):  # one compiled function (op by op, these updates took seconds)
        k_data, k_noise, k_drop = jax.random.split(key, 3)
        real = gan.sample_data(k_data, gan.cfg.batch_size)
        z = gan.sample_noise(k_noise, gan.cfg.batch_size)
        view = lambda s: {"real": gan.discriminate(s.d_params, real)[1],  # noqa: E731
                          "fake": gan.discriminate(s.d_params, gan.generate(s.g_params, z))[1]}
        after_d, _ = gan.d_update(state, hp, real, z, k_drop)
        after_g, _ = gan.g_update(after_d, hp, z, k_drop)
        return [view(state), view(after_d), view(after_g)]

    return jax.tree.map(np.asarray, jax.jit(views)(state, hp, key))


def write_figures(result: experiment.Result, gan: GAN, snapshots: Snapshots, member0: TrainState,
                  hp0: HParams) -> None:
    fig_dir, seeds = result.run.figures, result.seeds
    dataset = data.get_dataset(gan.cfg.data)
    k_real, k_features = jax.random.split(stream_key("figures"))
    real = np.asarray(dataset.sample(k_real, REAL_SAMPLES))
    plotting.real_data(real, fig_dir / "real_data.png", f"real data: {gan.cfg.data}")
    base.curve_figures(result)
    plotting.snapshot_grid(snapshots.first, real, fig_dir / "samples_grid.png", title=f"seed {seeds[0]}")
    plotting.snapshot_gif(snapshots.first, real, fig_dir / "samples.gif", title=f"seed {seeds[0]}")
    plotting.snapshot_grid([(f"seed {s}", f) for s, f in zip(seeds, snapshots.latest)][:16], real,
                           fig_dir / "final_samples_per_seed.png", max_panels=16,
                           title=f"step {result.summary['steps']}, every member")
    if gan.cfg.discriminator.feature_dim == 2:  # R1's plottable feature layer
        before_d, after_d, after_g = feature_views(gan, member0, hp0.as_arrays(), k_features)
        plotting.feature_space(before_d, after_d, fig_dir / "features_d_update.png", "D")
        plotting.feature_space(after_d, after_g, fig_dir / "features_g_update.png", "G")


class ToyTask(base.Task):
    """Toy 2-D data, named by `cfg.data` (a formula: no files), R1's model and figures."""

    name = "toy"
    description = "toy 2-D data (the quadratic curve, rings and grids of Gaussians, two curves)"
    presets = tuple(name for name, p in presets.PRESETS.items() if p.task == "toy")
    default_seeds = 8
    metrics = toy_eval.METRICS

    def add_flags(self, parser, cfg: Config) -> None:
        add = parser.add_argument
        add("--data", choices=sorted(data.TOY_DATASETS), default=cfg.data, help="toy dataset")
        add("--raw-data", action="store_true", help="data in the tutorial's raw units instead of standardized")
        add("--full", action="store_true", help=f"the tutorial's {presets.R1_FULL_STEPS:,} iterations")

    def configure(self, cfg: Config, args, data_) -> Config:
        if args.full:
            args.steps = presets.R1_FULL_STEPS
        return cfg.replace(data=args.data, standardize=not args.raw_data)

    def make_gan(self, cfg: Config, data_=None) -> GAN:
        return GAN.from_config(cfg)

    def scorer(self, cfg: Config, data_=None) -> base.Scorer:
        return scorer(cfg.data)

    def describe(self, data_=None) -> dict:
        return {"eval_samples": EVAL_SAMPLES}

    def sample_latents(self, gan: GAN, data=None):
        return evaluation_latents(gan), None

    def encode(self, cfg: Config):
        """In the data's own units, as evaluated (float32 arithmetic, in and out of the compiled program)."""
        dataset = data.get_dataset(cfg.data)
        if not cfg.standardize:
            return lambda x: jnp.asarray(x, jnp.float32)
        std, mean = np.asarray(dataset.std, np.float32), np.asarray(dataset.mean, np.float32)
        return lambda x: jnp.asarray(x, jnp.float32) * std + mean

    def snapshots(self, gan: GAN) -> Snapshots:
        return Snapshots(gan)

    def write_figures(self, result, gan: GAN, snapshots, members) -> None:
        member0 = jax.tree.map(lambda a: a[0], result.sweep.gather(result.state))  # a collective: every process
        if result.run.primary:
            write_figures(result, gan, snapshots, member0, members[0].hparams)

    def summary_lines(self, result) -> list[str]:
        """Speed, each seed's final losses and metrics, metrics over seeds beside the real data's."""
        common = super().summary_lines(result)
        head = 1 + len(base.evaluated_note(result.summary))  # the speed, and which step the metrics are from
        seeds = []
        for m in result.summary["members"]:
            evals = "  ".join(f"{k[5:]} {v:.4g}" for k, v in m.items() if k.startswith("eval_"))
            seeds.append(f"  seed {m['seed']}: d_loss {m['d_loss']:.3f}  g_loss {m['g_loss']:.3f}  "
                         f"D(real) {m['d_real']:.3f}  D(fake) {m['d_fake']:.3f}  {evals}")
        return common[:head] + seeds + common[head:]


TASK = ToyTask()


def train_and_evaluate(cfg: Config, members: Sequence[Member], out: str | pathlib.Path,
                       options: experiment.RunOptions, extra_config: dict | None = None,
                       figures: bool = True, **run_options) -> experiment.Result:
    """Train `members` on the toy dataset `cfg.data`, measure them at every snapshot, draw the figures."""
    return TASK.train_and_evaluate(cfg, members, out, options, None, extra_config, figures, **run_options)


def summary_lines(result: experiment.Result) -> list[str]:
    return TASK.summary_lines(result)
