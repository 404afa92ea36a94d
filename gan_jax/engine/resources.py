"""Will a run fit in memory? Estimated before anything is allocated: the members' state from
`jax.eval_shape`, the training program's temporaries from XLA's analysis of the compiled program."""
from __future__ import annotations

import os
from typing import Sequence

import jax

from gan_jax.errors import ResourceError

GB = 1e9


def _gb(n: float) -> str:
    value = n / GB
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def tree_bytes(tree) -> int:
    """Bytes of every array (or ShapeDtypeStruct) leaf; PRNG keys count their raw data."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        dtype = leaf.dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            raw = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
            total += leaf.size * raw.size * raw.dtype.itemsize
        else:
            total += leaf.size * dtype.itemsize
    return total


def available_bytes(devices: Sequence[jax.Device]) -> tuple[int, str]:
    """(bytes, what they are): an accelerator's memory limit per device, or on a CPU the host's
    available memory, shared by all its devices."""
    stats = devices[0].memory_stats() if devices[0].platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"{devices[0].device_kind} memory per device"
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024, "available host memory"
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def _per_device_share(devices: Sequence[jax.Device]) -> int:
    """How many devices share one memory limit: all of them on a CPU host, one on an accelerator."""
    return len(devices) if devices[0].platform == "cpu" else 1


def check_state(state_bytes_per_member: int, n_members: int, devices: Sequence[jax.Device]) -> None:
    """Refuse members whose state alone cannot fit."""
    limit, what = available_bytes(devices)
    need = state_bytes_per_member * n_members / len(devices) * _per_device_share(devices)
    if need > limit:
        fit = int(limit / state_bytes_per_member * len(devices) / _per_device_share(devices))
        raise ResourceError(f"{n_members:,} members need {_gb(need)} GB of state ({state_bytes_per_member:,} "
                            f"bytes each) but {what} is {_gb(limit)} GB; use at most about {fit:,} members "
                            "(`seeds` x settings) here, or more devices")


def check_program(compiled: jax.stages.Compiled, devices: Sequence[jax.Device], what_runs: str) -> None:
    """Refuse a compiled program whose arguments, outputs and temporaries cannot fit on its devices."""
    stats = compiled.memory_analysis()
    if stats is None:
        return
    per_device = (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
                  + stats.temp_size_in_bytes)
    limit, what = available_bytes(devices)
    need = per_device * _per_device_share(devices)
    if need > limit:
        raise ResourceError(f"{what_runs} needs {_gb(need)} GB ({_gb(stats.temp_size_in_bytes * _per_device_share(devices))} "
                            f"GB of it temporaries) but {what} is {_gb(limit)} GB; use a smaller `batch_size` "
                            "or fewer members")
