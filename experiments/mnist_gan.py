"""MNIST GANs of references R2, R3 and R4, DCGAN and conditional GANs, for many seeds in one program.

    python -m experiments.mnist_gan --preset r2 --data-dir ../shared/data/mnist-test --seeds 4
    python -m experiments.mnist_gan --preset r4 --loss non_saturating_prob --data-dir ../shared/data/mnist-test
    python -m experiments.mnist_gan --preset dcgan --data-dir ../shared/data/mnist-test --seeds 2
    python -m experiments.mnist_gan --preset cgan --data-dir ../shared/data/mnist-test

Presets (gan_jax.presets, described in --help's choices and the README): r2, r3, r4, dcgan, cgan, cdcgan.
Without --data-dir, tensorflow-datasets provides the data. Figures (in <run>/figures): D and G losses of
every member, the first seed's samples every --snapshot-every steps as a 4x4 grid (R4) and an 8x8 grid
(a conditional preset: 10 x 8, one row per digit), an animated GIF, every member's final grid, and the
classifier metrics against step. At every snapshot each member's 2,000 samples are scored by the shipped
classifier (gan_jax.metrics.mnist); the same metrics of real images are printed beside them as the ceiling.
"""
from __future__ import annotations

import sys

from gan_jax import cli, presets
from gan_jax.data import mnist
from gan_jax.engine import devices
from gan_jax.engine.members import grid
from gan_jax.tasks import mnist as mnist_task

MNIST_PRESETS = sorted(name for name, p in presets.PRESETS.items() if p.task == "mnist")


def parse(argv) -> cli.Experiment:
    preset = presets.get(cli.preset_from(argv, MNIST_PRESETS, "r2"))
    parser = cli.experiment_parser("mnist_gan", __doc__.split("\n")[0], preset)
    add = parser.add_argument
    add("--preset", choices=MNIST_PRESETS, default="r2", help="a named configuration (gan_jax.presets)")
    add("--dataset", choices=sorted(mnist.IMAGE_DATASETS), default="mnist", help="dataset")
    add("--data-dir", default=None, help="directory of IDX files (offline); default: tensorflow-datasets")
    add("--split", choices=list(mnist_task.SPLITS), default="auto",
        help="split to train on; auto: train if present, else test")
    add("--no-eval", action="store_true", help="skip the classifier metrics")
    args = parser.parse_args(argv)
    return cli.resolve(parser, args, preset, preset.config.replace(data=args.dataset), "mnist_gan")


def load(exp: cli.Experiment) -> mnist_task.MnistData:
    with cli.exit_on_error(exp.parser):
        data = mnist_task.load(exp.args.dataset, exp.args.data_dir, exp.args.split, evaluate=not exp.args.no_eval)
    held = f"; {len(data.heldout)} held out for the metrics" if data.heldout is not None else ""
    print(f"{data.dataset}/{data.split} from {data.source}: training on {len(data.train.images)} images{held}")
    if data.note:
        print(data.note)
    return data


def run(exp: cli.Experiment, members=None, **run_options):
    """Train the experiment's members (default: its seeds at its hyperparameters); `run_options` go to
    experiment.run (a population search's controller, an initial state)."""
    data = load(exp)
    members = members or grid(exp.seeds, exp.hparams)
    return mnist_task.train_and_evaluate(exp.cfg, members, exp.out, exp.options, data,
                                         {"experiment": "mnist_gan", "preset": exp.args.preset},
                                         figures=not exp.args.no_figures, **run_options)


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    exp = parse(argv)
    with cli.exit_on_error(exp.parser):
        result = run(exp)
    if result.run.primary:
        print("\n".join(mnist_task.summary_lines(result)))
    cli.exit_if_preempted(result, "experiments.mnist_gan", argv)


if __name__ == "__main__":
    main()
