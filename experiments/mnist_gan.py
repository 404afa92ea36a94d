"""MNIST GANs of references R2, R3 and R4, DCGAN and conditional GANs, for many seeds in one program.

    python -m experiments.mnist_gan --preset r2 --data-dir ../shared/data/mnist-test --seeds 4
    python -m experiments.mnist_gan --preset r4 --loss non_saturating_prob --data-dir ../shared/data/mnist-test
    python -m experiments.mnist_gan --preset dcgan --data-dir ../shared/data/mnist-test --seeds 2
    python -m experiments.mnist_gan --preset cgan --data-dir ../shared/data/mnist-test

Presets (gan_jax.presets, described in --help's choices and docs/experiments.md): r2, r3, r4, dcgan, cgan, cdcgan.
Without --data-dir, tensorflow-datasets provides the data. Figures (in <run>/figures): D and G losses of
every member, the first seed's samples every --snapshot-every steps as a 4x4 grid (R4) and an 8x8 grid
(a conditional preset: 10 x 8, one row per digit), an animated GIF, every member's final grid, and the
classifier metrics against step. At every snapshot each member's 2,000 samples are scored by the shipped
classifier (gan_jax.metrics.mnist); the same metrics of real images are printed beside them as the ceiling.
"""
from __future__ import annotations

from gan_jax import commands


def parse(argv):
    return commands.parse(argv, "mnist_gan", "mnist", __doc__.split("\n")[0])


def run(exp, members=None, **run_options):
    return commands.run(exp, members, **run_options)


def main(argv=None):
    commands.main(argv, "mnist_gan", "mnist", __doc__.split("\n")[0])


if __name__ == "__main__":
    main()
