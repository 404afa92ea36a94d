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


class _Recorder:
    """Host-side record of a run: streams rows to metrics.jsonl and keeps what figures and summary need."""

    def __init__(self, out: rundir.RunDir, seeds, hparams: list[dict]):
        self.out, self.seeds, self.hparams = out, seeds, hparams
        self.history: dict[str, list[np.ndarray]] = {}
        self.evals: dict[str, list[np.ndarray]] = {}
        self.eval_steps: list[int] = []

    def train_metrics(self, metrics: dict[str, np.ndarray]) -> None:
        self.out.append_metrics(metric_rows(metrics, self.seeds, self.hparams))
        for k, v in metrics.items():
            self.history.setdefault(k, []).append(np.asarray(v))

    def evaluation(self, step: int, values: dict[str, np.ndarray]) -> None:
        values = {f"eval_{k}": np.asarray(v) for k, v in values.items()}
        self.out.append_metrics({"step": step, "member": i, "seed": seed, **self.hparams[i],
                                 **{k: float(v[i]) for k, v in values.items()}}
                                for i, seed in enumerate(self.seeds))
        self.eval_steps.append(step)
        for k, v in values.items():
            self.evals.setdefault(k, []).append(v)

    def stacked(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(metric -> [members, logs], eval_metric -> [members, evaluations])."""
        return ({k: np.concatenate(v, axis=1) for k, v in self.history.items()},
                {k: np.stack(v, axis=1) for k, v in self.evals.items()})

    def summary(self, times: dict, sweep: Sweep, steps: int) -> dict:
        history, evals = self.stacked()
        final = {k: v[:, -1] for k, v in {**history, **evals}.items() if k != "step"}
        members = [{"member": i, "seed": seed, **self.hparams[i], **{k: float(v[i]) for k, v in final.items()}}
                   for i, seed in enumerate(self.seeds)]
        return {**times, "steps": steps, "n_members": len(self.seeds), "devices": sweep.mesh.devices.size,
                "members": members, "over_seeds": {k: stats.mean_ci95(v[:, -1]) for k, v in evals.items()}}


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
    record = _Recorder(out, exp.seeds, hparams)

    def at_boundary(state):
        if on_chunk:
            on_chunk(sweep, state)
        if evaluate:
            record.evaluation(int(jax.device_get(state.step)[0]), jax.device_get(evaluate(sweep, state)))

    at_boundary(state)  # the untrained state
    state, times = train_members(sweep, state, hp, exp.cfg.steps, chunk, record.train_metrics, at_boundary,
                                 progress=not exp.args.no_progress)
    summary = record.summary(times.summary(), sweep, exp.cfg.steps)
    diverged_at = np.asarray(jax.device_get(state.diverged_at))
    for member, step in zip(summary["members"], diverged_at):
        member["diverged_at"] = int(step) if step >= 0 else None
    summary["diverged"] = [{"member": m["member"], "seed": m["seed"], "step": m["diverged_at"]}
                           for m in summary["members"] if m["diverged_at"] is not None]
    out.write_json("summary.json", summary)
    history, evals = record.stacked()
    return Result(state, sweep, out, history["step"][0], history, summary, np.asarray(record.eval_steps), evals)


def throughput_line(summary: dict) -> str:
    """One line on how fast a run went (and which members diverged), for the console."""
    line = (f"{summary['n_members']} members x {summary['steps']} steps on {summary['devices']} device(s): "
            f"{summary['seed_steps_per_s']:,.0f} seed-steps/s, compile {summary['compile_s']:.1f} s, "
            f"wall {summary['wall_s']:.1f} s")
    if summary["diverged"]:
        line += "\ndiverged (frozen at their last finite state): " + ", ".join(
            f"member {d['member']} (seed {d['seed']}) at step {d['step']}" for d in summary["diverged"])
    return line
