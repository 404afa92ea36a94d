"""One run end to end, as a library call: members trained in one Sweep, evaluated and snapshotted at
intervals, checkpointed and resumable, written to a run directory (`gan_jax.engine.rundir`'s contract).

    result = experiment.run(gan, members.grid(range(8), hp, lr=[1e-4, 1e-3]), "runs/mine",
                            RunOptions(steps=5000, snapshot_every=1000), evaluate=evaluator(z, metric_fn))

Everything is checked before anything is written: options, hyperparameters, the output directory, the
memory the members and the compiled program need, and the checkpoint to resume.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import Any, Callable, NamedTuple, Protocol, Sequence

import jax
import numpy as np

from gan_jax.core import pieces
from gan_jax.core.config import HParams
from gan_jax.core.streams import stream_key
from gan_jax.core.gan import GAN, TrainState
from gan_jax.core.validate import validate
from gan_jax.engine import checkpoint, layout, preemption, rundir
from gan_jax.engine.logs import MetricLog
from gan_jax.engine.members import Member, member_keys, stack_hparams
from gan_jax.engine.runner import chunk_plan, train_members
from gan_jax.engine.schedule import Schedule
from gan_jax.engine.sweep import largest_divisor, Sweep
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.metrics import stats

Evaluate = Callable[[Sweep, TrainState], dict[str, jax.Array]]  # every member's metrics: {name: [members]}
OnSnapshot = Callable[[Sweep, TrainState], Any]  # may return {tag: member-stacked images} for TensorBoard


class Controller(Protocol):
    """What may change a run's state and hyperparameters after an evaluation (a population search):
    `controller(step, sweep, state, hp, evaluation) -> (state, hp)`, `evaluation` every member's values
    ({metric: [members]}, host). It is resumed with the run: `restart(resume_step)` drops what it decided
    from that step on (it decides again, the same way)."""

    def __call__(self, step: int, sweep: Sweep, state: TrainState, hp: HParams,
                 evaluation: dict[str, np.ndarray]) -> tuple[TrainState, HParams]: ...

    def restart(self, resume_step: int | None) -> None: ...


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How long to train and what to do along the way (everything about a run that is not the GAN)."""

    steps: int
    snapshot_every: int | None = None  # evaluate and snapshot every N steps (and at 0 and the end); None: 0, end
    checkpoint_every: int = 0  # save the whole state every N steps; 0: only the final (or preempted) state
    final_checkpoint: bool = True  # save the state where the run ends, so it can be loaded, sampled, continued
    keep: int = 3  # checkpoints kept (the latest)
    resume: bool = False  # continue from the latest complete checkpoint in <out>/checkpoints
    overwrite: bool = False  # allow writing into a non-empty run directory
    progress: bool = True  # a progress bar
    schedule: Schedule = Schedule()  # traced hyperparameters changed at given steps (gan_jax.engine.schedule)
    member_block: int | None = None  # members vmapped together per device; None: measured (gan_jax.engine.layout)

    def check(self, log_every: int) -> None:
        """Raise ConfigError naming the first bad option; intervals must be multiples of `log_every`."""
        def need(ok: bool, name: str, message: str) -> None:
            if not ok:
                raise ConfigError(f"`{name}`: {message}")

        for name in ("steps", "keep"):
            value = getattr(self, name)
            need(isinstance(value, int) and value > 0, name, f"must be a positive integer, got {value!r}")
        need(self.member_block is None or (isinstance(self.member_block, int) and self.member_block > 0),
             "member_block", f"must be a positive integer or None, got {self.member_block!r}")
        need(isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 0, "checkpoint_every",
             f"must be an integer >= 0, got {self.checkpoint_every!r}")
        if self.snapshot_every is not None:
            need(isinstance(self.snapshot_every, int) and self.snapshot_every > 0, "snapshot_every",
                 f"must be a positive integer, got {self.snapshot_every!r}")
        for name in ("snapshot_every", "checkpoint_every"):
            value = getattr(self, name)
            need(not value or value % log_every == 0, name,
                 f"{value} must be a multiple of `log_every` {log_every}")
        self.schedule.check(log_every)

    @property
    def chunk(self) -> int:
        """Steps between snapshots: where training pauses for the host."""
        return self.snapshot_every or self.steps


# XLA:CPU's host memory grows with the number of steps one program runs on several devices (measured: about
# 1 KB per member-step, R1 on 2 devices; flat on one), so on a CPU no chunk runs longer than this.
MAX_CPU_CHUNK_STEPS = 1_000


def bounded_chunk(every: int, log_every: int, limit: int) -> int:
    """The longest chunk of at most `limit` steps (or `log_every`, if longer) that divides `every` and is a
    multiple of `log_every`, so that every boundary of `every` is still a chunk boundary."""
    if every <= limit:
        return every
    return log_every * largest_divisor(every // log_every, max(1, limit // log_every))


@dataclasses.dataclass
class Result:
    """A finished (or preempted) run: its final state, its Sweep, and what the figures and summary need
    (a bounded sample of members' curves and statistics over all members; `gan_jax.engine.logs.load` reads every
    member's every value from the run directory)."""

    state: TrainState  # final, member-stacked
    sweep: Sweep
    run: rundir.RunDir
    steps: np.ndarray  # logged steps
    history: dict[str, np.ndarray]  # metric -> [sampled members, logs]
    history_members: np.ndarray  # the members `history` and `evals` hold, by index
    quantiles: dict[str, dict[str, np.ndarray]]  # metric -> {min, q05, ..., median, ..., max} -> [logs], all members
    summary: dict
    eval_steps: np.ndarray  # steps at which `evaluate` ran
    evals: dict[str, np.ndarray]  # eval_<metric> -> [sampled members, evaluations]
    eval_stats: dict[str, list[dict]]  # eval_<metric> -> per evaluation: mean, ci95, n over all members
    hparams: HParams  # every member's traced values at the end (member-stacked, host)
    preempted: str | None = None  # the signal that stopped the run early, if one did

    @property
    def seeds(self) -> list[int]:
        return [m["seed"] for m in self.summary["members"]]


def evaluator(z: jax.Array, metric_fn: Callable[..., dict[str, Any]], labels: jax.Array | None = None,
              metrics: Sequence = ()) -> Evaluate:
    """`evaluate` for `run`: `metric_fn(samples) -> {name: scalar}` (with `labels`, `metric_fn(samples,
    labels)`) of each member's samples G(z) from its generator average. Draw z from
    `streams.stream_key("evaluation")`, so every member is measured on the same latents in every run."""
    def evaluate(sweep, state):
        return sweep.evaluate(state, z, metric_fn, labels)

    evaluate.metric_piece = pieces.describe(metric_fn)  # what `recorded_pieces` records
    evaluate.latents = (z, labels)  # what samples.npz is drawn from, so it reproduces the final metrics
    evaluate.modes = {m.name: m.mode for m in metrics}  # config.json's `metrics`: which way each is better
    return evaluate


def recorded_pieces(gan: GAN, evaluate: Evaluate | None) -> dict:
    """The run's pieces as config.json records them and a resume compares them: the GAN's, and the
    metric function's when it is the user's own (`evaluator` names it after that function)."""
    ran = gan.pieces()
    described = getattr(evaluate, "metric_piece", None) or (evaluate and pieces.describe(evaluate))
    if described and "sha256" in described:
        ran["metrics"] = described
    return ran


def summarize(log: MetricLog, times: dict, sweep: Sweep, steps: int, diverged_at: np.ndarray,
              initial_hparams: list[dict] | None = None) -> dict:
    """summary.json: run times, each member's final values, and each evaluation's mean +- 95% CI over the
    seeds of one setting, never over two. Members are grouped by the traced hyperparameters that differ
    between them, as each member started (`initial_hparams`; default `log.hparams`, which a schedule scales
    alike for every member, so its groups are the same): `by_setting` lists every group ({"setting": the
    differing values, "members", "seeds", "over_seeds"}); `over_seeds` is the one group's statistics when
    all members share a setting, else empty, with `over_seeds_note` saying why. `diverged` lists the
    flagged members with the step and the reason (`gan_jax.core.loop.flag`: "diverged" or "stuck")."""
    from gan_jax.core.loop import flag

    flags = [flag(v) for v in diverged_at]
    members = [{"member": i, "seed": seed, **log.hparams[i], **{k: float(v[i]) for k, v in log.latest.items()},
                "diverged_at": flags[i][0]} for i, seed in enumerate(log.seeds)]
    settings = initial_hparams or log.hparams
    varied = [k for k in settings[0] if len({float(np.float32(s[k])) for s in settings}) > 1]  # as trained
    groups: dict[tuple, list[int]] = {}
    for i, setting in enumerate(settings):
        groups.setdefault(tuple(float(np.float32(setting[k])) for k in varied), []).append(i)
    evals = {k: np.asarray(v) for k, v in log.latest.items() if k.startswith("eval_")}
    by_setting = [{"setting": {k: float(settings[idx[0]][k]) for k in varied}, "members": idx,
                   "seeds": [log.seeds[i] for i in idx],
                   "over_seeds": {k: stats.mean_ci95(v[idx]) for k, v in evals.items()}} for idx in groups.values()]
    summary = {**times, "steps": steps, "n_members": len(log.seeds), "devices": sweep.mesh.devices.size,
               "members": members, "over_seeds": by_setting[0]["over_seeds"] if len(by_setting) == 1 else {},
               "by_setting": by_setting}
    if len(by_setting) > 1:
        summary["over_seeds_note"] = (f"members differ in {', '.join(varied)}: {len(by_setting)} settings, "
                                      "each with its own statistics over seeds in by_setting; none pooled")
    summary["diverged"] = [{"member": m["member"], "seed": m["seed"], "step": m["diverged_at"], "reason": reason}
                           for m, (_, reason) in zip(members, flags) if reason is not None]
    return summary


class Samples(NamedTuple):
    """What samples.npz holds: every member's G(z) (with `labels`, for a conditional GAN), stored as `encode`
    makes them (e.g. uint8 pixels)."""

    z: jax.Array
    labels: jax.Array | None = None
    encode: Callable[[np.ndarray], np.ndarray] = lambda x: np.asarray(x, np.float32)


DEFAULT_SAMPLES = 1000  # samples.npz's count per member when neither the evaluation nor the caller sets one


def default_samples(gan: GAN, evaluate: Evaluate | None) -> Samples:
    """The evaluation's own latents when `evaluate` came from `evaluator` (so samples.npz reproduces the
    final metrics), else DEFAULT_SAMPLES from the evaluation stream; float32."""
    latents = getattr(evaluate, "latents", None)
    return Samples(*(latents or gan.sample_latent(stream_key("evaluation"), DEFAULT_SAMPLES)))


def run(gan: GAN, members: Sequence[Member], out: str | pathlib.Path, options: RunOptions,
        evaluate: Evaluate | None = None, on_snapshot: OnSnapshot | None = None,
        extra_config: dict | None = None, controller: Controller | None = None,
        initial_state: TrainState | None = None, samples: Samples | None = None) -> Result:
    """Train `members` ((seed, HParams) pairs) of `gan` for `options.steps` steps and write the run
    directory `out`. Before training and every `options.snapshot_every` steps, `on_snapshot(sweep, state)`
    sees the state (figures) and `evaluate(sweep, state) -> {metric: [members]}` measures it: each value
    becomes an `eval_<metric>` record, the last ones go into summary.json with their mean +- 95% CI over
    seeds. `options.schedule` changes members' traced values at its steps; or, after each evaluation,
    `controller` (a population search) may change members' state and hyperparameters; checkpoints hold
    both. `initial_state` (member-stacked, e.g. the survivors of a successive-halving rung) replaces the
    members' fresh state; training goes on from its step. Raises a GanJaxError, with nothing written, for
    anything that cannot run. A SIGTERM or SIGINT ends the run after its current chunk, with a checkpoint
    (when checkpointing) and the summary so far; the Result says so (`preempted`). Every run ends by writing
    samples.npz (`samples`; default: the latents of an `evaluator`'s evaluation, else 1,000 from the evaluation
    stream, as float32)."""
    t0 = time.perf_counter()
    out = pathlib.Path(out)
    if not members:
        raise ConfigError("`members`: give at least one (seed, hparams) member")
    options.check(gan.cfg.log_every)
    seeds = [int(m.seed) for m in members]
    hparams = [m.hparams.to_dict() for m in members]
    hp = stack_hparams([m.hparams for m in members])
    validate(gan.cfg, hp, gan)
    start_hp = jax.tree.map(np.asarray, hp)
    for stage in options.schedule.stages(start_hp):
        validate(gan.cfg, stage, gan)
    if options.schedule and controller:
        raise ConfigError("`schedule`: a schedule and a population search both set hyperparameters; use one")
    rundir.check_target(out, options.overwrite, options.resume)
    gan.check_sampler()  # a GAN built or replaced by hand was not checked when built
    ran = recorded_pieces(gan, evaluate)
    sweep = Sweep(gan, len(members), member_block=options.member_block)
    if options.resume:  # the numbers of the layout it started with
        recorded = recorded_layout(out, sweep)
        if recorded and options.member_block is not None and sweep.layout.block != recorded.block:
            raise ConfigError(f"`member_block`: the run in {out} trained in blocks of {recorded.block}, and another "
                              f"block changes its numbers by float32 rounding; resume with member_block "
                              f"{recorded.block} or none")
        sweep.layout = recorded or sweep.layout
    log_every = gan.cfg.log_every  # a run without snapshots is one chunk, rounded up to whole logged windows
    every = math.gcd(options.snapshot_every or -(-options.steps // log_every) * log_every, options.checkpoint_every,
                     *options.schedule.steps)
    if sweep.mesh.devices.flat[0].platform == "cpu":
        every = bounded_chunk(every, gan.cfg.log_every, MAX_CPU_CHUNK_STEPS)
    for length in set(chunk_plan(options.steps, every, gan.cfg.log_every)):
        sweep.compile(length)  # from shapes alone: refuses what cannot fit before anything is allocated
    state = sweep.init(member_keys(seeds)) if initial_state is None else sweep.shard(initial_state)
    start = int(np.asarray(sweep.gather(state.step))[0])
    run_config = {**gan.recorded_config(), "pieces": ran, "seeds": seeds, "hparams": hparams, "start": start}
    (state, hp), resume_step, checkpoints = _checkpoints(out, options, sweep, (state, sweep.shard(hp)), run_config)
    hp = jax.tree.map(np.asarray, sweep.gather(hp))
    start = resume_step if resume_step is not None else start
    primary = jax.process_index() == 0
    writer = rundir.RunDir(out, primary=primary)
    built = {} if gan.recorded_config() == gan.cfg.to_dict() else {"config_as_built": gan.cfg.to_dict()}
    modes = getattr(evaluate, "modes", None)
    built.update({"metrics": modes} if modes else {})
    writer.write_json("config.json", {"config": gan.recorded_config(), **built, "pieces": ran, "steps": options.steps,
                                      "seeds": seeds,
                                      "hparams": hparams, "devices": [str(d) for d in jax.devices()],
                                      "processes": jax.process_count(), "schedule": options.schedule.to_json(),
                                      "layout": sweep.layout.to_json(),
                                      **(extra_config or {})})
    log = MetricLog(writer.metrics_dir if primary else None, seeds, hparams, resume_step or (start or None))
    if controller:
        controller.restart(resume_step)
    saved = {start}  # the untrained (given, resumed) state needs no checkpoint

    def log_hparams(hp):  # later rows carry each member's new values
        columns = {k: np.asarray(v).tolist() for k, v in hp.to_dict().items()}
        log.hparams = [{k: v[i] for k, v in columns.items()} for i in range(len(seeds))]

    def at_boundary(state, hp):
        step = int(sweep.gather(state.step)[0])
        if options.schedule:
            scheduled = options.schedule.apply(start_hp, step)
            if any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(scheduled), jax.tree.leaves(hp))):
                hp = scheduled
                log_hparams(hp)
        period = options.checkpoint_every
        if checkpoints and step not in saved and ((period and step % period == 0) or step == options.steps):
            checkpoints.save((state, hp), step)
            saved.add(step)
        if step % options.chunk and step != options.steps:
            return state, hp  # a checkpoint-only boundary
        if on_snapshot:
            for tag, images in (on_snapshot(sweep, state) or {}).items():  # sample grids, for TensorBoard
                log.images(step, tag, images)
        if evaluate:
            values = sweep.gather(evaluate(sweep, state))
            log.evaluation(step, values)
            if controller and step < options.steps:
                before = hp
                state, hp = controller(step, sweep, state, hp, {k: np.asarray(v) for k, v in values.items()})
                if hp is not before:
                    log_hparams(hp)
        return state, hp

    with preemption.watch() as stop:
        state, hp = at_boundary(state, hp)  # the untrained (or restored) state
        state, hp, times = train_members(sweep, state, hp, options.steps - start, every, log.train,
                                         at_boundary, progress=options.progress, stop=stop.agreed)
    step = start + times.steps
    preempted = stop.signal if step < options.steps else None
    if checkpoints:
        if preempted and step not in saved:
            checkpoints.save((state, hp), step)  # where a resumed run picks up
        checkpoints.close()
    times.wall_s = time.perf_counter() - t0
    summary = summarize(log, times.summary(), sweep, step, np.asarray(sweep.gather(state.diverged_at)),
                        initial_hparams=hparams)
    summary["layout"] = {**sweep.layout.to_json(), "probe_s": round(sweep.probe_s, 2)}
    if log.eval_steps:
        summary["evaluated_at"] = log.eval_steps[-1]  # the step the members' eval_ values are from
    if preempted:
        summary["preempted"] = {"signal": preempted, "step": step, "checkpointed": bool(checkpoints)}
        if primary:  # a script's run returns, so say on stderr why it ended early (the CLI adds its command)
            print(f"gan_jax: {out}: stopped by {preempted} at step {step} of {options.steps}, "
                  + ("checkpointed" if checkpoints else "without a checkpoint (checkpoint_every was 0)")
                  + (f"; its last evaluation was at step {summary['evaluated_at']}" if log.eval_steps else ""),
                  file=sys.stderr)
    writer.write_json("summary.json", summary)
    log.close()
    steps, history, quantiles = log.history()
    eval_steps, evals, eval_stats = log.evaluations()
    result = Result(state, sweep, writer, steps, history, log.members, quantiles, summary, eval_steps, evals,
                    eval_stats, hp, preempted)
    write_samples(result, *(samples or default_samples(gan, evaluate)))
    return result


def recorded_layout(out: pathlib.Path, sweep: Sweep) -> layout.Layout | None:
    """The member block a run being resumed trained with (config.json), where it fits these members."""
    try:
        block = json.loads((out / "config.json").read_text())["layout"]["member_block"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return layout.Layout(block, "recorded") if isinstance(block, int) and sweep.local % block == 0 else None


def _checkpoints(out: pathlib.Path, options: RunOptions, sweep: Sweep, state: tuple, config: dict):
    """(state, resumed step or None, Checkpointer or None), state being (TrainState, HParams): with
    `resume`, those of the latest complete checkpoint in <out>/checkpoints, after checking it was written
    for the same `config` (static settings, members' seeds and initial hyperparameters) and shapes."""
    if not (options.checkpoint_every or options.resume or options.final_checkpoint):
        return state, None, None
    checkpoints = checkpoint.Checkpointer(out / "checkpoints", options.keep, config)
    if not options.resume:
        return state, None, checkpoints
    state, step = checkpoints.restore(state)
    if step > options.steps:
        raise CheckpointError(f"`resume`: the latest checkpoint is at step {step}, past `steps` {options.steps}; "
                              f"train for `steps` >= {step}")
    print(f"resuming from the checkpoint at step {step} in {out / 'checkpoints'}")
    return state, step, checkpoints


# Samples gathered to the host and encoded at once by write_samples (Sweep.generate bounds G's own memory):
# 26,000 Stacked MNIST images of 4 members as float32 are 1 GB before they become uint8.
SAMPLE_SLICE = 2_000


def write_samples(result: Result, z: jax.Array, labels: jax.Array | None = None,
                  encode: Callable[[np.ndarray], np.ndarray] = np.asarray) -> pathlib.Path:
    """`samples.npz` in the run directory: every member's final samples G(z) from its generator average
    (`samples` [members, n, ...], stored as `encode` makes them), with `member`, `seed`, `step` and, for a
    conditional GAN, the `labels` asked for, and the latents `z`; so anyone can recompute a metric with their
    own code, and `gan_jax.load(...).generate` draws the same samples again. Generated
    in slices of at most SAMPLE_SLICE samples. A collective in a multi-host run: call it on every process."""
    n = len(z)
    size = largest_divisor(n, SAMPLE_SLICE)  # equal slices: one compile
    samples = np.concatenate([encode(np.asarray(result.sweep.gather(result.sweep.generate(
        result.state, z[i:i + size], None if labels is None else labels[i:i + size])))) for i in range(0, n, size)],
        axis=1)
    step = int(np.asarray(result.sweep.gather(result.state.step))[0])  # the run's end, or where it stopped
    path = result.run.path / "samples.npz"  # (gather is a collective: every process, before the primary writes)
    if result.run.primary:
        extra = {} if labels is None else {"labels": np.asarray(labels)}
        np.savez_compressed(path, samples=samples, member=np.arange(len(result.seeds)), seed=np.asarray(result.seeds),
                            z=np.asarray(z), step=np.asarray(step), **extra)
    return path


def throughput_line(summary: dict) -> str:
    """One line on how fast a run went (and which members diverged), for the console."""
    speed = summary["seed_steps_per_s"]
    speed = "no steps trained here" if speed is None else f"{speed:,.0f} seed-steps/s"
    line = (f"{summary['n_members']} members x {summary['steps']} steps on {summary['devices']} device(s): "
            f"{speed}, compile {summary['compile_s']:.1f} s, wall {summary['wall_s']:.1f} s")
    if "layout" in summary:
        line += f"; member block {summary['layout']['member_block']} ({summary['layout']['chosen_by']})"
    for reason, why in (("diverged", "diverged"), ("stuck", "stuck (a gradient norm not finite)")):
        flagged = [d for d in summary["diverged"] if d.get("reason", "diverged") == reason]
        if flagged:
            line += f"\n{why} (frozen as they were at the step given): " + ", ".join(
                f"member {d['member']} (seed {d['seed']}) at step {d['step']}" for d in flagged)
    return line
