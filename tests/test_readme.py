"""The README's library examples run as written (a new sampler, model and loss plugged into a sweep)."""
import re

import flax.linen as nn

from conftest import REPO
from gan_jax.models import Discriminator, Generator


def test_readme_python_examples_run_in_order():
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert len(blocks) >= 4
    # the README's placeholders for the user's own flax modules
    namespace = {"MyGenerator": lambda: Generator((16, 16), 2),
                 "MyDiscriminator": lambda: Discriminator((16, 16), 2)}
    for block in blocks:
        exec(block, namespace)
    assert namespace["metrics"]["d_loss"].shape == (16, 200)  # as its comment says
    assert isinstance(namespace["gan"].generator, nn.Module)
