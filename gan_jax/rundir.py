"""The run-directory contract shared by every experiment.

    config.json    resolved config (static settings, members' seeds and traced hyperparameters)
    metrics.jsonl  one JSON object per logged step per member: step, member, seed, hyperparameters, metrics
    summary.json   wall_s, compile_s, steps_per_s, seed_steps_per_s, members (final values per member)
    figures/       PNGs and GIFs
    checkpoints/   orbax checkpoints of the whole state, with --checkpoint-every
"""
from __future__ import annotations

import json
import math
import pathlib
from typing import Any, Iterable

import numpy as np


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


class RunDir:
    """Writes one run's files. Creating it makes the directory; nothing is written before that.

    `primary=False` (every process but the first of a multi-host run) writes nothing. `resume_step`
    keeps the metrics rows of steps before it, so a resumed run's metrics.jsonl reads as one run's."""

    def __init__(self, path: str | pathlib.Path, primary: bool = True, resume_step: int | None = None):
        self.path, self.primary = pathlib.Path(path), primary
        self.figures = self.path / "figures"
        self.metrics_path = self.path / "metrics.jsonl"
        if not primary:
            return
        self.figures.mkdir(parents=True, exist_ok=True)
        kept = [] if resume_step is None or not self.metrics_path.exists() else [
            line for line in self.metrics_path.read_text().splitlines()
            if line and json.loads(line)["step"] < resume_step]
        self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def write_json(self, name: str, payload: dict) -> pathlib.Path:
        path = self.path / name
        if self.primary:
            path.write_text(json.dumps(to_json(payload), indent=2) + "\n")
        return path

    def append_metrics(self, rows: Iterable[dict]) -> None:
        if not self.primary:
            return
        with self.metrics_path.open("a") as f:
            for row in rows:
                f.write(json.dumps(to_json(row)) + "\n")


def read_metrics(path: str | pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines() if line]
