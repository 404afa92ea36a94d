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
from gan_jax.components import augment, losses, models, optim, penalties
from gan_jax.core.config import Config, HParams, Traced
from gan_jax.core.gan import GAN
from gan_jax.core.validate import validate
from gan_jax.engine import devices, resources, rundir
from gan_jax.engine.experiment import RunOptions
from gan_jax.engine.members import ALIASES, check_seeds
from gan_jax.engine.schedule import Schedule
from gan_jax.engine.sweep import Sweep
from gan_jax.cli_types import non_negative_int, positive_float, positive_int, traced_value, widths  # noqa: F401
from gan_jax.errors import GanJaxError
from gan_jax.presets import Preset

# settings whose flag is not named after them: setting -> argparse dest
FLAG_OF_SETTING = {"generator.hidden": "g_hidden", "discriminator.hidden": "d_hidden",
                   "discriminator.feature_dim": "feature_dim", "generator.activation": "activation",
                   "discriminator.spectral_norm": "spectral_norm",
                   "discriminator.activation": "activation", "standardize": "raw_data",
                   "progress": "no_progress"}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad value ends with one line naming the setting, and exit status 2."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)

    def flag(self, setting: str) -> str | None:
        """The flag that sets `setting`, if this parser has one."""
        dest = FLAG_OF_SETTING.get(setting, setting.replace(".", "_"))
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
        help="save the whole state (orbax) every N steps and at the end, in <out>/checkpoints; 0: never. Set it "
             "for cluster runs: on SIGTERM or SIGINT the run finishes its chunk, checkpoints and can --resume")
    add("--keep", type=positive_int, default=3, help="checkpoints to keep (the latest K)")
    add("--resume", action="store_true",
        help="continue the run in --out from its latest complete checkpoint (same config; --steps may grow)")
    add("--coordinator", default=None,
        help="multi-host: coordinator address host:port for jax.distributed.initialize "
             "(default: the cluster's environment, if any, else a single process)")
    add("--num-processes", type=positive_int, default=None, help="multi-host: number of processes")
    add("--process-id", type=non_negative_int, default=None, help="multi-host: this process's index")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--no-figures", action="store_true", help="write no figures (metrics, summary and checkpoints only)")


def augmentations(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); 'none' -> ()."""
    names = () if text == "none" else tuple(name.strip() for name in text.split(","))
    unknown = [n for n in names if n not in augment.AUGMENTATIONS]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must be 'none' or distinct names from {sorted(augment.AUGMENTATIONS)}, "
                                         f"comma-separated; got {text!r}")
    return names


def add_static_flags(parser: argparse.ArgumentParser, cfg: Config) -> None:
    add = parser.add_argument
    add("--batch-size", type=positive_int, default=cfg.batch_size, help="batch size")
    add("--g-hidden", type=widths, default=cfg.generator.hidden,
        help="G's hidden widths (dcgan: the channels of its layers before the output, coarsest first)")
    add("--d-hidden", type=widths, default=cfg.discriminator.hidden,
        help="D's hidden widths (dcgan: the channels of its strided convolutions)")
    add("--loss", choices=sorted(losses.LOSSES), default=cfg.loss, help="loss family")
    add("--optimizer", choices=sorted(optim.OPTIMIZERS), default=cfg.optimizer, help="optimizer of both networks")
    add("--gradient-penalty", choices=sorted(penalties.PENALTIES), default=None,
        help=f"gradient penalty on D, weighted by --gp-weight (default: the preset's, {cfg.gradient_penalty!r}, "
             "or r1 when --gp-weight is given; a penalty chosen without --gp-weight uses its usual weight, 10)")
    add("--spectral-norm", action=argparse.BooleanOptionalAction, default=cfg.discriminator.spectral_norm,
        help="spectral normalization of every layer of D (Miyato et al. 2018)")
    add("--pack", type=positive_int, default=cfg.pack, help="PacGAN: D judges this many samples at once")
    add("--precision", choices=sorted(models.PRECISIONS), default=cfg.precision,
        help="of matmuls and convolutions (bf16: bfloat16, for accelerators); parameters stay float32")
    add("--augment", type=augmentations, default=cfg.augment,
        help="DiffAugment of D's images, comma-separated (translation, cutout) or none; applied with probability "
             "--augment-p (1 when not given)")
    add("--n-disc", type=positive_int, default=cfg.n_disc, help="D updates per step")
    add("--n-gen", type=positive_int, default=cfg.n_gen, help="G updates per step")
    add("--log-every", type=positive_int, default=cfg.log_every, help="log metrics every N steps")


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
    penalty = args.gradient_penalty or ("r1" if args.gp_weight and cfg.gradient_penalty == "none"
                                        else cfg.gradient_penalty)
    cfg = cfg.replace(batch_size=args.batch_size, loss=args.loss, optimizer=args.optimizer, n_disc=args.n_disc,
                      n_gen=args.n_gen, log_every=args.log_every, gradient_penalty=penalty, pack=args.pack,
                      augment=args.augment, precision=args.precision,
                      generator=dataclasses.replace(cfg.generator, hidden=args.g_hidden),
                      discriminator=dataclasses.replace(cfg.discriminator, hidden=args.d_hidden,
                                                        spectral_norm=args.spectral_norm))
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
                             overwrite=args.overwrite, progress=not args.no_progress, schedule=schedule)
        validate(cfg, hp)
        options.check(cfg.log_every)
        for stage in schedule.stages(hp):
            validate(cfg, stage)
        check_seeds(seeds)
        rundir.check_target(out, args.overwrite, args.resume)
        devices.initialize_distributed(args.coordinator, args.num_processes, args.process_id)  # before JAX starts
        check_fits(cfg, len(seeds))  # before a single member is built
    return Experiment(cfg, hp, seeds, out, options, args, parser, task, data, name)


def check_fits(cfg: Config, n_members: int) -> None:
    """Refuse (ResourceError) members whose state cannot fit, before a single member is built: the GAN's
    shapes alone, without its data."""
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
