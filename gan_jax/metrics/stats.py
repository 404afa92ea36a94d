"""Summaries over seeds: retraining with a new seed moves GAN scores more than resampling does, so a
metric is reported as its mean over seeds with a 95% confidence interval (Student's t)."""
from __future__ import annotations

import numpy as np
import scipy.stats


def mean_ci95(values) -> dict[str, float]:
    """Mean and half-width of the 95% t-interval over finite values (half-width nan for fewer than 2)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "n": 0}
    half = scipy.stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": float(half), "n": int(v.size)}


def format_ci(summary: dict[str, float]) -> str:
    return f"{summary['mean']:.4g} +- {summary['ci95']:.2g} (n={summary['n']})"
