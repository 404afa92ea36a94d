"""Device and process set-up, for entry points to call first in `main()` (never at import): one XLA
device per CPU core, and joining a multi-host run."""
from __future__ import annotations

import os

import jax

from gan_jax.errors import ConfigError


def use_cpu_cores_as_devices() -> None:
    """On a CPU-only host, expose one XLA device per core so the member axis is split across cores
    (XLA runs this model's small ops on one core each). Call before JAX starts its backend; no-op on
    GPU/TPU hosts, when the user already chose a device count, or once the backend is running."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    if os.environ.get("JAX_PLATFORMS", "cpu") not in ("", "cpu"):
        return
    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # backend already started: keep what it has
        pass


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-host run (one process per host, or per GPU) before JAX starts its backend: from the
    arguments, else from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, else from a SLURM
    allocation of more than one task; with none of these, a single-process run (nothing to do)."""
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and "JAX_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and "JAX_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAX_PROCESS_ID"])
    if coordinator is None and num_processes is None and process_id is None:
        if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
            jax.distributed.initialize()  # JAX reads the SLURM environment
        return
    if coordinator is None or num_processes is None or process_id is None:
        raise ConfigError("a multi-host run needs a `coordinator` address, the `num_processes` and this process's "
                          f"`process_id`; got {coordinator!r}, {num_processes!r}, {process_id!r}")
    jax.distributed.initialize(coordinator, num_processes, process_id)
