"""A paper's benchmark, exactly as its protocol sets it, for N seeds with a named recipe, printed beside the
published rows (mean +- standard error, as the papers report, and the 95% CI).

    python -m experiments.benchmark_suite --benchmark pacgan_ring --recipe pacgan_ring --seeds 10
    python -m experiments.benchmark_suite --benchmark stacked_mnist --recipe stacked_dcgan --seeds 4 \\
        --data-dir ../shared/data/mnist-test

Benchmarks (gan_jax.tasks.benchmarks): pacgan_ring, pacgan_grid, veegan_ring, veegan_grid, stacked_mnist. A recipe is
any preset (gan_jax.presets); its dataset is replaced by the benchmark's, every other flag of the experiments
applies. Writes the run directory as every experiment does; summary.json's `benchmark` holds the protocol's
every parameter, the published rows and ours.
"""
from __future__ import annotations

import sys

from gan_jax import cli, presets, tasks
from gan_jax.engine import devices
from gan_jax.engine.members import grid
from gan_jax.tasks import benchmarks


def parse(argv) -> tuple[cli.Experiment, benchmarks.Protocol]:
    recipe = presets.get(cli.preset_from(argv, sorted(presets.PRESETS), "ring8", flag="--recipe"))
    protocol_name = cli.preset_from(argv, sorted(benchmarks.PROTOCOLS), "pacgan_ring", flag="--benchmark")
    protocol = benchmarks.get(protocol_name)
    parser = cli.experiment_parser("benchmark_suite", __doc__.split("\n")[0], recipe)
    parser.set_defaults(seeds=10)
    parser.add_argument("--benchmark", choices=sorted(benchmarks.PROTOCOLS), default="pacgan_ring",
                        help="the paper's protocol: data and metric")
    parser.add_argument("--recipe", choices=sorted(presets.PRESETS), default="ring8", help="the preset to train")
    task = tasks.get(protocol.task)
    if protocol.task == "stacked_mnist":  # its data flags; a toy protocol names its data itself
        task.add_flags(parser, recipe.config)
    args = parser.parse_args(argv)
    if args.recipe not in task.presets:
        parser.error(f"--recipe {args.recipe} trains on {recipe.task} data; --benchmark {protocol.name} needs a "
                     f"{protocol.task} recipe: one of {list(task.presets)}")
    with cli.exit_on_error(parser):
        data = task.load(args)
    cfg = recipe.config.replace(data=protocol.dataset)
    return cli.resolve(parser, args, recipe, cfg, "benchmark_suite", task, data), protocol


def run(exp: cli.Experiment, protocol: benchmarks.Protocol):
    members = grid(exp.seeds, exp.hparams)
    extra = {"experiment": "benchmark_suite", "benchmark": protocol.name, "recipe": exp.args.recipe}
    return exp.task.train_and_evaluate(exp.cfg, members, exp.out, exp.options, exp.data, extra,
                                       not exp.args.no_figures)


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    exp, protocol = parse(argv)
    with cli.exit_on_error(exp.parser):
        result = run(exp, protocol)
    if result.run.primary:
        ours = {c: benchmarks.mean_se_ci([m[f"eval_{c}"] for m in result.summary["members"]]) for c in protocol.metrics}
        label = f"gan_jax {exp.args.recipe}, {len(result.seeds)} seeds x {result.summary['steps']:,} steps"
        text = benchmarks.table(protocol, ours, label)
        result.summary["benchmark"] = {"protocol": {**vars(protocol), "provenance": result.summary.get("provenance")},
                                       "ours": ours, "source": benchmarks.SOURCE}
        result.run.write_json("summary.json", result.summary)
        (result.run.path / "benchmark.md").write_text(f"# {protocol.name}: {protocol.description}\n\n{text}")
        print("\n".join(exp.task.summary_lines(result)) + f"\n\n{protocol.name}: {protocol.description}\n{text}")
    cli.exit_if_preempted(result, "experiments.benchmark_suite", argv)


if __name__ == "__main__":
    main()
