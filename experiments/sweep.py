"""Any experiment x a grid of seeds and hyperparameters, every member trained in one compiled program.

    python -m experiments.sweep --task toy --seeds 16 --lr 1e-4,3e-4,1e-3 -- --data ring8
    python -m experiments.sweep --task mnist --seeds 8 --real-label 1,0.9 --lr 2e-4,1e-3 \\
        -- --preset r2 --data-dir ../shared/data/mnist-test --steps 5000

Grid syntax: each grid flag takes a comma-separated list; the sweep trains every combination for every seed.
Traced values (one flag per traced hyperparameter, and --lr for both learning rates) vary inside one
compiled program: 16 seeds x 4 learning rates are 64 members of one group. Static values (--batch-size,
--loss, --optimizer, --n-disc, --n-gen, --gradient-penalty, --pack, --spectral-norm true,false) change
shapes or code: each combination is a separate group, compiled once and run in turn. --seeds N means seeds --seed .. --seed+N-1; a list (--seeds 0,5,9) names them.
Every setting uses the same seeds. Flags after `--` go to the task's experiment (see `python -m experiments.train --task NAME
--help`), including --steps, --checkpoint-every, --resume and the multi-host flags.

Writes <out>/<group>/ (the run-directory contract of each static group; one group: <out>/all), and
<out>/report.md and <out>/figures/: final metrics per setting as mean +- 95% CI over seeds, the loss curves
of every member faceted by setting, and each final metric against each swept hyperparameter with error bars.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import math
import pathlib
import sys

from gan_jax import cli, commands, tasks
from gan_jax.core.config import Config
from gan_jax.core.validate import registry, validate_hparams
from gan_jax.engine import devices, experiment
from gan_jax.engine.members import grid, stack_hparams
from gan_jax.reporting import report

TASK_OF_EXPERIMENT = {"toy_quadratic": "toy", "mnist_gan": "mnist"}  # the older --experiment names


def static_grid() -> dict[str, tuple]:
    """{flag dest: (value parser, help)} of every static setting declared sweepable (`Config.settings()`)."""
    grid = {}
    for name, spec in Config.settings().items():
        if spec.sweep:
            kind = (choice(["true", "false"]) if spec.kind == "bool" else choice(sorted(registry(spec)))
                    if spec.kind == "choice" else cli.positive_int)
            grid[spec.flag.replace("-", "_")] = (kind, spec.help)
    return grid


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
    parser.add_argument("--task", default=None, help=f"the task to grid: one of {', '.join(tasks.names())}, or "
                        "module:attribute of your own (default: toy)")
    parser.add_argument("--experiment", choices=sorted(TASK_OF_EXPERIMENT), default=None,
                        help="the older name of --task: toy_quadratic (toy) or mnist_gan (mnist)")
    parser.add_argument("--seeds", type=seed_list, default=list(range(4)),
                        help="N seeds per setting, or a comma-separated list of seeds (default: 4)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="first seed when --seeds is a count")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="sweep directory (default: runs/sweep-<time>)")
    for name, spec in cli.traced_specs().items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=value_list(cli.traced_value(spec)), default=None,
                            help=f"traced: {spec.help}, comma-separated")
    for name, (kind, help_text) in static_grid().items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=value_list(kind), default=None,
                            help=f"static (one group each): {help_text}, comma-separated")
    args = parser.parse_args(own)
    args.task = args.task or TASK_OF_EXPERIMENT.get(args.experiment, "toy")
    given = [a[2:].split("=")[0].replace("-", "_") for a in own if a.startswith("--")]
    args.static_order = [k for k in dict.fromkeys(given) if k in static_grid()]  # groups named in the order given
    with cli.exit_on_error(parser):
        tasks.get(args.task)
    if args.seeds == list(range(len(args.seeds))) and args.seed:
        args.seeds = [args.seed + s for s in args.seeds]
    if "--out" in rest or "--seeds" in rest or "--seed" in rest:
        parser.error("give --out and --seeds before `--`, to the sweep")
    return parser, args, rest


def groups(args) -> list[dict]:
    """Every combination of the static lists, as {setting: value}; one group when none is given."""
    static = {k: getattr(args, k) for k in args.static_order}
    return [dict(zip(static, values)) for values in itertools.product(*static.values())]


def traced_lists(args) -> dict[str, list[float]]:
    """{hyperparameter (or alias): values} of the traced grid flags given."""
    return {k: getattr(args, k) for k in cli.traced_specs() if getattr(args, k) is not None}


def static_flag(name: str, value) -> list[str]:
    """The experiment's flags for one static grid value."""
    if value in ("true", "false"):  # a bool setting's grid values
        return [f"--{name.replace('_', '-')}" if value == "true" else f"--no-{name.replace('_', '-')}"]
    return [f"--{name.replace('_', '-')}", str(value)]


def group_name(group: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in group.items()) or "all"


def prepare(parser, args, rest, out: pathlib.Path) -> list:
    """(group, experiment, members) of every static group, all validated before anything is
    written or compiled."""
    traced = traced_lists(args)
    penalty_given = "--gradient-penalty" in rest or args.gradient_penalty is not None
    gp_on = [] if penalty_given or not any(traced.get("gp_weight", [])) else ["--gradient-penalty", "r1"]
    n_members = len(args.seeds) * math.prod(len(v) for v in traced.values())
    prepared = []
    for group in groups(args):
        flags = [f for k, v in group.items() for f in static_flag(k, v)]
        exp = commands.parse(rest + flags + gp_on + ["--seeds", "1", "--out", str(out / group_name(group))],
                             "sweep", args.task)
        with cli.exit_on_error(parser, flags_of=exp.parser):
            cli.check_fits(exp.cfg, n_members, exp.task, exp.data)  # before a single member is built
            members = grid(args.seeds, exp.hparams, **traced)
            validate_hparams(exp.cfg, stack_hparams([m.hparams for m in members]))
        prepared.append((group, exp, members))
    return prepared


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    parser, args, rest = parse(argv)
    out = args.out or pathlib.Path("runs") / f"sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    # what to run again after a SIGTERM: this sweep's own --out, and --resume after `--` (to the experiment)
    resume_argv = (argv if args.out else ["--out", str(out), *argv]) + ([] if "--" in argv else ["--"])
    if out.exists() and any(out.iterdir()) and "--resume" not in rest and "--overwrite" not in rest:
        parser.error(f"--out {out} exists and is not empty; choose another directory, or pass --overwrite or "
                     "--resume after `--`")
    results = []
    for group, exp, members in prepare(parser, args, rest, out):
        print(f"group {group_name(group)}: {len(members)} members ({len(members) // len(args.seeds)} settings x "
              f"{len(args.seeds)} seeds), one compiled program")
        with cli.exit_on_error(exp.parser):
            result = commands.run(exp, members)
        results.append((group, result))
        print(experiment.throughput_line(result.summary))
        cli.exit_if_preempted(result, "experiments.sweep", resume_argv)
    if results[0][1].run.primary:
        path = report.write(out, results, varied=list(traced_lists(args)),
                            reference=results[-1][1].summary.get("real_reference"))
        print(path.read_text())
        print(f"sweep directory: {out}")


if __name__ == "__main__":
    main()
