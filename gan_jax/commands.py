"""The experiment command of every task: a command line parsed into a validated `cli.Experiment` (the
task's presets and data flags beside every shared flag), run, and summarized. `experiments.train` is this
command for any task; `experiments.toy_quadratic` and `experiments.mnist_gan` are it for one task each.
"""
from __future__ import annotations

import sys

from gan_jax import cli, presets, tasks
from gan_jax.engine import devices
from gan_jax.engine.members import grid
from gan_jax.errors import GanJaxError

DEFAULT_TASK = "toy"


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value given to `flag` in `argv` (`--flag v` or `--flag=v`), or None; read before parsing, since
    it decides which flags exist."""
    for i, arg in enumerate(argv):
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
    return None


def task_from(argv: list[str], prog: str):
    """The task `--task` names (default: toy), or one line and exit status 2."""
    try:
        return tasks.get(flag_value(argv, "--task") or DEFAULT_TASK)
    except GanJaxError as e:
        cli.OneLineParser(prog=f"python -m experiments.{prog}").error(str(e).replace("`task`", "--task"))


def parse(argv: list[str], prog: str = "train", task=None, description: str | None = None) -> cli.Experiment:
    """`argv` for `task` (None: the one `--task` names) as a validated Experiment, its data loaded."""
    fixed = task is not None
    task = task if fixed else task_from(argv, prog)
    task = tasks.get(task) if isinstance(task, str) else task
    preset = presets.get(cli.preset_from(argv, list(task.presets), task.presets[0]))
    parser = cli.experiment_parser(prog, description or f"Train GANs on {task.description}.", preset)
    parser.set_defaults(seeds=task.default_seeds)
    if not fixed:
        parser.add_argument("--task", default=DEFAULT_TASK,
                            help=f"the task: one of {', '.join(tasks.names())}, or module:attribute of your own")
    parser.add_argument("--preset", choices=task.presets, default=task.presets[0],
                        help="a named configuration (gan_jax.presets)")
    task.add_flags(parser, preset.config)
    args = parser.parse_args(argv)
    with cli.exit_on_error(parser):
        data = task.load(args)
        cfg = task.configure(preset.config, args, data)
    return cli.resolve(parser, args, preset, cfg, prog, task, data)


def run(exp: cli.Experiment, members=None, **run_options):
    """Train the experiment's members (default: its seeds at its hyperparameters); `run_options` go to
    experiment.run (a population search's controller, an initial state)."""
    members = members or grid(exp.seeds, exp.hparams)
    return exp.task.train_and_evaluate(exp.cfg, members, exp.out, exp.options, exp.data,
                                       {"experiment": exp.name, "preset": exp.args.preset,
                                        "task_ref": getattr(exp.args, "task", None) or exp.task.name},
                                       figures=not exp.args.no_figures, **run_options)


def main(argv: list[str] | None, prog: str = "train", task=None, description: str | None = None) -> None:
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    exp = parse(argv, prog, task, description)
    with cli.exit_on_error(exp.parser):
        result = run(exp)
    if result.run.primary:
        print("\n".join(exp.task.summary_lines(result)))
    cli.exit_if_preempted(result, f"experiments.{prog}", argv)
