"""Train GANs on any task (built-in, your own images, or your own module:attribute), many seeds at once.

    python -m experiments.train --task toy --preset ring8 --seeds 8
    python -m experiments.train --task mnist --preset dcgan --data-dir ../shared/data/mnist-test
    python -m experiments.train --task images --data my_images.npz --preset dcgan
    python -m experiments.train --task experiments.custom_task:TASK --steps 400

`--task NAME --help` lists that task's presets and data flags beside every shared flag.
"""
from gan_jax import commands


def main(argv=None):
    commands.main(argv, "train", description=__doc__.split("\n")[0])


if __name__ == "__main__":
    main()
