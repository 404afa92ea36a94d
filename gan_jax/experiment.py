"""One experiment run end to end: run directory, all members in one Sweep, metrics, summary."""
from __future__ import annotations

import dataclasses
import math
import sys
from typing import Callable

import jax
import numpy as np

from gan_jax import checkpoint, rundir
from gan_jax.eval import stats
from gan_jax.cli import Experiment
from gan_jax.config import HParams
from gan_jax.runner import metric_rows, train_members
from gan_jax.sweep import Sweep, member_keys, stack_hparams
from gan_jax.train import GAN, TrainState

Evaluate = Callable[[Sweep, TrainState], dict[str, jax.Array]]


@dataclasses.dataclass
class Setup:
    """What an experiment script builds from its command line; `run` trains it, experiments.sweep grids it."""

    exp: Experiment
    gan: GAN
    evaluate: Evaluate | None = None  # sample-quality metrics of every member: {metric: [members]}
    extra_config: dict = dataclasses.field(default_factory=dict)  # recorded in config.json


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
        on_chunk: Callable[[Sweep, TrainState], None] | None = None, evaluate: Evaluate | None = None,
        members: list[tuple[int, HParams]] | None = None) -> Result:
    """Train every member of `exp` for `exp.cfg.steps` steps and write the run-directory contract.

    Members are `(seed, hparams)` pairs, by default `exp.seeds` with `exp.hparams`. Before training and
    after every `chunk` steps, `on_chunk(sweep, state)` sees the state (snapshots) and `evaluate(sweep,
    state) -> {metric: [members]}` measures it: each value becomes an `eval_<metric>` row in metrics.jsonl,
    the last ones go into summary.json with their mean +- 95% CI over seeds."""
    members = members or [(seed, exp.hparams) for seed in exp.seeds]
    seeds = [seed for seed, _ in members]
    hparams = [hp.to_dict() for _, hp in members]
    sweep = Sweep(gan, len(members))
    hp = stack_hparams([h for _, h in members])
    state = sweep.init(hp, member_keys(seeds))
    config = {"config": exp.cfg.to_dict(), "seeds": seeds, "hparams": hparams,
              "devices": [str(d) for d in jax.devices()], "processes": jax.process_count(), **(extra_config or {})}
    state, resume_step, checkpoints = _checkpoints(exp, sweep, state, {**exp.cfg.to_dict(), "seeds": seeds,
                                                                        "hparams": hparams})
    out = rundir.RunDir(exp.out, primary=jax.process_index() == 0, resume_step=resume_step)
    out.write_json("config.json", config)
    record = _Recorder(out, seeds, hparams)

    def at_boundary(state):
        step = int(sweep.gather(state.step)[0])
        if checkpoints and step not in (0, resume_step) and (step % exp.args.checkpoint_every == 0
                                                           or step == exp.cfg.steps):
            checkpoints.save(state, step)
        if step % chunk and step != exp.cfg.steps:
            return  # a checkpoint-only boundary
        if on_chunk:
            on_chunk(sweep, state)
        if evaluate:
            record.evaluation(step, sweep.gather(evaluate(sweep, state)))

    at_boundary(state)  # the untrained (or restored) state
    every = math.gcd(chunk, exp.args.checkpoint_every) if checkpoints else chunk
    state, times = train_members(sweep, state, hp, exp.cfg.steps - (resume_step or 0), every, record.train_metrics,
                                 at_boundary, progress=not exp.args.no_progress)
    if checkpoints:
        checkpoints.close()
    summary = record.summary(times.summary(), sweep, exp.cfg.steps)
    diverged_at = np.asarray(sweep.gather(state.diverged_at))
    for member, step in zip(summary["members"], diverged_at):
        member["diverged_at"] = int(step) if step >= 0 else None
    summary["diverged"] = [{"member": m["member"], "seed": m["seed"], "step": m["diverged_at"]}
                           for m in summary["members"] if m["diverged_at"] is not None]
    out.write_json("summary.json", summary)
    history, evals = record.stacked()
    return Result(state, sweep, out, history["step"][0], history, summary, np.asarray(record.eval_steps), evals)


def _checkpoints(exp: Experiment, sweep: Sweep, state: TrainState, config: dict):
    """(state, resumed step or None, Checkpointer or None): with --resume, the state of the latest complete
    checkpoint in <out>/checkpoints, after checking it was written for the same `config` (static settings,
    members' seeds and hyperparameters; only steps may change) and shapes."""
    if not (exp.args.checkpoint_every or exp.args.resume):
        return state, None, None
    checkpoints = checkpoint.Checkpointer(exp.out / "checkpoints", exp.args.keep, config)
    if not exp.args.resume:
        return state, None, checkpoints
    try:
        state, step = checkpoints.restore(state)
        if step > exp.cfg.steps:
            raise checkpoint.CheckpointError(f"the latest checkpoint is at step {step}, past --steps "
                                             f"{exp.cfg.steps}; pass --steps >= {step}")
    except checkpoint.CheckpointError as e:  # refuse before anything is written: one line, exit 2
        sys.stderr.write(f"error: --resume: {e}\n")
        sys.exit(2)
    print(f"resuming from the checkpoint at step {step} in {exp.out / 'checkpoints'}")
    return state, step, checkpoints


def throughput_line(summary: dict) -> str:
    """One line on how fast a run went (and which members diverged), for the console."""
    line = (f"{summary['n_members']} members x {summary['steps']} steps on {summary['devices']} device(s): "
            f"{summary['seed_steps_per_s']:,.0f} seed-steps/s, compile {summary['compile_s']:.1f} s, "
            f"wall {summary['wall_s']:.1f} s")
    if summary["diverged"]:
        line += "\ndiverged (frozen as they were at the step given): " + ", ".join(
            f"member {d['member']} (seed {d['seed']}) at step {d['step']}" for d in summary["diverged"])
    return line
