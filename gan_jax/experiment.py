"""One experiment run end to end: run directory, all members in one Sweep, metrics, summary."""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from gan_jax import rundir
from gan_jax.eval import stats
from gan_jax.cli import Experiment
from gan_jax.runner import metric_rows, train_members
from gan_jax.sweep import Sweep, member_keys, stack_hparams
from gan_jax.train import GAN, TrainState


@dataclasses.dataclass
class Result:
    state: TrainState  # final, member-stacked
    sweep: Sweep
    run: rundir.RunDir
    steps: np.ndarray  # logged steps
    history: dict[str, np.ndarray]  # metric -> [members, logs]
    summary: dict
    eval_steps: np.ndarray  # steps at which `evaluate` ran
    evals: dict[str, np.ndarray]  # eval_<metric> -> [members, evaluations]


def run(exp: Experiment, gan: GAN, chunk: int, extra_config: dict | None = None,
        on_chunk: Callable[[Sweep, TrainState], None] | None = None,
        evaluate: Callable[[Sweep, TrainState], dict[str, np.ndarray]] | None = None) -> Result:
    """Train every member of `exp` for `exp.cfg.steps` steps and write the run-directory contract.

    Before training and after every `chunk` steps, `on_chunk(sweep, state)` sees the state (snapshots)
    and `evaluate(sweep, state) -> {metric: [members]}` measures it: each value becomes an `eval_<metric>`
    row in metrics.jsonl, the last ones go into summary.json with their mean +- 95% CI over seeds."""
    out = rundir.RunDir(exp.out)
    hparams = [exp.hparams.to_dict() for _ in exp.seeds]
    out.write_json("config.json", {"config": exp.cfg.to_dict(), "seeds": list(exp.seeds),
                                   "hparams": hparams, "devices": [str(d) for d in jax.devices()],
                                   **(extra_config or {})})
    sweep = Sweep(gan, len(exp.seeds))
    hp = stack_hparams([exp.hparams] * len(exp.seeds))
    state = sweep.init(hp, member_keys(exp.seeds))
    history: dict[str, list[np.ndarray]] = {}

    def on_metrics(metrics):
        out.append_metrics(metric_rows(metrics, exp.seeds, hparams))
        for k, v in metrics.items():
            history.setdefault(k, []).append(np.asarray(v))

    evals: dict[str, list[np.ndarray]] = {}
    eval_steps: list[int] = []

    def at_boundary(state):
        if on_chunk:
            on_chunk(sweep, state)
        if evaluate:
            values = {f"eval_{k}": np.asarray(v) for k, v in jax.device_get(evaluate(sweep, state)).items()}
            step = int(jax.device_get(state.step)[0])
            out.append_metrics({"step": step, "member": i, "seed": seed, **hparams[i],
                                **{k: float(v[i]) for k, v in values.items()}} for i, seed in enumerate(exp.seeds))
            eval_steps.append(step)
            for k, v in values.items():
                evals.setdefault(k, []).append(v)

    at_boundary(state)  # the untrained state
    state, times = train_members(sweep, state, hp, exp.cfg.steps, chunk, on_metrics, at_boundary,
                                 progress=not exp.args.no_progress)
    history = {k: np.concatenate(v, axis=1) for k, v in history.items()}
    evals = {k: np.stack(v, axis=1) for k, v in evals.items()}  # [members, evaluations]
    final_eval = {k: v[:, -1] for k, v in evals.items()}
    members = [{"member": i, "seed": seed, **hparams[i],
                **{k: float(v[i, -1]) for k, v in history.items() if k != "step"},
                **{k: float(v[i]) for k, v in final_eval.items()}}
               for i, seed in enumerate(exp.seeds)]
    summary = {**times.summary(), "steps": exp.cfg.steps, "n_members": len(exp.seeds),
               "devices": len(sweep.mesh.devices.flat), "members": members,
               "over_seeds": {k: stats.mean_ci95(v) for k, v in final_eval.items()}}
    out.write_json("summary.json", summary)
    return Result(state, sweep, out, history["step"][0], history, summary, np.asarray(eval_steps), evals)
