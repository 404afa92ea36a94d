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

from gan_jax import cli, presets
from gan_jax.engine import devices
from gan_jax.engine.members import grid
from gan_jax.tasks import benchmarks, mnist as mnist_task, stacked_mnist, toy


def parse(argv) -> tuple[cli.Experiment, benchmarks.Protocol]:
    recipe = presets.get(cli.preset_from(argv, sorted(presets.PRESETS), "ring8", flag="--recipe"))
    protocol_name = cli.preset_from(argv, sorted(benchmarks.PROTOCOLS), "pacgan_ring", flag="--benchmark")
    protocol = benchmarks.get(protocol_name)
    parser = cli.experiment_parser("benchmark_suite", __doc__.split("\n")[0], recipe)
    parser.set_defaults(seeds=10)
    parser.add_argument("--benchmark", choices=sorted(benchmarks.PROTOCOLS), default="pacgan_ring",
                        help="the paper's protocol: data and metric")
    parser.add_argument("--recipe", choices=sorted(presets.PRESETS), default="ring8", help="the preset to train")
    parser.add_argument("--data-dir", default=None, help="stacked_mnist: directory of MNIST's IDX files (any split)")
    parser.add_argument("--split", choices=["auto", "train", "test"], default="auto", help="stacked_mnist: split")
    args = parser.parse_args(argv)
    if (recipe.task == "toy") != (protocol.task == "toy"):
        parser.error(f"--recipe {args.recipe} trains on {recipe.task} data; --benchmark {protocol.name} needs a "
                     f"{protocol.task} recipe")
    return cli.resolve(parser, args, recipe, recipe.config.replace(data=protocol.dataset), "benchmark_suite"), protocol


def run(exp: cli.Experiment, protocol: benchmarks.Protocol):
    members = grid(exp.seeds, exp.hparams)
    extra = {"experiment": "benchmark_suite", "benchmark": protocol.name, "recipe": exp.args.recipe}
    figures = not exp.args.no_figures
    if protocol.task == "toy":
        return toy.train_and_evaluate(exp.cfg, members, exp.out, exp.options, extra, figures), toy.summary_lines
    data = mnist_task.load("mnist", exp.args.data_dir, exp.args.split, evaluate=False)
    return (stacked_mnist.train_and_evaluate(exp.cfg, members, exp.out, exp.options, data.train.images, extra, figures),
            stacked_mnist.summary_lines)


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    exp, protocol = parse(argv)
    with cli.exit_on_error(exp.parser):
        result, summary_lines = run(exp, protocol)
    if result.run.primary:
        ours = {c: benchmarks.mean_se_ci([m[f"eval_{c}"] for m in result.summary["members"]]) for c in protocol.metrics}
        label = f"gan_jax {exp.args.recipe}, {len(result.seeds)} seeds x {result.summary['steps']:,} steps"
        text = benchmarks.table(protocol, ours, label)
        result.summary["benchmark"] = {"protocol": {**vars(protocol), "provenance": result.summary.get("provenance")},
                                       "ours": ours, "source": benchmarks.SOURCE}
        result.run.write_json("summary.json", result.summary)
        (result.run.path / "benchmark.md").write_text(f"# {protocol.name}: {protocol.description}\n\n{text}")
        print("\n".join(summary_lines(result)) + f"\n\n{protocol.name}: {protocol.description}\n{text}")
    cli.exit_if_preempted(result, "experiments.benchmark_suite", argv)


if __name__ == "__main__":
    main()
