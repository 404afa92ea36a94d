"""Per-member metrics at population scale: streamed to disk chunk by chunk, with only a bounded summary in
host memory, so a run's memory does not grow with members x steps.

On disk, under `<run>/metrics/` (numpy-native, compressed, appendable: one file per chunk):

    train_<first step>.npz   "step" [logs]; each training metric [members, logs] (float32)
    eval_<step>.npz          "step" []; each evaluation metric [members] (float32)

`load(run_dir)` reads them back as whole arrays; `rows(run_dir)` as one dict per (step, member).
`metrics.jsonl` (one JSON object per logged step per member, with seed and hyperparameters) is also
written for runs of at most JSONL_MAX_MEMBERS members, and TensorBoard's event files under
`<run>/tensorboard/` for every run (`gan_jax.reporting.tensorboard`: each member's curves and HPARAMS session
in runs of at most 64 members, quantiles over members at any size, sample grids).

In memory (`MetricLog`): the whole curves of at most SAMPLED_MEMBERS members spread over the population,
quantiles over all members per logged step, mean and 95% CI over all members per evaluation, and each
member's latest values (the summary).
"""
from __future__ import annotations

import json
import pathlib
from typing import Iterator, Sequence

import numpy as np

from gan_jax.engine.rundir import to_json
from gan_jax.metrics import stats
from gan_jax.reporting.tensorboard import TensorBoard

JSONL_MAX_MEMBERS = 64
SAMPLED_MEMBERS = 64
IMAGE_MEMBERS = 8  # members whose sample grids TensorBoard shows, spread over the population
QUANTILES = {"min": 0, "q05": 5, "q25": 25, "median": 50, "q75": 75, "q95": 95, "max": 100}


def sampled_members(n_members: int, k: int | None = None) -> np.ndarray:
    """At most k (default SAMPLED_MEMBERS) member indices, evenly spread (every member when there are few)."""
    k = SAMPLED_MEMBERS if k is None else k
    return np.unique(np.linspace(0, n_members - 1, min(k, n_members)).round().astype(int))


class MetricLog:
    """Writes a run's metrics (`train`, `evaluation`; sample grids with `images`) and keeps what figures and
    the summary need; `close` at the end. `directory` (`<run>/metrics`) None (every process but the first of
    a multi-host run) writes nothing. With `resume_step`, files from that step on are dropped and the earlier
    ones are read back into memory, so a resumed run's figures and summary cover the whole run. `tensorboard`
    False writes no `<run>/tensorboard/`."""

    def __init__(self, directory: pathlib.Path | None, seeds: Sequence[int], hparams: list[dict],
                 resume_step: int | None = None, jsonl: bool | None = None, tensorboard: bool = True):
        self.seeds, self.hparams, self.directory = list(seeds), hparams, directory
        self.members = sampled_members(len(self.seeds))
        self.jsonl = len(self.seeds) <= JSONL_MAX_MEMBERS if jsonl is None else jsonl
        self.steps: list[np.ndarray] = []
        self.curves: dict[str, list[np.ndarray]] = {}  # metric -> chunks of [sampled members, logs]
        self.quantiles: dict[str, list[np.ndarray]] = {}  # metric -> chunks of [len(QUANTILES), logs]
        self.eval_steps: list[int] = []
        self.eval_sampled: dict[str, list[np.ndarray]] = {}  # eval_<metric> -> [sampled members] per evaluation
        self.eval_stats: dict[str, list[dict]] = {}  # eval_<metric> -> mean_ci95 over members per evaluation
        self.latest: dict[str, np.ndarray] = {}  # metric -> [members], the latest logged value of each
        self.tensorboard: TensorBoard | None = None
        if directory is not None:
            self._prepare(directory, resume_step)
            if tensorboard:
                self.tensorboard = TensorBoard(directory.parent / "tensorboard", self.seeds, hparams,
                                               resume_step=resume_step)

    # -- disk -------------------------------------------------------------------------------------------
    @property
    def jsonl_path(self) -> pathlib.Path:
        return self.directory.parent / "metrics.jsonl"

    def _prepare(self, directory: pathlib.Path, resume_step: int | None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        kept_rows = []
        if resume_step is not None and self.jsonl_path.exists():
            kept_rows = [line for line in self.jsonl_path.read_text().splitlines()
                         if line and json.loads(line)["step"] < resume_step]
        if self.jsonl:
            self.jsonl_path.write_text("".join(line + "\n" for line in kept_rows))
        for path in sorted(directory.glob("*.npz")):
            if resume_step is None or _first_step(path) >= resume_step:
                path.unlink()  # a new run, or what a resumed run computes again
            else:
                self._remember(path)

    def _remember(self, path: pathlib.Path) -> None:
        with np.load(path) as f:
            values = {k: f[k] for k in f.files}
        if path.name.startswith("train_"):
            self._keep_train(values)
        else:
            step = int(values.pop("step"))
            self._keep_evaluation(step, values)

    def _write(self, name: str, arrays: dict[str, np.ndarray], rows) -> None:
        if self.directory is None:
            return
        np.savez_compressed(self.directory / name, **arrays)
        if self.jsonl:
            with self.jsonl_path.open("a") as f:
                f.writelines(json.dumps(to_json(row)) + "\n" for row in rows)

    # -- records ----------------------------------------------------------------------------------------
    def train(self, metrics: dict[str, np.ndarray]) -> None:
        """One chunk's training metrics, member-stacked: each [members, logs] (the same steps for all)."""
        steps = np.asarray(metrics["step"][0])
        values = {k: np.asarray(v, np.float32) for k, v in metrics.items() if k != "step"}
        self._write(f"train_{int(steps[0]):09d}.npz", {"step": steps, **values}, self._train_rows(steps, values))
        if self.tensorboard:
            self.tensorboard.train(steps, values, self.hparams)
        self._keep_train({"step": steps, **values})

    def _train_rows(self, steps, values) -> Iterator[dict]:
        for member, (seed, hp) in enumerate(zip(self.seeds, self.hparams)):
            for j, step in enumerate(steps):
                yield {"step": int(step), "member": member, "seed": int(seed), **hp,
                       **{k: float(v[member, j]) for k, v in values.items()}}

    def _keep_train(self, arrays: dict[str, np.ndarray]) -> None:
        self.steps.append(np.asarray(arrays["step"]))
        for name, value in arrays.items():
            if name == "step":
                continue
            self.curves.setdefault(name, []).append(value[self.members])
            with np.errstate(all="ignore"):
                q = np.nanpercentile(value, list(QUANTILES.values()), axis=0) if np.isfinite(value).any() else \
                    np.full((len(QUANTILES), value.shape[1]), np.nan)
            self.quantiles.setdefault(name, []).append(q)
            self.latest[name] = value[:, -1]

    def evaluation(self, step: int, values: dict[str, np.ndarray]) -> None:
        """Every member's evaluation at `step`: {metric: [members]}, recorded as eval_<metric>."""
        values = {k: np.asarray(v, np.float32) for k, v in values.items()}
        if self.tensorboard:
            self.tensorboard.evaluation(step, values, self.hparams)
        values = {f"eval_{k}": v for k, v in values.items()}
        rows = ({"step": step, "member": i, "seed": int(seed), **self.hparams[i],
                 **{k: float(v[i]) for k, v in values.items()}} for i, seed in enumerate(self.seeds))
        self._write(f"eval_{step:09d}.npz", {"step": np.asarray(step), **values}, rows)
        self._keep_evaluation(step, values)

    def images(self, step: int, tag: str, images: np.ndarray) -> None:
        """Every member's sample grid at `step`, member-stacked ([members, n, h, w] or [members, n, h, w, c],
        uint8 or floats in [0, 1]): TensorBoard shows those of IMAGE_MEMBERS members spread over the population."""
        if self.tensorboard:
            images = np.asarray(images)
            for member in sampled_members(len(self.seeds), IMAGE_MEMBERS):
                self.tensorboard.images(step, tag, images[member], member)

    def close(self) -> None:
        """End the run's files (TensorBoard's); nothing is written after."""
        if self.tensorboard:
            self.tensorboard.close()
            self.tensorboard = None

    def _keep_evaluation(self, step: int, values: dict[str, np.ndarray]) -> None:
        self.eval_steps.append(step)
        for name, value in values.items():
            self.eval_sampled.setdefault(name, []).append(value[self.members])
            self.eval_stats.setdefault(name, []).append(stats.mean_ci95(value))
            self.latest[name] = value

    # -- what figures and the summary read ------------------------------------------------------------------
    def history(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
        """(logged steps, {metric: [sampled members, logs]}, {metric: {quantile: [logs]}})."""
        steps = np.concatenate(self.steps) if self.steps else np.zeros(0, int)
        curves = {k: np.concatenate(v, axis=1) for k, v in self.curves.items()}
        quantiles = {k: dict(zip(QUANTILES, np.concatenate(v, axis=1))) for k, v in self.quantiles.items()}
        return steps, curves, quantiles

    def evaluations(self) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, list[dict]]]:
        """(evaluation steps, {eval_metric: [sampled members, evaluations]}, {eval_metric: mean_ci95 per
        evaluation over all members})."""
        return (np.asarray(self.eval_steps), {k: np.stack(v, axis=1) for k, v in self.eval_sampled.items()},
                self.eval_stats)


def _first_step(path: pathlib.Path) -> int:
    return int(path.stem.split("_")[1])


def load(run_dir: str | pathlib.Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A run's metrics from its `metrics/` files: ({"step": [logs], metric: [members, logs]},
    {"step": [evaluations], eval_metric: [members, evaluations]})."""
    directory = pathlib.Path(run_dir) / "metrics"
    train, evals = {}, {}
    for path in sorted(directory.glob("train_*.npz")):
        with np.load(path) as f:
            for k in f.files:
                train.setdefault(k, []).append(f[k])
    for path in sorted(directory.glob("eval_*.npz")):
        with np.load(path) as f:
            for k in f.files:
                evals.setdefault(k, []).append(f[k])
    return ({k: np.concatenate(v, axis=-1) for k, v in train.items()},
            {k: np.stack(v, axis=-1) for k, v in evals.items()})


def rows(run_dir: str | pathlib.Path) -> Iterator[dict]:
    """The `metrics/` files as one dict per (logged step, member) and per (evaluation, member), with the
    member's seed and hyperparameters from config.json: the rows metrics.jsonl holds for small runs."""
    config = json.loads((pathlib.Path(run_dir) / "config.json").read_text())
    train, evals = load(run_dir)
    for data in (train, evals):
        if not data:
            continue
        steps = data.pop("step")
        for member, (seed, hp) in enumerate(zip(config["seeds"], config["hparams"])):
            for j, step in enumerate(steps):
                yield {"step": int(step), "member": member, "seed": seed, **hp,
                       **{k: float(v[member, j]) for k, v in data.items()}}
