"""The MNIST task: images loaded offline from IDX files (or through tensorflow-datasets), held-out images
for the shipped classifier's metrics (`gan_jax.metrics.mnist`), and the image figures (sample grids every
snapshot, a GIF, every member's final grid, losses, metrics against step).

On MNIST's 10,000-image test split the GAN trains on 8,000 images and every 5th image (2,000) is held out
for the metrics; training on the train split, the held-out images come from the test split. Evaluation
and grid latents come from named random streams (`gan_jax.core.streams`).
"""
from __future__ import annotations

import dataclasses
import functools
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
from gan_jax.errors import DataError
from gan_jax.metrics import mnist as mnist_eval
from gan_jax.reporting import plotting
from gan_jax.tasks import base

SPLITS = ("auto", "train", "test")


@dataclasses.dataclass(frozen=True)
class MnistData:
    train: mnist.ImageData  # what the GAN trains on
    heldout: np.ndarray | None  # uint8 images the metrics compare against; None: no evaluation
    dataset: str
    split: str  # the split trained on
    source: str  # the directory or "tensorflow-datasets"
    note: str | None = None  # why there is no evaluation, when there could have been one


def load(dataset: str = "mnist", data_dir: str | pathlib.Path | None = None, split: str = "auto",
         evaluate: bool = True) -> MnistData:
    """The training images and, for MNIST with `evaluate`, the held-out images of the metrics. `split`
    "auto" trains on the train split if `data_dir` has it, else the test split."""
    if split not in SPLITS:
        raise DataError(f"`split`: unknown split {split!r}; choose one of {list(SPLITS)}")
    images, split = _load_split(dataset, data_dir, split)
    source = str(data_dir) if data_dir is not None else "tensorflow-datasets"
    if not evaluate or dataset != "mnist":  # the classifier knows digits only
        return MnistData(images, None, dataset, split, source)
    if split == "test":
        (train, train_labels), (heldout, _) = mnist_eval.heldout_split(images.images, images.labels)
        return MnistData(mnist.ImageData(train, train_labels), heldout, dataset, split, source)
    try:
        test = mnist.load(dataset, "test", data_dir)
    except DataError as e:
        return MnistData(images, None, dataset, split, source,
                         f"no evaluation: the held-out reference comes from the test split, which is missing ({e})")
    return MnistData(images, mnist_eval.heldout_split(test.images, test.labels)[1][0], dataset, split, source)


def _load_split(dataset: str, data_dir, split: str) -> tuple[mnist.ImageData, str]:
    splits = ["train", "test"] if split == "auto" and data_dir is not None else ["train" if split == "auto" else split]
    missing = None
    for name in splits:
        try:
            return mnist.load(dataset, name, data_dir), name
        except DataError as e:
            if "not found" not in str(e):  # a broken file is reported, not skipped
                raise
            missing = missing or e
    raise missing


def scale_of(cfg: Config) -> str:
    """Pixels are scaled to a sigmoid generator's [0, 1], else to tanh's [-1, 1]."""
    return "sigmoid" if cfg.generator.output_activation == "sigmoid" else "tanh"


def to_unit(cfg: Config, x):
    """Generator outputs -> images in [0, 1]."""
    return (x + 1) / 2 if scale_of(cfg) == "tanh" else x


def make_gan(cfg: Config, data: MnistData) -> GAN:
    labels = data.train.labels if cfg.num_classes else None
    sampler = mnist.image_sampler(data.train.images, scale_of(cfg), labels, record_data=False)
    return GAN.from_config(cfg, sampler, data_dim=int(np.prod(data.train.images.shape[1:])))


def evaluation_latents(gan: GAN, n: int = mnist_eval.EVAL_SAMPLES) -> tuple[jax.Array, jax.Array | None]:
    return gan.sample_latent(stream_key("evaluation"), n)


def as_uint8(cfg: Config):
    """Generator outputs -> uint8 pixels, as samples.npz stores them and the metrics read them."""
    return lambda x: jnp.round(jnp.clip(to_unit(cfg, jnp.asarray(x)), 0, 1) * 255).astype(jnp.uint8)


QUANTIZED = "8-bit pixels (uint8), as samples.npz stores them"


def evaluator(gan: GAN, data: MnistData) -> tuple[experiment.Evaluate, dict[str, float]]:
    """(`evaluate` for experiment.run, the real-data ceiling of the same metrics)."""
    evaluation = TASK.evaluation(gan, data)
    return evaluation.evaluate, evaluation.ceiling


def scorer(data: MnistData) -> base.Scorer:
    """The shipped classifier's metrics of uint8 images against the held-out ones; the training images'
    the ceiling."""
    params = mnist_eval.load_classifier()
    heldout = mnist_eval.to_unit(data.heldout)
    metrics = functools.lru_cache(lambda n: mnist_eval.metrics_fn(params, heldout, n_samples=n))  # per count
    ceiling = mnist_eval.real_reference(params, heldout, mnist_eval.to_unit(data.train.images))
    reference = (f"{data.dataset} {data.split} split's held-out images" if data.split == "test"
                 else "the test split's held-out images")
    provenance = {**mnist_eval.provenance(len(data.heldout), reference), "samples_read_as": QUANTIZED}
    return base.Scorer(lambda images, labels=None: metrics(len(images))(images.astype(jnp.float32) / 255, labels),
                       mnist_eval.METRICS, ceiling, provenance, prepare=metrics)


def grid_latents(gan: GAN) -> tuple[jax.Array, jax.Array | None]:
    """Fixed grid inputs: 64 noise vectors, or for a conditional GAN 8 per digit, one row per digit."""
    key = stream_key("snapshots")
    if not gan.cfg.num_classes:
        return gan.sample_noise(key, 64), None
    z = gan.sample_noise(key, 8)
    return jnp.tile(z, (gan.cfg.num_classes, 1)), jnp.repeat(jnp.arange(gan.cfg.num_classes), 8)


def image_view(cfg: Config) -> tuple[int, ...]:
    """The shape one image is drawn in: (h, w) for one channel, (h, w, c) otherwise."""
    h, w, c = cfg.image_shape
    return (h, w) if c == 1 else (h, w, c)


class Snapshots:
    """`on_snapshot` for experiment.run: the first member's grid at every snapshot, every member's latest."""

    def __init__(self, gan: GAN):
        self.cfg = gan.cfg
        self.z, self.labels = grid_latents(gan)
        self.first: list[tuple[int, np.ndarray]] = []
        self.latest: list[np.ndarray] = []

    def __call__(self, sweep: Sweep, state: TrainState) -> dict[str, np.ndarray]:
        fake = to_unit(self.cfg, np.asarray(sweep.gather(sweep.generate(state, self.z, self.labels))))
        fake = fake.reshape((sweep.n_members, -1) + image_view(self.cfg))
        self.first.append((int(sweep.gather(state.step)[0]), fake[0]))
        self.latest = list(fake)
        return {"samples": fake}  # every member's grid, for TensorBoard


def write_figures(result: experiment.Result, cfg: Config, snapshots: Snapshots) -> None:
    fig_dir, seeds = result.run.figures, result.seeds
    base.curve_figures(result)
    rows = cfg.num_classes or 8  # conditional: one row per digit
    for step, images in snapshots.first:
        if not cfg.num_classes:
            plotting.image_grid(images[:16], fig_dir / f"grid4x4_step{step:07d}.png", 4, f"step {step}")
        plotting.image_grid(images, fig_dir / f"grid{rows}x8_step{step:07d}.png", rows, f"step {step}")
    plotting.image_gif(snapshots.first, fig_dir / "samples.gif", rows, title=f"seed {seeds[0]}")
    for seed, images in zip(seeds, snapshots.latest):
        plotting.image_grid(images, fig_dir / f"final_seed{seed}.png", rows,
                            f"seed {seed}, step {result.summary['steps']}")


class MnistTask(base.Task):
    """MNIST (or another IDX / tensorflow-datasets digit set) with the shipped classifier's metrics."""

    name = "mnist"
    description = "MNIST digits (IDX files offline, or tensorflow-datasets), scored by the shipped classifier"
    presets = tuple(name for name, p in presets.PRESETS.items() if p.task == "mnist")
    metrics = mnist_eval.METRICS

    def add_flags(self, parser, cfg: Config) -> None:
        add = parser.add_argument
        add("--dataset", choices=list(mnist.TFDS_NAMES), default="mnist", help="dataset")
        add("--data-dir", default=None, help="directory of IDX files (offline); default: tensorflow-datasets")
        add("--split", choices=list(SPLITS), default="auto", help="split to read; auto: train if present, else test")
        add("--no-eval", action="store_true", help="skip the classifier metrics")

    def configure(self, cfg: Config, args, data: MnistData) -> Config:
        return cfg.replace(data=args.dataset)

    def load(self, args) -> MnistData:
        data = load(args.dataset, args.data_dir, args.split, evaluate=not args.no_eval)
        held = f"; {len(data.heldout)} held out for the metrics" if data.heldout is not None else ""
        print(f"{data.dataset}/{data.split} from {data.source}: {len(data.train.images)} training images{held}")
        if data.note:
            print(data.note)
        return data

    def make_gan(self, cfg: Config, data: MnistData) -> GAN:
        return make_gan(cfg, data)

    def describe(self, data: MnistData) -> dict:
        return {"dataset": data.dataset, "split": data.split, "source": data.source,
                "train_images": len(data.train.images),
                "heldout_images": None if data.heldout is None else len(data.heldout)}

    def scorer(self, cfg: Config, data: MnistData) -> base.Scorer | None:
        return None if data.heldout is None else scorer(data)

    def sample_latents(self, gan: GAN, data=None):
        return evaluation_latents(gan)

    def encode(self, cfg: Config):
        return as_uint8(cfg)

    def snapshots(self, gan: GAN) -> Snapshots:
        return Snapshots(gan)

    def write_figures(self, result, gan: GAN, snapshots, members) -> None:
        if result.run.primary:
            write_figures(result, gan.cfg, snapshots)


TASK = MnistTask()


def train_and_evaluate(cfg: Config, members: Sequence[Member], out: str | pathlib.Path,
                       options: experiment.RunOptions, data: MnistData,
                       extra_config: dict | None = None, figures: bool = True, **run_options) -> experiment.Result:
    """Train `members` on `data`, measure them with the classifier (when `data.heldout` is set) at every
    snapshot, draw the figures; summary.json carries the real-data ceiling as `real_reference`."""
    return TASK.train_and_evaluate(cfg, members, out, options, data, extra_config, figures, **run_options)


def summary_lines(result: experiment.Result) -> list[str]:
    return TASK.summary_lines(result)
