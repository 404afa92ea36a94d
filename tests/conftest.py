import pathlib

import pytest

from gan_jax.config import Config

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_cfg() -> Config:
    """R1's model on small batches: fast enough to run hundreds of steps in a test."""
    return Config(batch_size=64, steps=40, log_every=10)
