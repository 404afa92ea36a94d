"""The task interface: a family of data with its evaluation (each metric with its direction and real-data
ceiling), the samples a run keeps, its figures and its console summary, and the one function that trains
and evaluates members of any task.

A task is an object; `gan_jax.tasks` holds the registry that every entry point, search and benchmark
reaches tasks through. A new task is one file: a `Task` subclass and `tasks.register(MyTask())` (or the
`--task module:attribute` form on the command line, which imports it).
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.core.streams import stream_key
from gan_jax.engine import experiment
from gan_jax.engine.members import Member
from gan_jax.metrics import stats
from gan_jax.metrics.metric import Metric
from gan_jax.reporting import plotting


@dataclasses.dataclass
class Evaluation:
    """What a task measures of one GAN's members: `evaluate(sweep, state) -> {metric: [members]}`, the
    metrics it returns, the same metrics of real data (the ceiling) and the protocol (`provenance`)."""

    evaluate: experiment.Evaluate
    metrics: Sequence[Metric]
    ceiling: dict[str, float] | None = None
    provenance: dict | None = None
    note: str | None = None  # said once before training, e.g. which features the metrics use and why


@dataclasses.dataclass
class Scorer:
    """How a task scores samples as samples.npz stores them (the task's `encode`): `fn(encoded [n, ...],
    labels or None) -> {metric: scalar}` (pure and jittable), the metrics it returns, their real-data
    ceiling and protocol. The same function scores a run's members as they train and any samples file
    afterwards (`experiments.evaluate`), so a run's samples.npz reproduces its final numbers."""

    fn: Callable[..., dict]
    metrics: Sequence[Metric]
    ceiling: dict[str, float] | None = None
    provenance: dict | None = None
    note: str | None = None
    prepare: Callable[[int], Any] | None = None  # called with a sample count before `fn` is traced for it
    # (real-data statistics that depend on the count are computed on the host, outside any trace)
    min_samples: int = 1  # per member: fewer cannot be scored (a metric on the first N samples needs N)


def evaluated_note(summary: dict) -> list[str]:
    """A line for the console when a stopped run's metrics are from an evaluation before the stop, else none."""
    stopped, evaluated_at = summary.get("preempted"), summary.get("evaluated_at")
    if stopped and evaluated_at is not None and evaluated_at != stopped["step"]:
        return [f"  the metrics below are from the last evaluation, at step {evaluated_at}, not the stop's step "
                f"{stopped['step']}"]
    return []


def curve_figures(result: experiment.Result) -> None:
    """Every task's curves: D's and G's losses, and each evaluation metric against step, one mean and 95%
    band per setting (figures say what they average)."""
    fig_dir, groups = result.run.figures, plotting.setting_groups(result.summary, result.history_members)
    plotting.loss_curves(result.steps, result.history["d_loss"], result.history["g_loss"], fig_dir / "losses.png",
                         [result.seeds[i] for i in result.history_members],
                         (result.quantiles["d_loss"]["median"], result.quantiles["g_loss"]["median"]), groups=groups)
    if result.evals:
        plotting.metric_bands(result.eval_steps, {k[5:]: v for k, v in result.evals.items()},
                              fig_dir / "eval_metrics.png", {k[5:]: v for k, v in result.eval_stats.items()},
                              groups=groups)


class Task:
    """A family of data and how a run on it is measured and shown. Subclasses set the class attributes and
    override what differs; every method has a working default except `make_gan`."""

    name: str = ""
    description: str = ""
    presets: tuple[str, ...] = ()  # presets that train on this task; the first is the default
    default_seeds: int = 4
    metrics: tuple[Metric, ...] = ()  # every metric its evaluation may report

    # -- data and the GAN -------------------------------------------------------------------------------
    def add_flags(self, parser: argparse.ArgumentParser, cfg: Config) -> None:
        """The task's own command-line flags (its data), defaults from the preset's `cfg`."""

    def load(self, args: argparse.Namespace) -> Any:
        """The data the flags name (raise a GanJaxError naming the problem); None for formula data."""
        return None

    def configure(self, cfg: Config, args: argparse.Namespace, data: Any) -> Config:
        """The preset's config with the task's flags and the data's shape applied."""
        return cfg

    def make_gan(self, cfg: Config, data: Any) -> GAN:
        raise NotImplementedError

    def describe(self, data: Any) -> dict:
        """What config.json records about the data (its source, sizes)."""
        return {}

    # -- evaluation, samples, figures -----------------------------------------------------------------
    def scorer(self, cfg: Config, data: Any) -> Scorer | None:
        """How samples are scored (None: the task has no evaluation, or the data none)."""
        return None

    def evaluation(self, gan: GAN, data: Any) -> Evaluation | None:
        """The scorer applied to every member's encoded samples G(z) of `sample_latents`."""
        scorer = self.scorer(gan.cfg, data)
        if scorer is None:
            return None
        encode = self.encode(gan.cfg)
        z, labels = self.sample_latents(gan, data)
        if scorer.prepare is not None:
            scorer.prepare(len(z))

        def sample_metrics(samples, labels=None):  # one function object, so Sweep.evaluate compiles it once
            return scorer.fn(encode(samples), labels)

        return Evaluation(experiment.evaluator(z, sample_metrics, labels, scorer.metrics), scorer.metrics, scorer.ceiling,
                          scorer.provenance, scorer.note)

    def sample_latents(self, gan: GAN, data: Any = None) -> tuple[jax.Array, jax.Array | None]:
        """The latents of samples.npz: the evaluation's, so the file reproduces the run's final numbers."""
        return gan.sample_latent(stream_key("evaluation"), 1000)

    def encode(self, cfg: Config) -> Callable[[jax.Array], jax.Array]:
        """Generator outputs -> what samples.npz stores and the scorer reads (e.g. uint8 pixels); jax
        operations, since it runs inside the compiled evaluation too."""
        return lambda x: jnp.asarray(x, jnp.float32)

    def snapshots(self, gan: GAN) -> experiment.OnSnapshot | None:
        return None

    def write_figures(self, result: experiment.Result, gan: GAN, snapshots, members: Sequence[Member]) -> None:
        """Figures after the run (a collective in a multi-host run: called on every process)."""

    def summary_lines(self, result: experiment.Result) -> list[str]:
        """What the console shows at the end: speed, metrics over seeds beside the real-data ceiling."""
        lines = [experiment.throughput_line(result.summary), *evaluated_note(result.summary)]
        ceiling = result.summary.get("real_reference") or {}
        groups = result.summary.get("by_setting") or [{"setting": {}, "seeds": [],
                                                        "over_seeds": result.summary["over_seeds"]}]
        for group in groups:
            if len(groups) > 1:
                lines.append("  " + ", ".join(f"{k} {v:.3g}" for k, v in group["setting"].items())
                             + f" ({len(group['seeds'])} seeds):")
            for name, summary in group["over_seeds"].items():
                real = f"   (real data: {ceiling[name[5:]]:.4g})" if name[5:] in ceiling else ""
                lines.append(f"  {name[5:]:>17} over seeds: {stats.format_ci(summary)}{real}")
        return lines + [f"run directory: {result.run.path}"]

    # -- a run ------------------------------------------------------------------------------------------
    def train_and_evaluate(self, cfg: Config, members: Sequence[Member], out: str | pathlib.Path,
                           options: experiment.RunOptions, data: Any = None, extra_config: dict | None = None,
                           figures: bool = True, gan: GAN | None = None, **run_options) -> experiment.Result:
        """Train `members` on `data`, evaluate them at every snapshot, write samples.npz and the figures;
        summary.json carries the ceiling as `real_reference` and the protocol as `provenance`. `gan`
        replaces the task's own (a custom update rule or loss); `run_options` go to experiment.run (a
        population search's `controller`, an `initial_state`)."""
        gan = gan or self.make_gan(cfg, data)
        evaluation = self.evaluation(gan, data)
        if evaluation is not None and evaluation.note:
            print(evaluation.note)
        snapshots = self.snapshots(gan) if figures else None  # also the TensorBoard sample grids
        extra = {"task": self.name, **self.describe(data), **(extra_config or {})}
        if evaluation is not None:
            extra.update(real_reference=evaluation.ceiling, provenance=evaluation.provenance,
                         metrics={m.name: m.mode for m in evaluation.metrics})
        samples = experiment.Samples(*self.sample_latents(gan, data), self.encode(gan.cfg))
        result = experiment.run(gan, members, out, options, evaluate=evaluation and evaluation.evaluate,
                                on_snapshot=snapshots, extra_config=extra, samples=samples, **run_options)
        if result.run.primary and evaluation is not None:
            result.summary.update(real_reference=evaluation.ceiling, provenance=evaluation.provenance)
            result.run.write_json("summary.json", result.summary)
        if figures:
            self.write_figures(result, gan, snapshots, members)
        return result
