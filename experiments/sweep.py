"""Any experiment x a grid of seeds and hyperparameters, every member trained in one compiled program.

    python -m experiments.sweep --experiment toy_quadratic --seeds 16 --lr 1e-4,3e-4,1e-3 -- --data ring8
    python -m experiments.sweep --experiment mnist_gan --seeds 8 --real-label 1,0.9 --lr 2e-4,1e-3 \\
        -- --preset r2 --data-dir ../shared/data/mnist-test --steps 5000

Grid syntax: each grid flag takes a comma-separated list; the sweep trains every combination for every seed.
Traced values (--lr, --lr-g, --lr-d, --beta1, --beta2, --real-label, --gp-weight, --ema-decay) vary inside
one compiled program: 16 seeds x 4 learning rates are 64 members of one group. Static values (--batch-size, --loss,
--optimizer, --n-disc) change shapes or code: each combination is a separate group, compiled once and run in
turn. --seeds N means seeds --seed .. --seed+N-1; a list (--seeds 0,5,9) names them. Every setting uses
the same seeds. Flags after `--` go to the experiment (see `python -m experiments.<name> --help`), including
--steps, --checkpoint-every, --resume and the multi-host flags.

Writes <out>/<group>/ (the run-directory contract of each static group; one group: <out>/all), and
<out>/report.md and <out>/figures/: final metrics per setting as mean +- 95% CI over seeds, the loss curves
of every member faceted by setting, and each final metric against each swept hyperparameter with error bars.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import itertools
import pathlib
import sys

from gan_jax import sweep as sweep_lib

sweep_lib.use_cpu_cores_as_devices()  # before any JAX computation

from gan_jax import cli, experiment, losses, report  # noqa: E402
from gan_jax.config import OPTIMIZERS, ConfigError, validate_hparams  # noqa: E402

EXPERIMENTS = ("toy_quadratic", "mnist_gan")
TRACED = {"lr": "learning rate of both networks", "lr_g": "G's learning rate", "lr_d": "D's learning rate",
          "beta1": "Adam b1 / SGD momentum", "beta2": "Adam b2 / RMSProp decay",
          "real_label": "D's target for real data (0.9: one-sided smoothing)", "gp_weight": "gradient penalty weight",
          "ema_decay": "decay of G's parameter average that samples use"}
STATIC = {"batch_size": "batch size", "loss": f"loss family ({', '.join(sorted(losses.LOSSES))})",
          "optimizer": f"optimizer ({', '.join(OPTIMIZERS)})", "n_disc": "D updates per step"}


def value_list(kind):
    """A parser of 'a,b,c' into a list of `kind` values: not empty, no duplicates."""
    def parse(text: str) -> list:
        items = text.split(",")
        if not text or any(not item.strip() for item in items):
            raise argparse.ArgumentTypeError(f"empty value in list {text!r}; give comma-separated values")
        try:
            values = [kind(item.strip()) for item in items]
        except (ValueError, argparse.ArgumentTypeError) as e:
            raise argparse.ArgumentTypeError(f"bad value in list {text!r}: {e}") from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"duplicate value in list {text!r}")
        return values
    return parse


def choice(options):
    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {sorted(options)}")
        return text
    return parse


def seed_list(text: str) -> list[int]:
    """'16' -> 16 seeds; '0,5,9' -> those seeds (non-negative, distinct)."""
    if "," not in text:
        return list(range(cli.positive_int(text)))
    return value_list(cli.non_negative_int)(text)


def parse(argv):
    own, rest = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = cli.OneLineParser(prog="python -m experiments.sweep", description=__doc__.split("\n")[0],
                               epilog=__doc__.split("\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", choices=EXPERIMENTS, default="toy_quadratic", help="the experiment to grid")
    parser.add_argument("--seeds", type=seed_list, default=list(range(4)),
                        help="N seeds per setting, or a comma-separated list of seeds (default: 4)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="first seed when --seeds is a count")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="sweep directory (default: runs/sweep-<time>)")
    for name, help_text in TRACED.items():
        positive = name.startswith("lr")
        parser.add_argument(f"--{name.replace('_', '-')}", type=value_list(cli.positive_float if positive else float),
                            default=None, help=f"traced: {help_text}, comma-separated")
    for name, help_text in STATIC.items():
        kind = {"loss": choice(losses.LOSSES), "optimizer": choice(OPTIMIZERS)}.get(name, cli.positive_int)
        parser.add_argument(f"--{name.replace('_', '-')}", type=value_list(kind), default=None,
                            help=f"static (one group each): {help_text}, comma-separated")
    args = parser.parse_args(own)
    if args.seeds == list(range(len(args.seeds))) and args.seed:
        args.seeds = [args.seed + s for s in args.seeds]
    if "--out" in rest or "--seeds" in rest or "--seed" in rest:
        parser.error("give --out and --seeds before `--`, to the sweep")
    return parser, args, rest


def groups(args) -> list[dict]:
    """Every combination of the static lists, as {flag: value}; one group when none is given."""
    static = {k: getattr(args, k) for k in STATIC if getattr(args, k) is not None}
    return [dict(zip(static, values)) for values in itertools.product(*static.values())]


def settings(args) -> list[dict]:
    """Every combination of the traced lists, as {hparam: value}."""
    traced = {k: getattr(args, k) for k in TRACED if getattr(args, k) is not None}
    return [dict(zip(traced, values)) for values in itertools.product(*traced.values())]


def group_name(group: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in group.items()) or "all"


def members_of(base, setting: dict, seeds: list[int]) -> list:
    """(seed, HParams) per member, for one traced setting on top of the experiment's own values."""
    values = dict(setting)
    if "lr" in values:
        lr = values.pop("lr")
        values.setdefault("lr_g", lr)
        values.setdefault("lr_d", lr)
    hp = base.replace(**values)
    return [(seed, hp) for seed in seeds]


def prepare(parser, args, rest, out: pathlib.Path) -> list[tuple[dict, experiment.Setup, list]]:
    """Every static group's experiment and members, all validated before anything is written or compiled."""
    module = importlib.import_module(f"experiments.{args.experiment}")
    grid = settings(args) or [{}]
    gp_on = ["--gp-weight", "1"] if any(s.get("gp_weight") for s in grid) else []  # compile the penalty in
    prepared = []
    for group in groups(args):
        flags = [f for k, v in group.items() for f in (f"--{k.replace('_', '-')}", str(v))]
        run = module.setup(rest + flags + gp_on + ["--seeds", "1", "--out", str(out / group_name(group))])
        members = [m for setting in grid for m in members_of(run.exp.hparams, setting, args.seeds)]
        for _, hp in members:
            try:
                validate_hparams(run.exp.cfg, hp)
            except ConfigError as e:
                parser.error(str(e))
        prepared.append((group, run, members))
    return prepared


def main(argv=None):
    parser, args, rest = parse(sys.argv[1:] if argv is None else argv)
    out = args.out or pathlib.Path("runs") / f"sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if out.exists() and any(out.iterdir()) and "--resume" not in rest and "--overwrite" not in rest:
        parser.error(f"--out {out} exists and is not empty; choose another directory, or pass --overwrite or "
                     "--resume after `--`")
    results = []
    for group, run, members in prepare(parser, args, rest, out):
        print(f"group {group_name(group)}: {len(members)} members ({len(members) // len(args.seeds)} settings x "
              f"{len(args.seeds)} seeds), one compiled program")
        result = experiment.run(run.exp, run.gan, run.exp.args.snapshot_every, extra_config=run.extra_config,
                                evaluate=run.evaluate, members=members)
        results.append((group, result))
        print(experiment.throughput_line(result.summary))
    if results[0][1].run.primary:
        path = report.write(out, results, varied=[k for k in TRACED if getattr(args, k) is not None],
                            reference=run.extra_config.get("real_reference"))
        print(path.read_text())
        print(f"sweep directory: {out}")

if __name__ == "__main__":
    main()
