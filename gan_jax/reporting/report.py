"""The sweep report: final metrics per hyperparameter setting as mean +- 95% CI over seeds (report.md), the
loss curves of every member faceted by setting, and each final metric against each swept hyperparameter."""
from __future__ import annotations

import math
import pathlib
from typing import Sequence

import numpy as np

from gan_jax.core.config import HParams
from gan_jax.engine.members import ALIASES, traced_names
from gan_jax.errors import ConfigError
from gan_jax.metrics import stats
from gan_jax.reporting.plotting import subplots


def setting_rows(group: dict, result, varied: list[str]) -> list[dict]:
    """One row per (static group, traced setting): its members and their final metrics over seeds. A
    setting is every traced hyperparameter swept (`varied`, aliases resolved) or differing between the
    group's members, so no row pools two settings, whatever `varied` names."""
    members = result.summary["members"]
    keys = [k for k in HParams.specs() if k in varied or any(k in ALIASES.get(v, ()) for v in varied)
            or len({float(np.float32(m[k])) for m in members}) > 1]
    by_setting: dict[tuple, list[dict]] = {}
    for m in members:
        by_setting.setdefault(tuple(float(np.float32(m[k])) for k in keys), []).append(m)
    metrics = [k for k in result.summary["members"][0] if k.startswith("eval_")] + ["d_loss", "g_loss"]
    rows = []
    for values, members in by_setting.items():
        rows.append({"group": group, "setting": {k: members[0][k] for k in keys},
                     "members": [m["member"] for m in members],
                     "seeds": len(members), "diverged": sum(m["diverged_at"] is not None for m in members),
                     "metrics": {k: stats.mean_ci95([m[k] for m in members]) for k in metrics}})
    return rows


def _check(results, varied) -> None:
    """One line for arguments that cannot make a report, before anything is written."""
    if not isinstance(results, list):
        raise ConfigError(f"`results`: a list of (group, result) pairs, not a {type(results).__name__}; pass "
                          "[({}, result)] for one run")
    for i, pair in enumerate(results):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ConfigError(f"`results`: a list of (group, result) pairs, but item {i} is a {type(pair).__name__}; "
                              "pass [({}, result)] for one run")
        if not isinstance(pair[0], dict):
            raise ConfigError(f"`results`: a group is a dict of the static settings its run differs by, not a "
                              f"{type(pair[0]).__name__}; pass [({{}}, result)] for one run, or "
                              "[({'loss': 'hinge'}, result), ...]")
    if isinstance(varied, str):
        raise ConfigError(f"`varied`: a list of hyperparameter names, e.g. [{varied!r}], not the str {varied!r}")
    if any(v not in traced_names() for v in varied):
        raise ConfigError(f"`varied`: a list of hyperparameter names, each one of {sorted(traced_names())}; "
                          f"got {varied!r}")


def _label(row: dict) -> str:
    parts = [f"{k}={v}" for k, v in row["group"].items()] + [f"{k}={v:.3g}" for k, v in row["setting"].items()]
    return ", ".join(parts) or "all"


def markdown(rows: list[dict], reference: dict | None) -> str:
    metrics = list(rows[0]["metrics"])
    head = ["setting", "seeds", "diverged"] + [m.removeprefix("eval_") for m in metrics]
    lines = ["# Sweep report", "", "Final values of each setting, mean +- 95% CI over its seeds (Student's t; the "
             "seeds column counts them); no row pools two settings.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{row['metrics'][m]['mean']:.4g} +- {row['metrics'][m]['ci95']:.2g}" for m in metrics]
        lines.append(f"| {_label(row)} | {row['seeds']} | {row['diverged']} | " + " | ".join(cells) + " |")
    if reference:
        cells = [f"{reference[m.removeprefix('eval_')]:.4g}" if m.removeprefix("eval_") in reference else ""
                 for m in metrics]
        lines.append("| real data (ceiling) | | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def loss_facets(rows: list[dict], results: dict, path: pathlib.Path) -> pathlib.Path:
    """D and G loss of every member whose curves the run kept (all, up to 64 members), one panel per setting."""
    cols = min(4, len(rows))
    fig, axes = subplots(math.ceil(len(rows) / cols), cols, figsize=(4 * cols, 3 * math.ceil(len(rows) / cols)),
                             squeeze=False, sharey=True)
    for ax, row in zip(axes.flat, rows):
        result = results[_label({"group": row["group"], "setting": {}})]
        sampled = {int(m): j for j, m in enumerate(result.history_members)}  # curves kept in memory
        for m in (m for m in row["members"] if m in sampled):
            ax.plot(result.steps, result.history["d_loss"][sampled[m]], c="tab:blue", lw=0.6, alpha=0.6)
            ax.plot(result.steps, result.history["g_loss"][sampled[m]], c="tab:orange", lw=0.6, alpha=0.6)
        ax.set_title(f"{_label(row)}: {row['seeds']} seeds", fontsize=8)
        ax.set_xlabel("step")
    axes.flat[0].legend(["D loss", "G loss"], fontsize=7)
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def metric_vs_hparam(rows: list[dict], path: pathlib.Path) -> pathlib.Path | None:
    """Each final metric against each swept hyperparameter, mean with 95% CI error bars; one line per
    combination of the other settings."""
    swept = [k for k in rows[0]["setting"] if len({r["setting"][k] for r in rows}) > 1]
    if not swept:
        return None
    metrics = list(rows[0]["metrics"])
    fig, axes = subplots(len(metrics), len(swept), figsize=(4 * len(swept), 2.6 * len(metrics)), squeeze=False)
    for j, h in enumerate(swept):
        lines: dict[str, list[dict]] = {}
        for r in rows:
            rest = {"group": r["group"], "setting": {k: v for k, v in r["setting"].items() if k != h}}
            lines.setdefault(_label(rest), []).append(r)
        for i, metric in enumerate(metrics):
            ax = axes[i, j]
            for label, line in lines.items():
                line = sorted(line, key=lambda r: r["setting"][h])
                x = [r["setting"][h] for r in line]
                y = [r["metrics"][metric]["mean"] for r in line]
                err = np.nan_to_num([r["metrics"][metric]["ci95"] for r in line])
                ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
            if HParams.specs()[h].log_scale:
                ax.set_xscale("log")
            ax.set(xlabel=h, ylabel=f"{metric.removeprefix('eval_')}, mean over seeds")
        axes[0, j].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write(out: pathlib.Path, results: list[tuple[dict, object]], varied: Sequence[str] = (),
          reference: dict | None = None) -> pathlib.Path:
    """Write `out`/report.md (a row per setting: its seeds' final metrics, mean +- 95% CI) and
    `out`/figures/{losses_by_setting,metrics_vs_hparams}.png for `results`, [(group, Result), ...]: each group
    a dict of the static settings its run differs by ({} for a single run). Settings are the traced
    hyperparameters that differ between a run's members; `varied` (hyperparameter names or aliases, e.g.
    ["lr"]) adds columns for swept ones that happen to be equal. Returns report.md's path."""
    _check(results, varied)
    rows = [row for group, result in results for row in setting_rows(group, result, varied)]
    figures = pathlib.Path(out) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    by_group = {_label({"group": g, "setting": {}}): r for g, r in results}
    loss_facets(rows, by_group, figures / "losses_by_setting.png")
    metric_vs_hparam(rows, figures / "metrics_vs_hparams.png")
    path = pathlib.Path(out) / "report.md"
    path.write_text(markdown(rows, reference))
    return path
