"""The command-line layer, and the only module of gan_jax that knows about flags: argparse flags derived
from the library's declarations (traced hyperparameters from `HParams.specs()`, choices from the
registries), and bad input as one line on stderr with exit status 2, before anything is written.

Library errors name settings in backticks (`lr_g`); `as_flags` shows them as the parser's flags (--lr-g).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import math
import pathlib
import re
import sys
from typing import Any, Iterator

import jax

from gan_jax import data
from gan_jax.components import optim, penalties
from gan_jax.core.config import Config, HParams, Static, Traced
from gan_jax.core.gan import GAN
from gan_jax.core.validate import registry, validate
from gan_jax.engine import devices, resources, rundir
from gan_jax.engine.experiment import RunOptions
from gan_jax.engine.members import ALIASES, check_seeds
from gan_jax.engine.schedule import Schedule
from gan_jax.engine.sweep import Sweep
from gan_jax.cli_types import non_negative_int, positive_float, positive_int, traced_value, widths  # noqa: F401
from gan_jax.errors import GanJaxError
from gan_jax.presets import Preset

# settings of no Config declaration whose flag is not named after them: setting -> argparse dest
OTHER_FLAGS = {"standardize": "raw_data", "progress": "no_progress"}


def static_flags() -> dict[str, list[str]]:
    """{flag: the settings it sets}, from the declarations (`Config.settings()`): one flag may set several
    settings (--activation: G's and D's)."""
    flags: dict[str, list[str]] = {}
    for name, spec in Config.settings().items():
        if spec.flag:
            flags.setdefault(spec.flag, []).append(name)
    return flags


def flag_dest(setting: str) -> str:
    """The argparse dest of the flag that sets `setting`."""
    declared = Config.settings().get(setting)
    if declared is not None and declared.flag:
        return declared.flag.replace("-", "_")
    return OTHER_FLAGS.get(setting, setting.replace(".", "_"))


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad value ends with one line naming the setting, and exit status 2."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)

    def flag(self, setting: str) -> str | None:
        """The flag that sets `setting`, if this parser has one."""
        dest = flag_dest(setting)
        for action in self._actions:
            if action.dest == dest and action.option_strings:
                return action.option_strings[-1]
        return None

    def as_flags(self, message: str) -> str:
        """A library message with each `setting` shown as this parser's flag for it (left as is if none)."""
        return re.sub(r"`([A-Za-z_][\w.]*)`", lambda m: self.flag(m.group(1)) or m.group(0), message)


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default, except None ones, whose help text says what unset means."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


@contextlib.contextmanager
def exit_on_error(parser: OneLineParser, flags_of: OneLineParser | None = None) -> Iterator[None]:
    """Turn a library error (GanJaxError) into the parser's one-line error and exit status 2, naming
    settings by the flags of `flags_of` (default: the same parser)."""
    try:
        yield
    except GanJaxError as e:
        parser.error((flags_of or parser).as_flags(str(e)))


def traced_specs() -> dict[str, Traced]:
    """Every traced hyperparameter's spec, and the aliases (lr: both learning rates) with their targets'."""
    specs = HParams.specs()
    return {**{alias: specs[targets[0]] for alias, targets in ALIASES.items()}, **specs}


def preset_from(argv: list[str], names: list[str], default: str, flag: str = "--preset") -> str:
    """The value of `flag` (--preset), read first because the preset sets the other flags' defaults (a bad
    value is left for the full parser to refuse)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith(f"{flag}=") else (
            argv[i + 1] if arg == flag and i + 1 < len(argv) else None)
        if value in names:
            return value
    return default


# -- flags ------------------------------------------------------------------------------------------------
def experiment_parser(name: str, description: str, preset: Preset) -> OneLineParser:
    """The flags every experiment accepts, with the preset's values as defaults (shown in --help)."""
    parser = OneLineParser(prog=f"python -m experiments.{name}", description=description,
                           formatter_class=DefaultsFormatter)
    add_run_flags(parser, preset)
    add_static_flags(parser, preset.config)
    add_traced_flags(parser)
    return parser


def add_run_flags(parser: argparse.ArgumentParser, preset: Preset) -> None:
    add = parser.add_argument
    add("--seeds", type=positive_int, default=4, help="number of members (seeds) trained in parallel")
    add("--seed", type=non_negative_int, default=0, help="first seed; member i uses seed N+i")
    add("--steps", type=positive_int, default=preset.steps, help="training steps (iterations)")
    add("--schedule", action="append", default=None, metavar="STEP:NAME*FACTOR[,NAME*FACTOR]",
        help="from STEP on, each named traced hyperparameter is the member's starting value times FACTOR "
             "(repeat the flag for more steps; 'none': no schedule); quote it in a shell. Default: the preset's "
             f"({preset.schedule.to_json() or 'none'})")
    add("--snapshot-every", type=positive_int, default=preset.snapshot_every,
        help="steps between evaluations and sample snapshots (a multiple of --log-every)")
    add("--out", type=pathlib.Path, default=None, help="run directory (default: runs/<experiment>-<date>-<time>)")
    add("--overwrite", action="store_true", help="allow writing into a non-empty --out directory")
    add("--checkpoint-every", type=non_negative_int, default=0,
        help="save the whole state (orbax) every N steps, in <out>/checkpoints; 0: only where the run ends (every "
             "run keeps its final state, to load, sample or continue). On SIGTERM or SIGINT the run finishes its "
             "chunk, checkpoints and can --resume")
    add("--keep", type=positive_int, default=3, help="checkpoints to keep (the latest K)")
    add("--resume", action="store_true",
        help="continue the run in --out from its latest complete checkpoint (same config; --steps may grow)")
    add("--coordinator", default=None,
        help="multi-host: coordinator address host:port for jax.distributed.initialize "
             "(default: the cluster's environment, if any, else a single process)")
    add("--num-processes", type=positive_int, default=None, help="multi-host: number of processes")
    add("--process-id", type=non_negative_int, default=None, help="multi-host: this process's index")
    add("--member-block", type=positive_int, default=None,
        help="members vmapped together per device (default: on a CPU the fastest block, measured once per model "
             "and member count and cached; elsewhere all)")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--no-figures", action="store_true", help="write no figures (metrics, summary and checkpoints only)")


def names_of(choices: dict):
    """A parser of 'a,b' into distinct names of `choices` ('none': no names)."""
    def parse(text: str) -> tuple[str, ...]:
        names = () if text == "none" else tuple(name.strip() for name in text.split(","))
        if any(n not in choices for n in names) or len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"must be 'none' or distinct names from {sorted(choices)}, "
                                             f"comma-separated; got {text!r}")
        return names
    return parse


def flag_arguments(spec: Static, default) -> dict:
    """argparse keywords for a declared setting's flag: its type (or choices) by kind, and its default."""
    if spec.kind == "bool":
        return {"action": argparse.BooleanOptionalAction, "default": default}
    if spec.kind == "choice":
        return {"choices": sorted(registry(spec)), "default": default}
    kinds = {"positive_int": positive_int, "non_negative_int": non_negative_int, "widths": widths, "float": float,
             "optional_positive_int": non_negative_int, "str": str}
    parse = names_of(registry(spec)) if spec.kind == "names" else kinds[spec.kind]
    return {"type": parse, "default": 0 if spec.kind == "optional_positive_int" and default is None else default}


def add_static_flags(parser: argparse.ArgumentParser, cfg: Config) -> None:
    """One flag per declared static setting (`Config.settings()`), defaults from `cfg` (the preset's).
    --gradient-penalty's default is a rule: the preset's, or r1 when --gp-weight is given."""
    settings = Config.settings()
    for flag, names in static_flags().items():
        spec = settings[names[0]]
        kwargs = flag_arguments(spec, cfg.get(names[0]))
        help_text = spec.help
        if names[0] == "gradient_penalty":
            kwargs["default"] = None
            help_text += (f" (default: the preset's, {cfg.gradient_penalty!r}, or r1 when --gp-weight is given; a "
                          "penalty chosen without --gp-weight uses its usual weight, 10)")
        parser.add_argument(f"--{flag}", help=help_text, **kwargs)


def static_defaults(parser: argparse.ArgumentParser, cfg: Config) -> None:
    """The static settings' flag values as `cfg` has them, without the flags: for a command that trains
    nothing (experiments.evaluate), whose task's `configure` may still read them."""
    parser.set_defaults(**{flag.replace("-", "_"): cfg.get(names[0]) for flag, names in static_flags().items()})


def hide_flags(parser: argparse.ArgumentParser, *dests: str) -> None:
    """Leave the flags of `dests` out of --help: a task's training flags where nothing is trained."""
    for action in parser._actions:
        if action.dest in dests:
            action.help = argparse.SUPPRESS


def apply_static_flags(cfg: Config, args: argparse.Namespace) -> Config:
    """`cfg` with every declared setting's flag value (a flag setting several settings sets them all)."""
    settings = Config.settings()
    for flag, names in static_flags().items():
        value = getattr(args, flag.replace("-", "_"))
        if value is None and names[0] == "gradient_penalty":
            value = "r1" if args.gp_weight and cfg.gradient_penalty == "none" else cfg.gradient_penalty
        if settings[names[0]].kind == "optional_positive_int":
            value = value or None
        for name in names:
            cfg = cfg.set(name, value)
    return cfg


def add_traced_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per traced hyperparameter, from its declaration (default: the preset's value)."""
    for name, spec in traced_specs().items():
        text = "learning rate of both networks" if name in ALIASES else spec.help
        parser.add_argument(f"--{name.replace('_', '-')}", type=traced_value(spec), default=None,
                            help=f"{text}; in {spec.describe()} (default: the preset's)")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A parsed, validated command line: what to run, for which seeds, where, and how."""

    cfg: Config
    hparams: HParams  # every member's traced values (sweeps vary them)
    seeds: range
    out: pathlib.Path
    options: RunOptions
    args: argparse.Namespace
    parser: OneLineParser  # for errors found later: `with exit_on_error(exp.parser)`
    task: Any = None  # the gan_jax.tasks.base.Task that trains and evaluates it
    data: Any = None  # what the task loaded (None for formula data)
    name: str = "train"  # the command, recorded in config.json as `experiment`


def hparams_from(args: argparse.Namespace, preset: Preset, cfg: Config) -> HParams:
    """The preset's traced values; the usual values of what the flags switched on or changed (the new
    optimizer's betas, a new penalty's weight, augmentation always on); then the values given."""
    values = preset.hparams.to_dict()
    if cfg.optimizer != preset.config.optimizer:
        values["beta1"], values["beta2"] = optim.OPTIMIZERS[cfg.optimizer].betas
    if cfg.gradient_penalty != preset.config.gradient_penalty:
        values["gp_weight"] = penalties.PENALTIES[cfg.gradient_penalty].default_weight
    if cfg.augment and not preset.config.augment:
        values["augment_p"] = 1.0  # DiffAugment's: every image, every time
    for name in traced_specs():  # aliases first: an explicit --lr-g wins over --lr
        given = getattr(args, name)
        if given is not None:
            values.update({target: given for target in ALIASES.get(name, (name,))})
    return HParams(**values)


def resolve(parser: OneLineParser, args: argparse.Namespace, preset: Preset, cfg: Config, name: str,
            task: Any = None, data: Any = None) -> Experiment:
    """Apply the shared flags to `cfg` (the preset's config with the experiment's own flags applied),
    validate everything, and pick the run directory (checked, not created)."""
    cfg = apply_static_flags(cfg, args)
    hp = hparams_from(args, preset, cfg)
    if args.resume and args.out is None:
        parser.error("--resume needs --out, the run directory to continue")
    out = args.out or pathlib.Path("runs") / f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    seeds = range(args.seed, args.seed + args.seeds)
    with exit_on_error(parser):
        schedule = (preset.schedule if args.schedule is None else
                    Schedule() if args.schedule == ["none"] else Schedule.parse(args.schedule))
        options = RunOptions(steps=args.steps, snapshot_every=args.snapshot_every,
                             checkpoint_every=args.checkpoint_every, keep=args.keep, resume=args.resume,
                             overwrite=args.overwrite, progress=not args.no_progress, schedule=schedule,
                             member_block=args.member_block)
        validate(cfg, hp)
        options.check(cfg.log_every)
        for stage in schedule.stages(hp):
            validate(cfg, stage)
        check_seeds(seeds)
        rundir.check_target(out, args.overwrite, args.resume)
        devices.initialize_distributed(args.coordinator, args.num_processes, args.process_id)  # before JAX starts
        check_fits(cfg, len(seeds), task, data)  # before a single member is built
    return Experiment(cfg, hp, seeds, out, options, args, parser, task, data, name)


def check_fits(cfg: Config, n_members: int, task: Any = None, data_: Any = None) -> None:
    """Refuse (ResourceError) members whose state cannot fit, before a single member is built: from the
    GAN's shapes, sized from `cfg` (its image shape, or a dataset gan_jax knows); only data of a task's own
    (a custom task's flat data of any name) needs the task's GAN built to be sized."""
    known = cfg.image_shape or cfg.data in data.DATASETS
    if task is not None and not known:
        gan = task.make_gan(cfg, data_)
    else:
        dim = math.prod(cfg.image_shape) if cfg.image_shape else data.dimension(cfg.data)
        gan = GAN.from_config(cfg, lambda key, n: jax.random.normal(key, (n, dim)), data_dim=dim)  # shapes only
    resources.check_state(Sweep(gan, 1).state_bytes_per_member(), n_members, jax.devices())


EXIT_STATUS = {"SIGTERM": 143, "SIGINT": 130}  # 128 + the signal's number, as a shell reports it


def exit_if_preempted(result, module: str, argv: list[str]) -> None:
    """After a run that a SIGTERM or SIGINT stopped early: one line on how to go on, and the signal's exit
    status (so a scheduler sees the job was stopped, not finished)."""
    if result.preempted is None:
        return
    stopped = result.summary["preempted"]
    if stopped["checkpointed"]:
        again = [a for a in argv if a not in ("--resume", "--overwrite")]
        if "--out" not in again and not any(a.startswith("--out=") for a in again):
            again += ["--out", str(result.run.path)]
        print(f"stopped by {stopped['signal']} at step {stopped['step']} (checkpointed); resume with: "
              f"python -m {module} {' '.join(again)} --resume")
    else:
        print(f"stopped by {stopped['signal']} at step {stopped['step']} without a checkpoint; rerun it, with "
              "--checkpoint-every N on a cluster so a stopped run can --resume")
    sys.exit(EXIT_STATUS[stopped["signal"]])
