"""After the run: a finished (or stopped) run directory loaded back for a script: its config, members,
summary and logs, its state at the latest (or a given) checkpoint, its GAN, and samples from any member.

    run = gj.load("runs/dcgan")
    images = run.encode(run.generate(best="frechet_distance", n=1000))   # uint8, as samples.npz stores them

A run of a built-in task (or one whose task is importable, `--task module:attribute`) rebuilds its GAN
from config.json. A run with custom pieces takes the GAN it was trained with, `load(path, gan=...)`, and
checks it against the pieces config.json recorded (name and code hash), one line naming any that differ.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import jax
import numpy as np

from gan_jax import tasks
from gan_jax.components import losses, models
from gan_jax.core.config import Config, HParams
from gan_jax.core.gan import GAN, TrainState
from gan_jax.core.streams import stream_key
from gan_jax.data import toy
from gan_jax.engine import checkpoint, logs
from gan_jax.engine.members import Member, member_keys, stack_hparams
from gan_jax.engine.rundir import to_json
from gan_jax.engine.sweep import Sweep
from gan_jax.errors import CheckpointError, ConfigError, GanJaxError

DEFAULT_SAMPLES = 1000
GAN_PIECES = ("sampler", "generator", "discriminator", "loss", "penalty", "update_rule")


@dataclasses.dataclass
class Run:
    """A run directory, loaded: what a script needs to look at, sample from and compare a run."""

    path: pathlib.Path
    config: dict  # config.json
    cfg: Config  # the static settings it trained with
    members: list[Member]  # seeds and the hyperparameters each started with
    schedule: dict  # hyperparameter changes by step, as config.json records them
    summary: dict | None  # summary.json (None while it trains)
    gan: GAN
    task: Any  # its gan_jax.tasks.base.Task, when known
    sweep: Sweep
    state: TrainState | None  # member-stacked, at `step`; None without a checkpoint
    step: int | None

    @property
    def seeds(self) -> list[int]:
        return [m.seed for m in self.members]

    def logs(self) -> list[dict]:
        """Every logged row: one per (logged step, member) and per (evaluation, member)."""
        return list(logs.rows(self.path))

    def member(self, member: int | None = None, best: str | None = None, mode: str | None = None) -> int:
        """A member's index: `member` itself, or the best by the final value of the metric `best` (its
        direction `mode`, else config.json's `metrics`, else the metric's declaration); member 0 by default."""
        if best is None:
            index = 0 if member is None else member
            if not 0 <= index < len(self.members):
                raise ConfigError(f"`member`: {index} is not a member of this run (0-{len(self.members) - 1})")
            return index
        rows = (self.summary or {}).get("members", [])
        values = np.array([r.get(f"eval_{best}", np.nan) for r in rows], np.float64)
        if not rows or np.all(np.isnan(values)):
            raise ConfigError(f"`best`: this run has no final {best!r}; metrics it evaluated: "
                              f"{sorted(k[5:] for k in (rows or [{}])[0] if k.startswith('eval_'))}")
        mode = mode or self.config.get("metrics", {}).get(best) or getattr(tasks.metric(best), "mode", None)
        if mode not in ("max", "min"):
            raise ConfigError(f"`mode`: say whether {best!r} is better high or low ('max' or 'min'); no task "
                              "declares it and the run recorded no direction")
        return int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))

    def latents(self, n: int | None = None) -> tuple[jax.Array, jax.Array | None]:
        """The latents of the run's samples.npz (stored there, or the task's) when `n` is its count or None;
        else `n` from the evaluation stream."""
        count, stored = self._stored_latents()
        n = n or count or DEFAULT_SAMPLES
        if stored and len(stored[0]) == n:
            return stored
        if self.task is not None:
            z, labels = self.task.sample_latents(self.gan, None)
            if len(z) == n:
                return z, labels
        return self.gan.sample_latent(stream_key("evaluation"), n)

    def _stored_latents(self) -> tuple[int | None, tuple | None]:
        """(samples per member in samples.npz, the (z, labels) it was drawn from if stored); (None, None)
        without the file. One read of it."""
        path = self.path / "samples.npz"
        if not path.is_file():
            return None, None
        with np.load(path) as f:
            if "z" not in f.files:  # a file from before latents were stored: its count alone (a full read)
                return int(f["samples"].shape[1]), None
            z = jax.numpy.asarray(f["z"])
            return len(z), (z, jax.numpy.asarray(f["labels"]) if "labels" in f.files else None)

    def generate(self, member: int | None = None, best: str | None = None, n: int | None = None,
                 z: jax.Array | None = None, labels: jax.Array | None = None) -> np.ndarray:
        """Member `member`'s (or the `best` one's) samples G(z) from its generator average, as the run's
        evaluation draws them: [n, ...] in G's output space (`encode` stores them as the task does)."""
        if self.state is None:
            raise CheckpointError(f"{self.path} has no checkpoint to sample from; runs keep their final state "
                                  "unless RunOptions(final_checkpoint=False): train it again, or --resume it")
        index = self.member(member, best)
        if z is None:
            z, labels = self.latents(n)
        return np.asarray(self.sweep.gather(self.sweep.generate(self.state, z, labels)))[index]

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Samples as the run's task stores them (e.g. uint8 images); float32 without a known task."""
        return np.asarray(self.task.encode(self.cfg)(samples)) if self.task else np.asarray(samples, np.float32)


def load(run_dir: str | pathlib.Path, step: int | None = None, gan: GAN | None = None) -> Run:
    """The run in `run_dir` with its state at checkpoint `step` (default: the latest; None without one).
    `gan`: the GAN it was trained with, required when it used custom pieces (checked against config.json)."""
    path = pathlib.Path(run_dir)
    if not (path / "config.json").is_file():
        raise ConfigError(f"`run_dir`: {path} holds no config.json; give a run directory")
    config = json.loads((path / "config.json").read_text())
    task = _task(config)
    gan = _checked(gan, config) if gan is not None else _rebuild(config, task)
    members = [Member(seed, HParams(**hp)) for seed, hp in zip(config["seeds"], config["hparams"])]
    sweep = Sweep(gan, len(members))
    state, step = _state(path / "checkpoints", sweep, members, step)
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return Run(path, config, gan.cfg, members, config.get("schedule", {}), summary, gan, task, sweep, state, step)


def _task(config: dict):
    """The run's task object, if it can be found (built-in, registered, or importable as recorded)."""
    for name in (config.get("task_ref"), config.get("task")):
        if name:
            try:
                return tasks.get(name)
            except GanJaxError:
                continue
    return None


def _custom(config: dict) -> list[str]:
    return [role for role in GAN_PIECES if "sha256" in config.get("pieces", {}).get(role, {})]


def _checked(gan: GAN, config: dict) -> GAN:
    """`gan` if its pieces are the ones config.json recorded; else one line naming the first that differs."""
    recorded = config.get("pieces", {})
    for role, now in gan.pieces().items():
        same_code = now.get("sha256") is not None and now.get("sha256") == recorded.get(role, {}).get("sha256")
        if role in recorded and recorded[role] != now and not same_code:  # the code, whatever module ran it
            said = lambda p: p.get("name") + (f" (sha256 {p['sha256'][:12]})" if p.get("sha256") else "")  # noqa
            raise ConfigError(f"`gan`: its {role} is {said(now)} but the run was trained with {said(recorded[role])}; "
                              "pass the GAN the run was trained with")
    if json.loads(json.dumps(to_json(gan.cfg.to_dict()))) != config.get("config_as_built", config["config"]):
        raise ConfigError("`gan`: its config differs from the run's config.json; pass the GAN the run was trained with")
    return gan


def _rebuild(config: dict, task) -> GAN:
    """The run's GAN from config.json: its task's own when it has custom pieces, else built from the config.
    Its sampler is a stand-in (sampling needs G alone) that refuses to be drawn from, so nothing mistakes it
    for the run's data; an image run whose only custom piece is its data sampler is rebuilt so too."""
    cfg = Config.from_dict(config.get("config_as_built", config["config"]))
    custom = _custom(config)
    if custom and config.get("task_ref") and task is not None:
        return _checked(task.make_gan(cfg, None), config)
    if custom and (custom != ["sampler"] or not cfg.image_shape):
        raise ConfigError(f"`gan`: the run used custom pieces ({', '.join(custom)}); load it with the GAN it was "
                          "trained with: gj.load(path, gan=...)")
    if cfg.data in toy.TOY_DATASETS and not cfg.image_shape:
        return GAN.from_config(cfg)
    dim = int(np.prod(cfg.image_shape)) if cfg.image_shape else None
    if dim is None:
        raise ConfigError(f"`gan`: cannot tell the data's dimension of {cfg.data!r}; pass gj.load(path, gan=...)")
    generator, discriminator = models.make_models(cfg, dim)
    return GAN(cfg, _stand_in(config.get("pieces", {}).get("sampler", {}).get("name", cfg.data)), generator,
               discriminator, losses.LOSSES[cfg.loss])


def _stand_in(data: str):
    def sample(key, n):
        raise ConfigError(f"`gan`: this run was loaded without its data ({data}): G, D and their samples are the "
                          "run's, but drawing its data needs the GAN it was trained with: gj.load(path, gan=...)")
    return sample


def _state(directory: pathlib.Path, sweep: Sweep, members: list[Member], step: int | None):
    """(member-stacked state, step) at checkpoint `step` (default latest), or (None, None) without one."""
    if not directory.is_dir():
        if step is not None:
            raise CheckpointError(f"`step`: {directory} does not exist; this run kept no checkpoints")
        return None, None
    reader = checkpoint.Checkpointer(directory, keep=1_000_000, config={})
    steps = reader.steps()
    if step is None:
        step = reader.latest_step()
        if step is None:
            return None, None
    elif step not in steps:
        raise CheckpointError(f"`step`: no checkpoint at step {step} in {directory}; there are {steps}")
    reader.config = reader.saved_config(step)  # read as saved: this is not a resume, nothing to compare
    like = (sweep.init(member_keys([m.seed for m in members])), sweep.shard(stack_hparams([m.hparams for m in members])))
    (state, _), step = reader.restore(like, step)
    reader.close()
    return state, step


# -- samples files ------------------------------------------------------------------------------------------
RANGES = {"uint8": "0-255 pixels", "unit": "[0, 1]", "tanh": "[-1, 1]"}


def detect_range(samples: np.ndarray) -> str:
    """An image array's value range: uint8 pixels, floats in [-1, 1] (below 0 somewhere), 0-255 floats (above
    1 somewhere), else [0, 1]."""
    if samples.dtype == np.uint8:
        return "uint8"
    low, high = float(np.min(samples)), float(np.max(samples))
    return "tanh" if low < -1e-6 else "uint8" if high > 1 + 1e-6 else "unit"


def as_pixels(samples: np.ndarray, value_range: str) -> np.ndarray:
    """Images in `value_range` -> uint8 pixels, as a run's samples.npz stores them."""
    if value_range not in RANGES:
        raise ConfigError(f"`range`: unknown range {value_range!r}; choose one of {sorted(RANGES)}")
    x = np.asarray(samples, np.float64)
    unit = {"uint8": x / 255, "unit": x, "tanh": (x + 1) / 2}[value_range]
    return np.round(np.clip(unit, 0, 1) * 255).astype(np.uint8)


def read_samples(path: str | pathlib.Path, image_shape, value_range: str | None = None, dim: int | None = None):
    """(samples [members, n, dim] in a task's encoding, labels or None, a line saying what was read) from a
    run's samples.npz (`samples` [members, n, ...]), or any .npz / .npy of one array [n, ...] (another
    library's samples; images in 0-255, [0, 1] or [-1, 1], detected unless `value_range` says); other data
    must be `dim` wide."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"`file`: {path} not found; give a samples .npz or .npy")
    try:
        loaded = np.load(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"`file`: {path} cannot be read as .npz or .npy ({e})") from None
    arrays = {k: loaded[k] for k in loaded.files} if hasattr(loaded, "files") else {"samples": loaded}
    ours = "samples" in arrays and np.ndim(arrays.get("member")) == 1  # a run's samples.npz: [members, n, ...]
    samples = arrays.get("samples", next(iter(arrays.values())) if len(arrays) == 1 else None)  # or sample's

    if samples is None:
        raise ConfigError(f"`file`: {path} holds {sorted(arrays)}; give one array, or `samples`")
    given = samples.shape
    samples = samples if ours else samples[None]
    said = f"{path}: {samples.shape[0]} member(s) x {samples.shape[1]} samples"
    if image_shape is not None:
        size, (h, w, c) = int(np.prod(image_shape)), image_shape
        if samples.shape[2:] == (c, h, w) != (h, w, c):  # channels first, as PyTorch keeps images
            samples = np.moveaxis(samples, 2, -1)
            said += ", channels first (moved last)"
        if samples.shape[2:] not in {(size,), (h, w, c)} | ({(h, w), (1, h, w)} if c == 1 else set()):
            raise ConfigError(f"`file`: {path} holds an array of shape {given}, whose samples of shape "
                              f"{samples.shape[2:]} are not {tuple(image_shape)} images"
                              + ("" if ours else "; a .npy or one-array .npz holds one member's samples, [n, h, w, c], "
                                 "[n, c, h, w] or [n, h*w*c]; several members' go in an .npz as `samples` [members, n, "
                                 "...] with `member` [members], as a run's samples.npz"))
        found = detect_range(samples)
        used = value_range or found
        said += f", values read as {RANGES[used]}" + ("" if value_range else " (detected; --range to override)")
        samples = as_pixels(samples, used).reshape(samples.shape[:2] + (size,))
    else:
        samples = np.asarray(samples, np.float32).reshape(samples.shape[:2] + (-1,))
        if dim is not None and samples.shape[2] != dim:
            raise ConfigError(f"`file`: samples of width {samples.shape[2]} are not this task's {dim}-D data")
    return samples, arrays.get("labels"), said


def samples_run(path: str | pathlib.Path) -> tuple[dict, dict] | None:
    """(config.json, summary.json or {}) of the run whose samples.npz `path` is; None for any other file."""
    path = pathlib.Path(path)
    config_file, summary_file = path.parent / "config.json", path.parent / "summary.json"
    if path.name != "samples.npz" or not config_file.is_file():
        return None
    return json.loads(config_file.read_text()), json.loads(summary_file.read_text()) if summary_file.is_file() else {}


def samples_origin(path: str | pathlib.Path, run: tuple[dict, dict], task: str, data: str | None = None) -> str | None:
    """For a run's samples.npz and its records (`samples_run`): refuses samples a task would misread (a
    script's run without a task stores flat data as G draws it, not in the task's units) or score against
    other real data than the run's (`task` and `data`, the config's data, as the flags give them), and returns a
    line when the samples are not from the step summary.json's evaluations are (a run stopped between evaluations)."""
    config, summary = run
    if "task" not in config and not config["config"].get("image_shape"):
        raise ConfigError(f"`file`: {path} is from a run without a task (a script's gj.run): its samples are G's "
                          f"outputs as G draws them, not the {task} task's data units; score them with your own "
                          "function, or train with the task (Task.train_and_evaluate)")
    if config.get("task") not in (None, task):
        raise ConfigError(f"`--task`: {path} is from a run of the {config['task']} task, not {task}; give --task "
                          f"{config['task']} and the data flags the run had")
    if data is not None and config["config"].get("data") not in (None, data):
        raise ConfigError(f"data flags: {path} is from a run on {config['config']['data']}, and these flags give "
                          f"{data}; give the data flags the run had, so it is scored against its own real data")
    evaluated_at = summary.get("evaluated_at")
    with np.load(path) as stored:
        step = int(stored["step"]) if "step" in stored.files else None
    if None not in (step, evaluated_at) and step != evaluated_at:
        return (f"{pathlib.Path(path).name} holds the samples at step {step}, and summary.json's evaluations are "
                f"from step {evaluated_at} (the run stopped between evaluations): these scores are step {step}'s")
    return None


def with_sample_count(provenance: dict, samples: np.ndarray) -> dict:
    """A scorer's provenance with the number of samples each member was actually scored on (`samples`
    [members, n, ...]), which a file may hold more or fewer of than the run's evaluation."""
    return {**provenance, "samples": int(samples.shape[1])} if "samples" in provenance else provenance


def score(scorer, samples: np.ndarray, labels=None) -> dict[str, np.ndarray]:
    """{metric: [members]} of encoded samples [members, n, ...] by a task's scorer, member by member."""
    if samples.shape[1] < scorer.min_samples:
        raise ConfigError(f"`file`: {samples.shape[1]} samples per member, and this task's metrics need at least "
                          f"{scorer.min_samples}; draw more (experiments.sample --n {scorer.min_samples} or more)")
    if scorer.prepare is not None:
        scorer.prepare(samples.shape[1])
    fn = jax.jit(scorer.fn)
    per_member = [jax.device_get(fn(s, labels)) for s in samples]
    return {k: np.array([float(m[k]) for m in per_member]) for k in per_member[0]}
