"""Data: on-device samplers, each a pure function (key, n) -> float32[n, dim], and the dataset registry."""
import math

from gan_jax.data import mnist
from gan_jax.data.toy import get_dataset, Sampler, TOY_DATASETS, ToyDataset

# Every dataset a Config can name: toy ones are formulas (a sampler comes with them), image ones are
# loaded from files and sampled by `mnist.image_sampler`.
DATASETS: dict = {**TOY_DATASETS, **mnist.IMAGE_DATASETS}



def dimension(name: str) -> int:
    """The flat dimension of one sample of dataset `name` (2 for toy data, 784 for MNIST)."""
    dataset = DATASETS[name]
    return dataset.dim if isinstance(dataset, ToyDataset) else int(math.prod(dataset.image_shape))


__all__ = ["DATASETS", "dimension", "TOY_DATASETS", "Sampler", "ToyDataset", "get_dataset", "mnist"]
