"""The run-directory contract shared by every experiment.

    config.json    resolved config (static settings, members' seeds and traced hyperparameters)
    metrics/       every member's metrics, one compressed numpy file per chunk (gan_jax.engine.logs)
    metrics.jsonl  for runs of at most 64 members: one JSON object per logged step per member
    summary.json   wall_s, compile_s, steps_per_s, seed_steps_per_s, members (final values per member)
    figures/       PNGs and GIFs
    checkpoints/   orbax checkpoints of the whole state: every RunOptions.checkpoint_every steps, and the final one
    samples.npz    every member's final samples, as the task stores them
    tensorboard/   event files: per member (up to 64), quantiles over members, hyperparameters, sample grids
"""
from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any

import numpy as np

from gan_jax.errors import CheckpointError, ConfigError, ResourceError


def to_json(value: Any) -> Any:
    """Plain JSON: numpy scalars and arrays to Python, non-finite floats to null."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def check_target(path: str | pathlib.Path, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse a run directory that cannot be used, before anything is written: one below a file or in an
    unwritable place, a non-empty one (unless overwriting or resuming), a resume without checkpoints."""
    path = pathlib.Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ResourceError(f"`out` {path} cannot be created: {existing} is a file, not a directory; "
                            "choose another `out`")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ResourceError(f"`out` {path} cannot be created: {existing} is not writable; choose another `out`")
    if resume:
        if not (path / "checkpoints").is_dir():
            raise CheckpointError(f"`resume`: {path / 'checkpoints'} does not exist; run with `checkpoint_every` "
                                  "first, or drop `resume`")
    elif path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ConfigError(f"`out` {path} exists and is not empty; choose another directory, pass `overwrite`, "
                          "or `resume` a checkpointed run")


class RunDir:
    """One run's directory. Creating it makes the directory; nothing is written before that.
    `primary=False` (every process but the first of a multi-host run) writes nothing."""

    def __init__(self, path: str | pathlib.Path, primary: bool = True):
        self.path, self.primary = pathlib.Path(path), primary
        self.figures = self.path / "figures"
        self.metrics_dir = self.path / "metrics"
        if primary:
            self.figures.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, payload: dict) -> pathlib.Path:
        path = self.path / name
        if self.primary:
            path.write_text(json.dumps(to_json(payload), indent=2) + "\n")
        return path


def read_metrics(path: str | pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line]
