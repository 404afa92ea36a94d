"""Named random streams for everything that is not training: evaluation samples, snapshot latents,
figure data. Each is the same in every run, so a member's numbers depend on its own seed and
hyperparameters only, never on which run (or which first seed) it was part of.

No stream key can equal a member's root key: `jax.random.key(seed)` has key data [0, seed mod 2^32]
(high word 0), while every stream key's high word is STREAM_HIGH_WORD. Keys derived from either (split,
fold_in) are hash outputs of different inputs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

STREAM_HIGH_WORD = 0x9E3779B9
STREAMS = {"evaluation": 1, "snapshots": 2, "figures": 3, "population": 4, "standing_stats": 5}


def stream_key(name: str) -> jax.Array:
    """The root key of the stream `name` (one of STREAMS); fold_in or split it for its uses."""
    if name not in STREAMS:
        raise KeyError(f"unknown random stream {name!r}; choose one of {sorted(STREAMS)}")
    return jax.random.wrap_key_data(jnp.array([STREAM_HIGH_WORD, STREAMS[name]], jnp.uint32), impl="threefry2x32")
