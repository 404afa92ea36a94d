"""Reference R1: the TF1 toy GAN on the quadratic curve (x, 10 + x^2), for many seeds in one program.

    python -m experiments.toy_quadratic                 # quick default: 8 seeds x 10,000 steps, ~1 min on 2 CPU cores
    python -m experiments.toy_quadratic --full          # the tutorial's 100,001 iterations
    python -m experiments.toy_quadratic --data ring8    # the other toy datasets, same model
    python -m experiments.toy_quadratic --preset ring8  # a documented recipe (gan_jax.presets)

Figures (in <run>/figures): the real data, D and G loss curves of every member, real vs generated samples
every --snapshot-every steps (PNG grid and GIF), D's 2-D feature space before and after a D update and a
G update, with centroids (when D has a 2-unit feature layer, as R1), and the sample-quality metrics
(gan_jax.metrics.toy) against step with a 95% band over seeds, measured on 2,500 samples per member.
"""
from __future__ import annotations

import dataclasses
import sys

from gan_jax import cli, data, presets
from gan_jax.components import models
from gan_jax.engine import devices
from gan_jax.engine.members import grid
from gan_jax.tasks import toy

TOY_PRESETS = sorted(name for name, p in presets.PRESETS.items() if p.task == "toy")


def parse(argv) -> cli.Experiment:
    preset = presets.get(cli.preset_from(argv, TOY_PRESETS, "r1"))
    cfg = preset.config
    parser = cli.experiment_parser("toy_quadratic", __doc__.split("\n")[0], preset)
    parser.set_defaults(seeds=8)
    add = parser.add_argument
    add("--preset", choices=TOY_PRESETS, default="r1", help="a named configuration (gan_jax.presets)")
    add("--full", action="store_true", help=f"the tutorial's {presets.R1_FULL_STEPS:,} iterations")
    add("--data", choices=sorted(data.TOY_DATASETS), default=cfg.data, help="toy dataset")
    add("--raw-data", action="store_true", help="train on the tutorial's raw units instead of standardized data")
    add("--feature-dim", type=cli.non_negative_int, default=cfg.discriminator.feature_dim or 0,
        help="width of D's linear feature layer; 0: none (features = last hidden layer)")
    add("--activation", choices=sorted(models.ACTIVATIONS), default=cfg.generator.activation,
        help="hidden activation of both nets")
    add("--latent-dim", type=cli.positive_int, default=cfg.latent_dim, help="z's dimension")
    args = parser.parse_args(argv)
    if args.full:
        args.steps = presets.R1_FULL_STEPS
    cfg = cfg.replace(data=args.data, standardize=not args.raw_data, latent_dim=args.latent_dim,
                      generator=dataclasses.replace(cfg.generator, activation=args.activation),
                      discriminator=dataclasses.replace(cfg.discriminator, feature_dim=args.feature_dim or None,
                                                        activation=args.activation))
    return cli.resolve(parser, args, preset, cfg, "toy_quadratic")


def run(exp: cli.Experiment, members=None, **run_options):
    """Train the experiment's members (default: its seeds at its hyperparameters); `run_options` go to
    experiment.run (a population search's controller, an initial state)."""
    members = members or grid(exp.seeds, exp.hparams)
    return toy.train_and_evaluate(exp.cfg, members, exp.out, exp.options,
                                  {"experiment": "toy_quadratic", "preset": exp.args.preset},
                                  figures=not exp.args.no_figures, **run_options)


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    argv = sys.argv[1:] if argv is None else argv
    exp = parse(argv)
    with cli.exit_on_error(exp.parser):
        result = run(exp)
    if result.run.primary:
        print("\n".join(toy.summary_lines(result)))
    cli.exit_if_preempted(result, "experiments.toy_quadratic", argv)


if __name__ == "__main__":
    main()
