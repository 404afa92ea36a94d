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

What it did is recorded: population.jsonl holds one "decision" row per ranking (its values, how many members
copied, how many would have but drew a source that ranked no better: `ties`; `ranked` false when every
member tied, e.g. all at 0 early on) and one "copy" row per exploit and explore; `pbt_summary` says whether
any decision could rank the members and names no best member where the final values tie. Bounds are
checked against each hyperparameter's valid range (`HParams.specs()`) before anything runs, and explored
values are clipped in float32, the precision members train with, so none rounds onto an open end.

Successive halving: rungs end at steps r, r eta, r eta^2, ...; at each rung the best 1/eta of the members
go on, re-laid out on the devices as a smaller Sweep (one compile per rung).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
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
from gan_jax.metrics import stats

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
        for name in self.bounds:
            if name not in specs:
                raise ConfigError(f"`bounds`: {name!r} is not a traced hyperparameter; choose from {sorted(specs)}")
        for name in dict.fromkeys([*self.explore, *self.bounds]):
            low, high = self.bound(name)
            if not low < high:
                raise ConfigError(f"`bounds`: {name}'s search range needs low < high, got {low}, {high}")
            check_range(name, low, high, specs[name])
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


def check_range(name: str, low: float, high: float, spec: Traced) -> None:
    """Refuse a search range [low, high] that includes a value `name`'s valid range excludes (an open end,
    such as beta1's 1), in one line that names the valid range and a range that would do."""
    outside = [v for v in (low, high) if not spec.contains(v)]
    if not outside:
        return
    inside = [_inside(v, spec, low, high) for v in (low, high)]
    fix = f"e.g. {name}={inside[0]:g}:{inside[1]:g}" if inside[0] < inside[1] else "a range inside it"
    raise ConfigError(f"`bounds`: {name}={low:g}:{high:g} includes {outside[0]:g}, which {name}'s valid range "
                      f"{spec.describe()} excludes; give bounds inside it, {fix}")


def _inside(value: float, spec: Traced, low: float, high: float) -> float:
    """`value` moved into `spec`'s valid range, a little way in from an open end (for the fix suggested)."""
    if spec.contains(value):
        return value
    if not math.isfinite(value):
        return float("nan")  # no suggestion
    if value <= spec.low:
        if not spec.low_open:
            return spec.low
        return high / 1000 if spec.log_scale and spec.low == 0 and high > 0 else spec.low + 1e-3 * (high - spec.low)
    if not spec.high_open:
        return spec.high
    return spec.high - 1e-3 * (spec.high - low) if math.isfinite(low) else spec.high - 1e-3


def _clip(value: float, low: float, high: float, spec: Traced) -> float:
    """`value` clipped to [low, high] as the float32 members train with: rounding to float32 may land
    outside the search range or on an open end of the valid range (0.99999999 is 1.0 in float32), so the
    float32 value is checked and stepped inward in float32 (`np.nextafter`); validity wins over the range."""
    v = np.float32(np.clip(value, low, high))
    down, up = np.float32(-np.inf), np.float32(np.inf)
    if float(v) > high:
        v = np.nextafter(v, down)
    elif float(v) < low:
        v = np.nextafter(v, up)
    for _ in range(4):  # a step or two at most; bounds were checked to lie in the valid range
        if spec.contains(float(v)):
            break
        v = np.nextafter(v, down if float(v) > (low + high) / 2 else up)  # inward, from the end it is at
    if not spec.contains(float(v)):
        raise ConfigError(f"`bounds`: no float32 value of [{low:g}, {high:g}] lies in the valid range "
                          f"{spec.describe()}; widen the search range")
    return float(v)


def draw(name: str, low: float, high: float, rng: np.random.Generator) -> float:
    """A fresh value in [low, high]: log-uniform for a log-scale hyperparameter with low > 0, else uniform."""
    if HParams.specs()[name].log_scale and low > 0:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def scores(values: np.ndarray, diverged: np.ndarray, options: PBTOptions) -> np.ndarray:
    """Higher is better: the metric in its direction, a diverged member or a non-finite value -inf."""
    score = -values if direction(options.metric, options.mode) == "min" else values
    return np.where(diverged | ~np.isfinite(score), -np.inf, score)


def decide(values: np.ndarray, diverged: np.ndarray, hp: dict[str, np.ndarray], options: PBTOptions,
           rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(source of each member's next state, each member's next hyperparameters): truncation selection.
    Members are ranked by `values` (a diverged member or a non-finite value ranks last); each of the
    worst `truncation` fraction copies a member drawn from the best fraction and explores its values, if
    that member ranks strictly better (a tie, e.g. all at 0 early on, is no evidence to act on)."""
    n = len(values)
    score = scores(values, diverged, options)
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


def writable_log(path: str | os.PathLike | None) -> pathlib.Path | None:
    """`path` as a pathlib.Path, after checking that a file can be written there (its folders are made
    when the run starts); None stays None. Raises a one-line ConfigError before anything is written."""
    if path is None:
        return None
    try:
        path = pathlib.Path(path)
    except TypeError:
        raise ConfigError(f"`log_path`: give a file path (str or pathlib.Path) or None, got {path!r}") from None
    if path.is_dir():
        raise ConfigError(f"`log_path`: {path} is a folder; give a file path, e.g. {path / 'population.jsonl'}")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise ConfigError(f"`log_path`: {path} is not writable; give a path you can write to")
        return path
    folder = next(p for p in (path.absolute().parent, *path.absolute().parents) if p.exists())
    if not folder.is_dir():
        raise ConfigError(f"`log_path`: cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"`log_path`: cannot write {path}: {folder} is not writable")
    return path


class PBT:
    """The controller `experiment.run` calls after each evaluation; writes population.jsonl (`log_path`, a
    str or pathlib.Path, checked on construction; None: records kept in memory only).

    `records` holds each copy (exploit and explore), `decisions` each ranking: its step, the members'
    values, `copies`, `ties` (members of the worst fraction that drew a source ranking no better, so
    did not copy) and `ranked` (false when every member ranked the same: no decision was possible)."""

    def __init__(self, options: PBTOptions, members: Sequence[Member], log_path: str | os.PathLike | None):
        self.options, self.seeds, self.log_path = options, [m.seed for m in members], writable_log(log_path)
        self.initial = [m.hparams.to_dict() for m in members]
        self.records: list[dict] = []
        self.decisions: list[dict] = []

    def restart(self, resume_step: int | None) -> None:
        """A new run, or a resumed one: keep the decisions made before `resume_step` (it makes the later
        ones again, the same way)."""
        if self.log_path is None:
            old = [] if resume_step is None else self.decisions + self.records
        else:
            old = [] if resume_step is None or not self.log_path.exists() else [
                json.loads(line) for line in self.log_path.read_text().splitlines() if line]
        old = [r for r in old if r["step"] < (resume_step or 0)]
        self.decisions = [r for r in old if r.get("kind") == "decision"]
        self.records = [r for r in old if r.get("kind", "copy") == "copy"]  # earlier logs: copy rows alone
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            rows = sorted(self.decisions + self.records, key=lambda r: (r["step"], r.get("kind") != "decision"))
            self.log_path.write_text("".join(json.dumps(to_json(r)) + "\n" for r in rows))

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
        score = scores(values, diverged, self.options)
        decision = {"step": step, "kind": "decision", "metric": self.options.metric, "values": values.tolist(),
                    "diverged": np.flatnonzero(diverged).tolist(), "copies": len(copied),
                    "ties": int(len(values) * self.options.truncation) - len(copied),
                    "ranked": bool(np.any(score != score[0]))}
        self._record(decision, step, copied, sources, values, old, new)
        if len(copied):
            state = sweep.copy_members(state, sources)
        return state, HParams(**new)

    def _record(self, decision, step, copied, sources, values, old, new) -> None:
        rows = [{"step": step, "kind": "copy", "member": int(i), "seed": self.seeds[i], "source": int(sources[i]),
                 "source_seed": self.seeds[sources[i]], "metric": self.options.metric, "value": float(values[i]),
                 "source_value": float(values[sources[i]]), "old": {k: float(v[i]) for k, v in old.items()},
                 "new": {k: float(v[i]) for k, v in new.items()}} for i in copied]
        self.decisions.append(decision)
        self.records += rows
        if self.log_path is not None:
            with self.log_path.open("a") as f:
                f.writelines(json.dumps(to_json(r)) + "\n" for r in [decision, *rows])

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
                       mode: str | None, log_path: str | os.PathLike | None) -> tuple[list, list[dict]]:
    """Rungs of training, each `run_rung(rung, members, end_step, initial_state) -> Result` (a run that
    evaluates at its end), keeping the best 1/eta after each. Returns (results, decisions)."""
    mode = direction(metric, mode)
    log_path = writable_log(log_path)
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
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("".join(json.dumps(to_json(d)) + "\n" for d in decisions))
    return results, decisions


# -- running a search -----------------------------------------------------------------------------------------
def initial_population(seeds: Sequence[int], base: HParams, explore: Sequence[str], bounds: dict,
                       sample: bool, seed: int = 0) -> list[Member]:
    """One member per seed: the base hyperparameters, with each explored one drawn from its search range
    when `sample` (random search's start; log-uniform for learning rates), clipped to it in float32."""
    rng = np.random.default_rng([seed, 2**31])
    specs, members = HParams.specs(), []
    for s in seeds:
        values = {name: _clip(draw(name, *bounds.get(name, SEARCH[name]), rng), *bounds.get(name, SEARCH[name]),
                              specs[name]) for name in explore} if sample else {}
        members.append(Member(s, base.replace(**values)))
    return members


POOLED = ("PBT: members' hyperparameters changed during the run (population.schedules) and states were copied "
          "between members, so no setting describes a member: statistics pool the whole population by design")


def pbt_summary(controller: PBT, result) -> dict:
    """What summary.json records of a PBT run: options, the decisions (how many, how many could rank
    anyone, the ties), each member's schedule, and the best member by the final evaluation with its lineage.
    `ranked` is false when no decision could rank the members (every one a tie, or none made); `best_member`
    is None where the final values tie too (no member is better than another); `note` then says so."""
    metric = controller.options.metric
    members = result.summary["members"]
    values = np.asarray([m.get(f"eval_{metric}", np.nan) for m in members], np.float64)
    diverged = np.asarray([m["diverged_at"] is not None for m in members])
    score = scores(values, diverged, controller.options)
    best = int(survivors(values, diverged, 1, direction(metric, controller.options.mode))[0]) \
        if len(values) == 1 or np.any(score != score[0]) else None
    decisions = controller.decisions
    ranked = sum(d["ranked"] for d in decisions)
    out = {"method": "pbt", "options": dataclasses.asdict(controller.options), "best_member": best,
           "copies": len(controller.records), "decisions": len(decisions), "ranked_decisions": ranked,
           "ties": sum(d["ties"] for d in decisions), "ranked": ranked > 0,
           "schedules": controller.schedules(), "lineage": [] if best is None else controller.lineage(best)}
    notes = []
    if not decisions:
        notes.append("no decision was made (truncation 0, or no evaluation at a multiple of `ready` before the "
                     "last step), so no member copied another")
    elif not ranked:
        tied = {_value_text(d["values"]) for d in decisions}
        at = f" at {metric} {tied.pop()}" if len(tied) == 1 else ""
        notes.append(f"no decision could rank the members: at each of the {len(decisions)} decisions all "
                     f"{len(values)} members tied{at}, so none copied another")
    if best is None:
        notes.append(f"the final {metric} values tie ({_value_text(values)}), so no member is best")
    elif not ranked:
        notes.append(f"member {best} is best by the final evaluation alone")
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _value_text(values) -> str:
    """The common value of tied members, as text ("0", "nan": none finite)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return f"{finite[0]:g}" if finite and len(finite) == len(values) else \
        "not finite" if not finite else "tied with some not finite"


def pooled_statistics(summary: dict) -> dict:
    """summary.json's statistics over seeds for a PBT run, to `update` the summary with: members' settings
    changed during the run and states moved between them, so the whole population is pooled, by design and
    said so (`over_seeds_note`, and `"pooled": "pbt"` on the one group of `by_setting`)."""
    members = summary["members"]
    over = {k: stats.mean_ci95([m[k] for m in members]) for k in members[0] if k.startswith("eval_")}
    group = {"setting": {}, "members": [m["member"] for m in members], "seeds": [m["seed"] for m in members],
             "over_seeds": over, "pooled": "pbt"}
    return {"over_seeds": over, "by_setting": [group], "over_seeds_note": POOLED}


def pbt_line(population: dict, members: list[dict]) -> str:
    """One console line on what PBT did: its copies and decisions, and the best member (or why none)."""
    options = population["options"]
    metric, explore = options["metric"], options["explore"]
    head = (f"PBT: {population['copies']} copies in {population['decisions']} decisions "
            f"({population['decisions'] - population['ranked_decisions']} all tied, {population['ties']} ties)")
    best = population["best_member"]
    if best is None or not population["ranked"]:
        return f"{head}; {population['note']}"
    m = members[best]
    return (f"{head}; best member {best} (seed {m['seed']}): {metric} {m['eval_' + metric]:.4g} with "
            + ", ".join(f"{k} {m[k]:.4g}" for k in explore))


def plot_pbt(controller: PBT, best: int | None, steps: int, path: pathlib.Path) -> pathlib.Path:
    """Each explored hyperparameter of every member over the run (the best member's in colour), and the
    copies: an arrow from source to member at each exploit, the best member's ancestry in red (`best`
    None: no member is best, none in colour)."""
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
    chain = set() if best is None else {(c["step"], c["member"]) for c in controller.lineage(best)}
    for r in controller.records:
        red = (r["step"], r["member"]) in chain
        ax.annotate("", xy=(r["step"], r["member"]), xytext=(r["step"], r["source"]),
                    arrowprops=dict(arrowstyle="->", color="tab:red" if red else "grey", lw=1.5 if red else 0.5))
    title = "copies (no best member: the final values tie)" if best is None else \
        f"copies (red: member {best}'s ancestry)"
    ax.set(title=title, xlabel="step", ylabel="member", xlim=(0, steps),
           ylim=(-1, len(controller.seeds)))
    return _save(fig, path)
