"""Command-line flags shared by every experiment, and their validation (exit 2, one line, before any write)."""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import sys
from gan_jax import losses, sweep
from gan_jax.config import DEFAULT_BETAS, OPTIMIZERS, Config, ConfigError, HParams, validate


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad value ends with one line naming the setting, and exit status 2."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default, except None ones, whose help text says what unset means."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def widths(text: str) -> tuple[int, ...]:
    """'128,128' -> (128, 128): layer widths, each a positive integer."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return values


def experiment_parser(name: str, description: str, defaults: Config, default_lr: float) -> OneLineParser:
    """The flags every experiment accepts, with `defaults` shown in --help."""
    parser = OneLineParser(prog=f"python -m experiments.{name}", description=description,
                           formatter_class=DefaultsFormatter)
    add = parser.add_argument
    add("--seeds", type=positive_int, default=4, help="number of members (seeds) trained in parallel")
    add("--seed", type=non_negative_int, default=0, help="first seed; member i uses seed N+i")
    add("--steps", type=positive_int, default=defaults.steps, help="training steps (iterations)")
    add("--batch-size", type=positive_int, default=defaults.batch_size, help="batch size")
    add("--lr", type=positive_float, default=default_lr, help="learning rate of both networks")
    add("--lr-g", type=positive_float, default=None, help="generator learning rate (default: --lr)")
    add("--lr-d", type=positive_float, default=None, help="discriminator learning rate (default: --lr)")
    add("--beta1", type=float, default=None,
        help="first-moment decay: Adam b1, SGD momentum (default: the optimizer's usual, see README)")
    add("--beta2", type=float, default=None,
        help="second-moment decay: Adam b2, RMSProp decay (default: the optimizer's usual)")
    add("--real-label", type=float, default=1.0, help="D's target for real data; 0.9 = one-sided label smoothing")
    add("--gp-weight", type=float, default=0.0,
        help="weight of the zero-centred gradient penalty on real data (R1 penalty, Mescheder et al. 2018); 0: off")
    add("--ema-decay", type=float, default=0.0,
        help="samples and metrics use a moving average of G's parameters with this decay (e.g. 0.999); 0: G itself")
    add("--loss", choices=sorted(losses.LOSSES), default=defaults.loss, help="loss family")
    add("--optimizer", choices=list(OPTIMIZERS), default=defaults.optimizer, help="optimizer of both networks")
    add("--n-disc", type=positive_int, default=defaults.n_disc, help="D updates per step")
    add("--n-gen", type=positive_int, default=defaults.n_gen, help="G updates per step")
    add("--log-every", type=positive_int, default=defaults.log_every, help="log metrics every N steps")
    add("--out", type=pathlib.Path, default=None,
        help=f"run directory (default: runs/{name}-<date>-<time>)")
    add("--overwrite", action="store_true", help="allow writing into a non-empty --out directory")
    add("--checkpoint-every", type=non_negative_int, default=0,
        help="save the whole state (orbax) every N steps and at the end, in <out>/checkpoints; 0: never")
    add("--keep", type=positive_int, default=3, help="checkpoints to keep (the latest K)")
    add("--resume", action="store_true",
        help="continue the run in --out from its latest complete checkpoint (same config; --steps may grow)")
    add("--coordinator", default=None,
        help="multi-host: coordinator address host:port for jax.distributed.initialize "
             "(default: the cluster's environment, if any, else a single process)")
    add("--num-processes", type=positive_int, default=None, help="multi-host: number of processes")
    add("--process-id", type=non_negative_int, default=None, help="multi-host: this process's index")
    add("--no-progress", action="store_true", help="no progress bar")
    return parser


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A parsed, validated command line: what to run, for which members, and where to write."""

    cfg: Config
    hparams: HParams  # the shared traced values; every member uses them (sweeps vary them)
    seeds: tuple[int, ...]
    out: pathlib.Path
    args: argparse.Namespace


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace, cfg: Config, name: str) -> Experiment:
    """Apply the shared flags to `cfg`, validate everything, and pick the run directory (not created)."""
    cfg = cfg.replace(steps=args.steps, batch_size=args.batch_size, loss=args.loss, optimizer=args.optimizer,
                      n_disc=args.n_disc, n_gen=args.n_gen, log_every=args.log_every,
                      gradient_penalty="r1" if args.gp_weight else "none")
    b1, b2 = DEFAULT_BETAS[cfg.optimizer]
    hp = HParams(lr_g=args.lr_g or args.lr, lr_d=args.lr_d or args.lr,
                 beta1=b1 if args.beta1 is None else args.beta1, beta2=b2 if args.beta2 is None else args.beta2,
                 real_label=args.real_label, gp_weight=args.gp_weight, ema_decay=args.ema_decay)
    try:
        validate(cfg, hp)
    except ConfigError as e:
        parser.error(_flag_name(str(e)))
    if args.checkpoint_every % cfg.log_every:
        parser.error(f"--checkpoint-every {args.checkpoint_every} must be a multiple of --log-every {cfg.log_every}")
    if args.resume and args.out is None:
        parser.error("--resume needs --out, the run directory to continue")
    out = args.out or pathlib.Path("runs") / f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if args.resume and not (out / "checkpoints").is_dir():
        parser.error(f"--resume: {out / 'checkpoints'} does not exist; run with --checkpoint-every first, "
                     "or drop --resume")
    if out.exists() and any(out.iterdir()) and not (args.overwrite or args.resume):
        parser.error(f"--out {out} exists and is not empty; choose another directory, pass --overwrite, "
                     "or --resume a checkpointed run")
    seeds = tuple(range(args.seed, args.seed + args.seeds))
    try:
        sweep.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    except ValueError as e:
        parser.error(str(e))
    return Experiment(cfg, hp, seeds, out, args)


def _flag_name(message: str) -> str:
    """'lr_g: ...' -> '--lr-g: ...', so errors name the flag the user typed."""
    setting, _, rest = message.partition(":")
    return f"--{setting.replace('_', '-')}:{rest}" if "." not in setting else message

