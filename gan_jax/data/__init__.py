"""Data: on-device samplers, each a pure function (key, n) -> float32[n, dim]."""
from gan_jax.data.toy import TOY_DATASETS, ToyDataset, Sampler, get_dataset  # noqa: F401
from gan_jax.data import mnist  # noqa: F401,E402
