"""Who trains: members as (seed, HParams) pairs, grids of seeds x hyperparameter values, and their
stacked, device-ready forms (one key per member, member-stacked HParams)."""
from __future__ import annotations

import itertools
from typing import Iterable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.core.config import HParams
from gan_jax.errors import ConfigError

MAX_SEED = 2**32 - 1  # jax.random.key keeps a seed's low 32 bits: larger seeds would repeat smaller ones
ALIASES = {"lr": ("lr_g", "lr_d")}  # one grid value that sets several traced hyperparameters


class Member(NamedTuple):
    seed: int
    hparams: HParams


def check_seeds(seeds: Sequence[int]) -> None:
    """Each seed an integer in [0, MAX_SEED] (a range is checked by its ends)."""
    ends = [seeds[0], seeds[-1]] if isinstance(seeds, range) and len(seeds) else seeds
    bad = [s for s in ends if not (isinstance(s, (int, np.integer)) and 0 <= s <= MAX_SEED)]
    if bad:
        raise ConfigError(f"`seeds`: each must be an integer in [0, {MAX_SEED}], got {bad[0]!r}")


def traced_names() -> set[str]:
    """What a grid or a report may name: each traced hyperparameter, and each alias (`lr`)."""
    return set(HParams.specs()) | set(ALIASES)


def grid(seeds: Iterable[int], base: HParams = HParams(), **values: Sequence[float]) -> list[Member]:
    """Every combination of the listed traced values, on top of `base`, for every seed: settings vary
    slowest, seeds fastest (`lr` sets both `lr_g` and `lr_d`). `grid(range(8), hp, lr=[1e-4, 1e-3])` is
    16 members: seeds 0-7 at lr 1e-4, then seeds 0-7 at lr 1e-3."""
    seeds = list(seeds)
    check_seeds(seeds)
    for name in values:
        if name not in traced_names():
            raise ConfigError(f"`{name}` is not a traced hyperparameter; choose from {sorted(traced_names())}")
    members = []
    for combination in itertools.product(*values.values()):
        changes = {}
        for name, value in zip(values, combination):
            changes.update({target: value for target in ALIASES.get(name, (name,))})
        members += [Member(seed, base.replace(**changes)) for seed in seeds]
    return members


def stack_hparams(hparams: Sequence[HParams]) -> HParams:
    """Member-stacked float32 HParams from one HParams per member."""
    return jax.tree.map(lambda *v: jnp.asarray(np.array(v, np.float32)), *hparams)


def member_keys(seeds: Sequence[int]) -> jax.Array:
    """One key per member, from its seed alone, so a member's numbers never depend on its neighbours."""
    check_seeds(list(seeds))
    return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds, np.uint32)))
