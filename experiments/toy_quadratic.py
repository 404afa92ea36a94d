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

from gan_jax import commands


def parse(argv):
    return commands.parse(argv, "toy_quadratic", "toy", __doc__.split("\n")[0])


def run(exp, members=None, **run_options):
    return commands.run(exp, members, **run_options)


def main(argv=None):
    commands.main(argv, "toy_quadratic", "toy", __doc__.split("\n")[0])


if __name__ == "__main__":
    main()
