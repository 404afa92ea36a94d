"""Runs side by side: per run and per setting (members that differ only in seed), a metric's final mean
+- 95% CI over seeds and n; each group's difference from the best group with Welch's t-test (resolved at
p < 0.05, the groups' seeds independent); the metric over steps, one band per group."""
from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from gan_jax import tasks
from gan_jax.engine import logs
from gan_jax.errors import ConfigError
from gan_jax.metrics import stats
from gan_jax.reporting import plotting

ALPHA = 0.05


@dataclasses.dataclass
class Group:
    """The members of one run that share a setting."""

    run: str
    step: int  # the run's last step
    provenance: dict | None  # what its metrics were computed from (summary.json)
    setting: dict  # the hyperparameters that differ between the run's members, at this group's values
    seeds: list[int]
    final: np.ndarray  # each member's final value of the metric
    steps: np.ndarray  # evaluation steps
    curve: np.ndarray  # [members, evaluations]

    @property
    def label(self) -> str:
        setting = ", ".join(f"{k} {v:.3g}" for k, v in self.setting.items())
        return f"{self.run}" + (f" ({setting})" if setting else "")


def run_groups(run_dir: str | pathlib.Path, metric: str) -> list[Group]:
    """A run's members grouped by their starting hyperparameters (those that differ within the run)."""
    path = pathlib.Path(run_dir)
    try:
        config = json.loads((path / "config.json").read_text())
        summary = json.loads((path / "summary.json").read_text())
    except OSError:
        raise ConfigError(f"`runs`: {path} holds no finished run (config.json and summary.json)") from None
    finals = np.array([m.get(f"eval_{metric}", np.nan) for m in summary["members"]], np.float64)
    if np.all(np.isnan(finals)):
        known = sorted(k[5:] for k in summary["members"][0] if k.startswith("eval_"))
        raise ConfigError(f"`metric`: run {path} has no {metric!r}; it has {known}")
    evals = logs.load(path)[1]
    steps, curves = evals.get("step", np.zeros(0)), evals.get(f"eval_{metric}", np.zeros((len(finals), 0)))
    groups = []
    for group in settings(config, summary):
        members = group["members"]
        groups.append(Group(path.name, summary["steps"], summary.get("provenance"), group["setting"],
                            [config["seeds"][i] for i in members], finals[members], steps, curves[members]))
    return groups


def settings(config: dict, summary: dict) -> list[dict]:
    """The run's settings ({"setting", "members"}): summary.json's `by_setting` (a PBT population is one,
    pooled by design), else the members grouped by the starting values that differ between them."""
    if summary.get("by_setting"):
        return summary["by_setting"]
    hparams = config["hparams"]
    varying = [k for k in hparams[0] if len({h[k] for h in hparams}) > 1]
    keys = sorted({tuple(h[k] for k in varying) for h in hparams})
    return [{"setting": dict(zip(varying, key)),
             "members": [i for i, h in enumerate(hparams) if tuple(h[k] for k in varying) == key]} for key in keys]


def scores_by_setting(config: dict, summary: dict, scores: dict[str, np.ndarray]) -> list[dict] | None:
    """Scores of a run's members (its config.json and summary.json) when they trained at several settings: per
    setting, {"setting", "members", "over_seeds": {metric: mean +- 95% CI}}, so that no interval pools two
    settings; None for a run of one setting, or scores of other than its members."""
    groups = settings(config, summary)
    if len(groups) < 2 or any(len(v) != len(config["seeds"]) for v in scores.values()):
        return None
    return [{"setting": g["setting"], "members": g["members"],
             "over_seeds": {k: stats.mean_ci95(np.asarray(v)[g["members"]]) for k, v in scores.items()}}
            for g in groups]


def p_text(p: float) -> str:
    """p to 3 significant digits, or as many more as it takes to stay on its side of ALPHA (0.04998, not 0.05)."""
    for digits in range(3, 10):
        text = f"{p:.{digits}g}"
        if (float(text) < ALPHA) == (p < ALPHA):
            return text
    return repr(p)


def direction(run_dirs, metric: str, mode: str | None) -> str:
    """"max" or "min": given, as the runs' config.json recorded it, or as the metric is declared."""
    if mode:
        return mode
    for path in run_dirs:
        recorded = json.loads((pathlib.Path(path) / "config.json").read_text()).get("metrics", {}).get(metric)
        if recorded:
            return recorded
    declared = tasks.metric(metric)
    if declared is None:
        raise ConfigError(f"`mode`: say whether {metric!r} is better high or low ('max' or 'min')")
    return declared.mode


def compare(groups: list[Group], mode: str) -> list[dict]:
    """Per group: mean +- 95% CI and n of the final values; the difference from the best group's mean and
    Welch's t-test of it (p, resolved at ALPHA; nan with fewer than 2 seeds a side)."""
    summaries = [stats.mean_ci95(g.final) for g in groups]
    means = np.array([s["mean"] for s in summaries])
    best = int(np.nanargmax(means) if mode == "max" else np.nanargmin(means))
    rows = []
    for i, (g, s) in enumerate(zip(groups, summaries)):
        a, b = g.final[np.isfinite(g.final)], groups[best].final[np.isfinite(groups[best].final)]
        p = (float("nan") if i == best or min(a.size, b.size) < 2
             else stats.welch_p(a, b))
        rows.append({"run": g.run, "step": g.step, "setting": g.setting, "seeds": g.seeds, **s, "best": i == best,
                     "difference": s["mean"] - summaries[best]["mean"], "p": p, "resolved": bool(p < ALPHA)})
    return rows


def markdown(rows: list[dict], metric: str, mode: str) -> str:
    lines = [f"{metric} ({'higher' if mode == 'max' else 'lower'} is better): final value over seeds; difference "
             f"from the best with Welch's t-test (resolved: p < {ALPHA})", "",
             "| run | step | setting | n | mean +- 95% CI | difference | p | resolved |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        setting = ", ".join(f"{k}={v:.3g}" for k, v in r["setting"].items()) or "-"
        vs = "best" if r["best"] else f"{r['difference']:+.4g}"
        p = "" if r["best"] else p_text(r["p"])
        lines.append(f"| {r['run']} | {r['step']} | {setting} | {r['n']} | {stats.format_ci(r).split(' (')[0]} | {vs} | {p} | "
                     f"{'' if r['best'] else 'yes' if r['resolved'] else 'no'} |")
    return "\n".join(lines) + "\n"


def cautions(groups: list[Group]) -> list[str]:
    """What makes the comparison unequal: runs that stopped at different steps, or whose metrics were
    computed from different protocols (feature network, reference data, sample counts)."""
    notes = []
    runs = {g.run: g for g in groups}.values()
    if len({g.step for g in runs}) > 1:
        notes.append("note: the runs stopped at different steps (" + ", ".join(f"{g.run} {g.step}" for g in runs)
                     + "); their final values are not at the same point of training")
    if len({json.dumps(g.provenance, sort_keys=True) for g in runs}) > 1:
        notes.append("note: the runs' metrics were computed from different protocols (summary.json's provenance "
                     "differs: feature network, reference data or sample counts); their values are not comparable")
    return notes


def figure(groups: list[Group], metric: str, path: pathlib.Path) -> pathlib.Path:
    """The metric over evaluation steps: each group's mean over its seeds, with a 95% band."""
    fig, ax = plotting.subplots(figsize=(8, 5))
    for g in groups:
        if g.curve.size == 0:
            continue
        band = [stats.mean_ci95(g.curve[:, j]) for j in range(g.curve.shape[1])]
        mean, half = np.array([b["mean"] for b in band]), np.nan_to_num(np.array([b["ci95"] for b in band]))
        line, = ax.plot(g.steps, mean, label=f"{g.label}: mean over {len(g.seeds)} seeds")
        ax.fill_between(g.steps, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
