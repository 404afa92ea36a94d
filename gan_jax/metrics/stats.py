"""Summaries over seeds: retraining with a new seed moves GAN scores more than resampling does, so a
metric is reported as its mean over seeds with a 95% confidence interval (Student's t)."""
from __future__ import annotations

import numpy as np


def mean_ci95(values) -> dict[str, float]:
    """Mean and half-width of the 95% t-interval over finite values (half-width nan for fewer than 2)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "n": 0}
    half = t975(v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "ci95": float(half), "n": int(v.size)}


def t975(dof: int) -> float:
    """Student's t 97.5% quantile (the 95% interval's half-width per standard error)."""
    import scipy.stats  # here, not at import: it was a second of every entry point's start-up

    return float(scipy.stats.t.ppf(0.975, dof))


def welch_p(a, b) -> float:
    """Welch's t-test p-value of two samples' means (unequal variances)."""
    import scipy.stats

    return float(scipy.stats.ttest_ind(a, b, equal_var=False).pvalue)


def format_ci(summary: dict[str, float]) -> str:
    return f"{summary['mean']:.4g} +- {summary['ci95']:.2g} (n={summary['n']})"
