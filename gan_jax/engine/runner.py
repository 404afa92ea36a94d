"""Host-side driver: runs a Sweep chunk by chunk, streams per-member metrics out, and times the run."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from gan_jax.core.config import HParams
from gan_jax.core.gan import TrainState
from gan_jax.engine.sweep import Sweep


def chunk_plan(steps: int, chunk: int, log_every: int) -> list[int]:
    """Chunk lengths summing to `steps`. Every chunk but the last is a multiple of `log_every`, so each
    chunk starts on a logged step and the logged steps are exactly the multiples of `log_every`."""
    if chunk % log_every:
        raise ValueError(f"chunk length {chunk} must be a multiple of log_every {log_every}")
    plan = [chunk] * (steps // chunk)
    if steps % chunk:
        plan.append(steps % chunk)
    return plan


@dataclasses.dataclass
class RunTimes:
    wall_s: float  # everything: checks, init, compiles, training, callbacks (set by the caller that did them)
    compile_s: float
    train_s: float  # the compiled runs alone
    steps: int
    n_members: int

    def summary(self) -> dict:
        """Speeds are None when nothing was trained (a run resumed at its last step, to finish its writing)."""
        trained = self.steps > 0
        return {"wall_s": self.wall_s, "compile_s": self.compile_s, "train_s": self.train_s,
                "steps_per_s": self.steps / self.train_s if trained else None,
                "seed_steps_per_s": self.steps * self.n_members / self.train_s if trained else None}


def train_members(sweep: Sweep, state: TrainState, hp: HParams, steps: int, chunk: int,
                  on_metrics: Callable[[dict[str, np.ndarray]], None] | None = None,
                  on_chunk: Callable[[TrainState, HParams], tuple[TrainState, HParams]] | None = None,
                  progress: bool = True, stop: Callable[[], bool] | None = None
                  ) -> tuple[TrainState, HParams, RunTimes]:
    """Run all members for up to `steps` steps in chunks; after each chunk, hand the host copy of its
    metrics to `on_metrics` and the state and hyperparameters to `on_chunk` (snapshots, checkpoints, a
    population search), which returns them, changed or not. Metrics leave the device chunk by chunk. When
    `stop()` says so after a chunk, return early (RunTimes.steps: the steps done)."""
    start = time.perf_counter()
    train_s, done = 0.0, 0
    with tqdm(total=steps, desc="train", unit="step", disable=not progress or None) as bar:
        for length in chunk_plan(steps, chunk, sweep.gan.cfg.log_every):
            sweep.compile(length)  # timed separately, once per distinct length
            t0 = time.perf_counter()
            state, metrics = sweep.run(state, hp, length)
            metrics = sweep.gather(metrics)  # blocks until the chunk is done
            train_s += time.perf_counter() - t0
            done += length
            if on_metrics:
                on_metrics(metrics)
            if on_chunk:
                state, hp = on_chunk(state, hp)
            bar.update(length)
            if stop is not None and done < steps and stop():
                break
    times = RunTimes(time.perf_counter() - start, sweep.compile_s, train_s, done, sweep.n_members)
    return state, hp, times
