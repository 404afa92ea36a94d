"""Named random streams for everything that is not training: evaluation samples, snapshot latents,
figure data. Each is the same in every run, so a member's numbers depend on its own seed and
hyperparameters only, never on which run (or which first seed) it was part of.

No stream key can equal a member's root key: `jax.random.key(seed)` has key data [0, seed mod 2^32]
(high word 0), while every stream key's high word is STREAM_HIGH_WORD. Keys derived from either (split,
fold_in) are hash outputs of different inputs.
"""
from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp

STREAM_HIGH_WORD = 0x9E3779B9
STREAMS = {"evaluation": 1, "snapshots": 2, "figures": 3, "population": 4, "standing_stats": 5}


USER_STREAMS = 2**31  # a user's stream id: this plus 31 bits of its name's sha256, never a library stream's


def stream_id(name: str) -> int:
    """The library's id for its own streams (STREAMS); any other non-empty name is a user's own stream."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a random stream's name is a non-empty string, got {name!r}")
    if name in STREAMS:
        return STREAMS[name]
    return USER_STREAMS + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % USER_STREAMS


def stream_key(name: str) -> jax.Array:
    """The root key of the stream `name`: one of the library's (STREAMS), or a name of your own (a custom
    metric's reference draw: `stream_key("my_metric")`); fold_in or split it for its uses."""
    return jax.random.wrap_key_data(jnp.array([STREAM_HIGH_WORD, stream_id(name)], jnp.uint32), impl="threefry2x32")
