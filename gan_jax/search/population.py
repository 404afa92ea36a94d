"""Population search inside one compiled program: population-based training (Jaderberg et al. 2017) and
successive halving (Li et al. 2018) over the traced hyperparameters.

PBT: every `ready` steps, after an evaluation, members are ranked by a metric; the worst `truncation`
fraction copy the learned state (both nets, G's average, both optimizer states, batch-norm and
spectral-norm statistics) of members drawn from the best fraction (exploit) and perturb the copied
hyperparameters (explore: times 0.8 or 1.25, or with probability `resample` a fresh draw from the search
range; clipped to it). A member keeps its own PRNG key, so a copy diverges from its source at once; a
diverged member ranks last. The copy is a gather along the sharded member axis, on the devices; the
decision is made on the host from gathered metrics, from a random stream of its own (`seed`, the step),
so it is the same on every process, in every run of the same command, and again after a resume.

Successive halving: rungs end at steps r, r eta, r eta^2, ...; at each rung the best 1/eta of the members
go on, re-laid out on the devices as a smaller Sweep (one compile per rung).
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Callable, Sequence

import jax
import numpy as np

from gan_jax.core.config import HParams, Traced
from gan_jax.core.gan import TrainState
from gan_jax.engine.members import Member
from gan_jax.engine.rundir import to_json
from gan_jax.engine.sweep import Sweep
from gan_jax import tasks
from gan_jax.errors import ConfigError

# The search range of each traced hyperparameter: where PBT resamples and what it clips to.
SEARCH = {"lr_g": (1e-5, 1e-2), "lr_d": (1e-5, 1e-2), "beta1": (0.0, 0.95), "beta2": (0.9, 0.9999),
          "real_label": (0.7, 1.0), "gp_weight": (0.0, 100.0), "ema_decay": (0.0, 0.9999), "augment_p": (0.0, 1.0)}


def direction(metric: str, mode: str | None = None) -> str:
    """"max" or "min": given, or as the metric's declaration says (`gan_jax.metrics.metric.Metric`, found in
    the built-in and registered tasks)."""
    if mode is not None:
        if mode not in ("max", "min"):
            raise ConfigError(f"`mode`: must be 'max' or 'min', got {mode!r}")
        return mode
    declared = tasks.metric(metric)
    if declared is None:
        raise ConfigError(f"`mode`: say whether {metric!r} is to be maximized or minimized ('max' or 'min'), "
                          "or declare it in your task's `metrics`")
    return declared.mode


@dataclasses.dataclass(frozen=True)
class PBTOptions:
    metric: str  # an evaluation's metric (without eval_), e.g. "high_quality"
    ready: int  # steps between exploit/explore rounds: a multiple of the run's snapshot interval
    mode: str | None = None  # "max" or "min"; None: the metric's known direction
    truncation: float = 0.25  # the worst fraction copies from the best fraction; 0: no copies (a plain sweep)
    explore: tuple[str, ...] = ("lr_g", "lr_d")  # the hyperparameters it perturbs
    perturb: tuple[float, float] = (0.8, 1.25)
    resample: float = 0.25  # probability that an explored value is drawn afresh from its search range
    bounds: dict = dataclasses.field(default_factory=dict)  # name -> (low, high); default SEARCH
    seed: int = 0  # of the decisions' random stream

    def check(self, snapshot_every: int | None) -> None:
        specs = HParams.specs()
        for name in self.explore:
            if name not in specs:
                raise ConfigError(f"`explore`: {name!r} is not a traced hyperparameter; choose from {sorted(specs)}")
            low, high = self.bound(name)
            if not low < high:
                raise ConfigError(f"`bounds`: {name}'s search range needs low < high, got {low}, {high}")
        if not 0 <= self.truncation <= 0.5:
            raise ConfigError(f"`truncation`: must be in [0, 0.5], got {self.truncation}")
        if not 0 <= self.resample <= 1:
            raise ConfigError(f"`resample`: must be in [0, 1], got {self.resample}")
        if not snapshot_every or self.ready % snapshot_every:
            raise ConfigError(f"`ready` {self.ready} must be a multiple of `snapshot_every` {snapshot_every}: "
                              "members are ranked on an evaluation")
        direction(self.metric, self.mode)

    def bound(self, name: str) -> tuple[float, float]:
        return tuple(self.bounds.get(name, SEARCH[name]))


def _clip(value: float, low: float, high: float, spec: Traced) -> float:
    value = float(np.clip(value, low, high))
    if not spec.contains(value):  # an open end of the valid range: step inside it
        value = float(np.nextafter(value, low if value >= high else high))
    return value


def draw(name: str, low: float, high: float, rng: np.random.Generator) -> float:
    """A fresh value in [low, high]: log-uniform for a log-scale hyperparameter with low > 0, else uniform."""
    if HParams.specs()[name].log_scale and low > 0:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def decide(values: np.ndarray, diverged: np.ndarray, hp: dict[str, np.ndarray], options: PBTOptions,
           rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(source of each member's next state, each member's next hyperparameters): truncation selection.
    Members are ranked by `values` (a diverged member or a non-finite value ranks last); each of the
    worst `truncation` fraction copies a member drawn from the best fraction and explores its values, if
    that member ranks strictly better (a tie, e.g. all at 0 early on, is no evidence to act on)."""
    n = len(values)
    score = -values if direction(options.metric, options.mode) == "min" else values
    score = np.where(diverged | ~np.isfinite(score), -np.inf, score)
    order = np.argsort(score, kind="stable")
    cut = int(n * options.truncation)
    sources, new = np.arange(n), {k: np.array(v, np.float64) for k, v in hp.items()}
    specs = HParams.specs()
    for member in order[:cut]:
        source = int(rng.choice(order[n - cut:]))
        if not score[source] > score[member]:
            continue
        sources[member] = source
        for name in hp:
            value = hp[name][source]
            if name in options.explore:
                low, high = options.bound(name)
                value = draw(name, low, high, rng) if rng.random() < options.resample else \
                    value * options.perturb[int(rng.integers(2))]
                value = _clip(value, low, high, specs[name])
            new[name][member] = value
    return sources, {k: v.astype(np.float32) for k, v in new.items()}


class PBT:
    """The controller `experiment.run` calls after each evaluation; writes population.jsonl."""

    def __init__(self, options: PBTOptions, members: Sequence[Member], log_path: pathlib.Path | None):
        self.options, self.seeds, self.log_path = options, [m.seed for m in members], log_path
        self.initial = [m.hparams.to_dict() for m in members]
        self.records: list[dict] = []

    def restart(self, resume_step: int | None) -> None:
        """A new run, or a resumed one: keep the decisions made before `resume_step` (it makes the later
        ones again, the same way)."""
        if self.log_path is None:
            return
        old = [] if resume_step is None or not self.log_path.exists() else [
            json.loads(line) for line in self.log_path.read_text().splitlines() if line]
        self.records = [r for r in old if r["step"] < (resume_step or 0)]
        self.log_path.write_text("".join(json.dumps(to_json(r)) + "\n" for r in self.records))

    def __call__(self, step: int, sweep: Sweep, state: TrainState, hp: HParams,
                 evaluation: dict[str, np.ndarray]) -> tuple[TrainState, HParams]:
        if step == 0 or step % self.options.ready or self.options.truncation == 0:
            return state, hp
        if self.options.metric not in evaluation:
            raise ConfigError(f"`metric`: the evaluation has no {self.options.metric!r}; choose from {sorted(evaluation)}")
        values = np.asarray(evaluation[self.options.metric], np.float64)
        diverged = np.asarray(sweep.gather(state.diverged_at)) >= 0
        rng = np.random.default_rng([self.options.seed, step])
        old = {k: np.asarray(v) for k, v in hp.to_dict().items()}
        sources, new = decide(values, diverged, old, self.options, rng)
        copied = np.flatnonzero(sources != np.arange(len(sources)))
        self._record(step, copied, sources, values, old, new)
        if len(copied):
            state = sweep.copy_members(state, sources)
        return state, HParams(**new)

    def _record(self, step, copied, sources, values, old, new) -> None:
        rows = [{"step": step, "member": int(i), "seed": self.seeds[i], "source": int(sources[i]),
                 "source_seed": self.seeds[sources[i]], "metric": self.options.metric, "value": float(values[i]),
                 "source_value": float(values[sources[i]]), "old": {k: float(v[i]) for k, v in old.items()},
                 "new": {k: float(v[i]) for k, v in new.items()}} for i in copied]
        self.records += rows
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.writelines(json.dumps(to_json(r)) + "\n" for r in rows)

    def schedules(self) -> list[list[dict]]:
        """Each member's hyperparameters over the run: [{"step": 0, ...initial}, {"step": s, ...new}, ...]."""
        out = [[{"step": 0, **hp}] for hp in self.initial]
        for r in self.records:
            out[r["member"]].append({"step": r["step"], **r["new"], "copied_from": r["source"]})
        return out

    def lineage(self, member: int) -> list[dict]:
        """`member`'s ancestry, latest first: at each step where the state it carries was copied, from whom."""
        chain, current, step = [], member, math.inf
        for r in sorted(self.records, key=lambda r: -r["step"]):
            if r["member"] == current and r["step"] < step:
                chain.append({"step": r["step"], "member": current, "from": r["source"]})
                current, step = r["source"], r["step"]
        return chain


# -- successive halving -------------------------------------------------------------------------------------
def rung_ends(r: int, eta: int, n_members: int) -> list[tuple[int, int]]:
    """[(step at the rung's end, members in the rung)]: r, r eta, ... while at least one member goes on."""
    if r < 1 or eta < 2:
        raise ConfigError(f"successive halving needs `r` >= 1 and `eta` >= 2, got r={r}, eta={eta}")
    rungs, n, k = [], n_members, 0
    while n >= 1:
        rungs.append((r * eta ** k, n))
        if n == 1:
            break
        n, k = n // eta, k + 1
    return rungs


def survivors(values: np.ndarray, diverged: np.ndarray, keep: int, mode: str) -> np.ndarray:
    """Indices of the best `keep` members (a diverged member or a non-finite value last), best first;
    ties keep the lower index."""
    score = -values if mode == "min" else values
    score = np.where(diverged | ~np.isfinite(score), -np.inf, score)
    return np.argsort(-score, kind="stable")[:keep]


def select_state(sweep: Sweep, state: TrainState, keep: np.ndarray) -> TrainState:
    """The kept members' state, on the host, in `keep`'s order (the next rung shards it on its devices)."""
    return jax.tree.map(lambda a: a[keep], sweep.gather(state))  # typed keys index like arrays


def successive_halving(run_rung: Callable, members: Sequence[Member], r: int, eta: int, metric: str,
                       mode: str | None, log_path: pathlib.Path | None) -> tuple[list, list[dict]]:
    """Rungs of training, each `run_rung(rung, members, end_step, initial_state) -> Result` (a run that
    evaluates at its end), keeping the best 1/eta after each. Returns (results, decisions)."""
    mode = direction(metric, mode)
    members, state, results, decisions = list(members), None, [], []
    for rung, (end, n) in enumerate(rung_ends(r, eta, len(members))):
        members = members[:n] if state is None else members
        result = run_rung(rung, members, end, state)
        results.append(result)
        values = np.asarray([m[f"eval_{metric}"] for m in result.summary["members"]], np.float64)
        diverged = np.asarray([m["diverged_at"] is not None for m in result.summary["members"]])
        keep = survivors(values, diverged, max(1, n // eta), mode)
        decisions.append({"rung": rung, "step": end, "members": n, "metric": metric, "mode": mode,
                          "values": values.tolist(), "kept": keep.tolist(),
                          "kept_seeds": [members[i].seed for i in keep],
                          "kept_hparams": [members[i].hparams.to_dict() for i in keep]})
        if n == 1 or n // eta == 0:
            break
        state = select_state(result.sweep, result.state, keep)
        members = [members[i] for i in keep]
    if log_path is not None:
        log_path.write_text("".join(json.dumps(to_json(d)) + "\n" for d in decisions))
    return results, decisions


# -- running a search -----------------------------------------------------------------------------------------
def initial_population(seeds: Sequence[int], base: HParams, explore: Sequence[str], bounds: dict,
                       sample: bool, seed: int = 0) -> list[Member]:
    """One member per seed: the base hyperparameters, with each explored one drawn from its search range
    when `sample` (random search's start; log-uniform for learning rates)."""
    rng = np.random.default_rng([seed, 2**31])
    members = []
    for s in seeds:
        values = {name: draw(name, *bounds.get(name, SEARCH[name]), rng) for name in explore} if sample else {}
        members.append(Member(s, base.replace(**values)))
    return members


def pbt_summary(controller: PBT, result) -> dict:
    """What summary.json records of a PBT run: options, each member's schedule, the best member's lineage."""
    values = np.asarray([m.get(f"eval_{controller.options.metric}", np.nan) for m in result.summary["members"]])
    mode = direction(controller.options.metric, controller.options.mode)
    best = int(survivors(values, np.zeros(len(values), bool), 1, mode)[0])
    return {"method": "pbt", "options": dataclasses.asdict(controller.options), "best_member": best,
            "copies": len(controller.records), "schedules": controller.schedules(), "lineage": controller.lineage(best)}


def plot_pbt(controller: PBT, best: int, steps: int, path: pathlib.Path) -> pathlib.Path:
    """Each explored hyperparameter of every member over the run (the best member's in colour), and the
    copies: an arrow from source to member at each exploit, the best member's ancestry in red."""
    from gan_jax.reporting.plotting import _save, subplots

    names = list(controller.options.explore)
    fig, axes = subplots(1, len(names) + 1, figsize=(4.5 * (len(names) + 1), 3.8), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for i, schedule in enumerate(controller.schedules()):
            xs = [r["step"] for r in schedule] + [steps]
            ys = [r[name] for r in schedule]
            ax.step(xs, ys + ys[-1:], where="post", c="tab:red" if i == best else "grey", lw=1.8 if i == best else 0.6,
                    alpha=1 if i == best else 0.5)
        if HParams.specs()[name].log_scale:
            ax.set_yscale("log")
        ax.set(title=name, xlabel="step")
    ax = axes.flat[-1]
    chain = {(c["step"], c["member"]) for c in controller.lineage(best)}
    for r in controller.records:
        red = (r["step"], r["member"]) in chain
        ax.annotate("", xy=(r["step"], r["member"]), xytext=(r["step"], r["source"]),
                    arrowprops=dict(arrowstyle="->", color="tab:red" if red else "grey", lw=1.5 if red else 0.5))
    ax.set(title=f"copies (red: member {best}'s ancestry)", xlabel="step", ylabel="member", xlim=(0, steps),
           ylim=(-1, len(controller.seeds)))
    return _save(fig, path)
