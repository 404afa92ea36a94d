"""The one place that applies jit, vmap and sharding: many members (seeds x hyperparameters) of one GAN
trained as one compiled program, the member axis sharded over the available devices."""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.config import HParams
from gan_jax.train import GAN, Metrics, TrainState

MEMBER_AXIS = "members"
CPU_MEMBER_BLOCK = 16


def use_cpu_cores_as_devices() -> None:
    """On a CPU-only host, expose one XLA device per core so the member axis is split across cores
    (XLA runs this model's small ops on one core each). Call before JAX starts its backend; no-op on
    GPU/TPU hosts, when the user already chose a device count, or once the backend is running."""
    import os

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
    import os

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
        raise ValueError("a multi-host run needs a coordinator address, the number of processes and this process's "
                         f"id; got {coordinator!r}, {num_processes!r}, {process_id!r}")
    jax.distributed.initialize(coordinator, num_processes, process_id)


def stack_hparams(hparams: Sequence[HParams]) -> HParams:
    """Member-stacked float32 HParams from one HParams per member."""
    return jax.tree.map(lambda *v: jnp.asarray(np.array(v, np.float32)), *hparams)


def member_keys(seeds: Sequence[int]) -> jax.Array:
    """One key per member, from its seed alone, so a member's numbers never depend on its neighbours."""
    return jnp.stack([jax.random.key(int(s)) for s in seeds])


def member_mesh(n_members: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over as many devices as divide the member count evenly."""
    devices = list(devices if devices is not None else jax.devices())
    n = max(d for d in range(1, len(devices) + 1) if n_members % d == 0)
    return Mesh(np.array(devices[:n]), (MEMBER_AXIS,))


@dataclasses.dataclass
class Sweep:
    """Compiled, sharded init and run of `n_members` members of `gan`.

    A member's numbers do not depend on which other members run beside it: each has its own key and
    hyperparameters, and vmap keeps their arithmetic independent.
    """

    gan: GAN
    n_members: int
    devices: Sequence[jax.Device] | None = None
    member_block: int | None = None  # members vmapped together per device; None: 16 on CPU, all elsewhere
    compile_s: float = 0.0  # total seconds spent compiling so far

    def __post_init__(self):
        if self.n_members < 1 or (self.member_block is not None and self.member_block < 1):
            raise ValueError(f"n_members ({self.n_members}) and member_block ({self.member_block}) must be >= 1")
        self.mesh = member_mesh(self.n_members, self.devices)
        self.sharding = NamedSharding(self.mesh, PartitionSpec(MEMBER_AXIS))
        local = self.n_members // self.mesh.devices.size
        if self.member_block is None:
            self.member_block = CPU_MEMBER_BLOCK if self.mesh.devices.flat[0].platform == "cpu" else local
        self.block = max(b for b in range(1, min(self.member_block, local) + 1) if local % b == 0)
        self._init = jax.jit(jax.vmap(self.gan.init), out_shardings=self.sharding)
        self._compiled: dict[int, jax.stages.Compiled] = {}
        self._generate = jax.jit(jax.vmap(self.gan.generate, in_axes=(0, None, None, 0)))
        self._evaluators: dict = {}

    def shard(self, tree):
        """Place a member-stacked pytree on the mesh, after checking its leading axis is the member axis.
        Every process passes the same full values; each keeps its own devices' members."""
        for leaf in jax.tree.leaves(tree):
            if leaf.ndim == 0 or leaf.shape[0] != self.n_members:
                raise ValueError(f"expected a leading member axis of {self.n_members}, got shape {leaf.shape}; "
                                 "stack one value per member (stack_hparams, member_keys)")
        return jax.tree.map(self._put, tree)

    def _put(self, leaf):
        if jax.process_count() == 1:
            return jax.device_put(leaf, self.sharding)
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(self._put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, self.sharding, lambda index: host[index])

    def init(self, hp: HParams, keys: jax.Array) -> TrainState:
        """All members' states in one vmapped init, created already sharded over the mesh."""
        hp, keys = self.shard(hp), self.shard(keys)
        start = time.perf_counter()
        init = self._init.lower(hp, keys).compile()
        self.compile_s += time.perf_counter() - start
        return init(hp, keys)

    def compile(self, state: TrainState, hp: HParams, num_steps: int) -> jax.stages.Compiled:
        """The compiled run of `num_steps` steps (compiled once per distinct length)."""
        if num_steps not in self._compiled:
            spec = PartitionSpec(MEMBER_AXIS)
            run = jax.shard_map(functools.partial(self._run_local, num_steps=num_steps), mesh=self.mesh,
                                in_specs=(spec, spec), out_specs=spec)
            start = time.perf_counter()
            self._compiled[num_steps] = jax.jit(run, donate_argnums=0).lower(state, self.shard(hp)).compile()
            self.compile_s += time.perf_counter() - start
        return self._compiled[num_steps]

    def _run_local(self, state: TrainState, hp: HParams, num_steps: int) -> tuple[TrainState, Metrics]:
        """One device's members: blocks of `self.block` members run one after another (lax.map), each
        block vmapped and scanned over all steps. On a CPU a small block keeps its activations in cache
        (R1, 2 cores, 256 members: 16-member blocks ran 19.1K seed-steps/s, 128-member blocks 16.3K)."""
        local = jax.tree.leaves(state)[0].shape[0]
        run = jax.vmap(functools.partial(self.gan.run, num_steps=num_steps))
        if local == self.block:
            return run(state, hp)
        split = lambda a: a.reshape((local // self.block, self.block) + a.shape[1:])  # noqa: E731
        merge = lambda a: a.reshape((local,) + a.shape[2:])  # noqa: E731
        out = jax.lax.map(lambda args: run(*args), (jax.tree.map(split, state), jax.tree.map(split, hp)))
        return jax.tree.map(merge, out)

    def run(self, state: TrainState, hp: HParams, num_steps: int) -> tuple[TrainState, Metrics]:
        """Advance every member `num_steps` steps. Donates `state`: use the returned one."""
        return self.compile(state, hp, num_steps)(state, self.shard(hp))

    def gather(self, tree):
        """A host (numpy) copy of member-stacked arrays with every member, on every process (in a
        multi-host run each process holds only its devices' members)."""
        if jax.process_count() == 1:
            return jax.device_get(tree)
        from jax.experimental import multihost_utils

        def gather_leaf(leaf):
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):  # keys travel as their raw data
                data = multihost_utils.process_allgather(jax.random.key_data(leaf), tiled=True)
                return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
            return multihost_utils.process_allgather(leaf, tiled=True)

        return jax.tree.map(gather_leaf, tree)

    def generate(self, state: TrainState, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Every member's samples (evaluation mode, G's moving average `g_ema`) for the same noise z (and
        labels): [members, n, ...]."""
        return self._generate(state.g_ema, z, labels, state.g_stats)

    def evaluate(self, state: TrainState, z: jax.Array, metric_fn,
                 labels: jax.Array | None = None) -> dict[str, jax.Array]:
        """`metric_fn(samples) -> {name: scalar}` of every member's samples G(z) from `g_ema` (for a
        conditional GAN `metric_fn(samples, labels)`): {name: [members]}. Compiled once per (metric_fn, z shape).
        Each device evaluates its own members (shard_map), one member at a time (lax.map): with the members
        vmapped, the MNIST metrics (a batched SVD) hung on XLA:CPU with 2 devices of 2 members each."""
        key = (metric_fn, z.shape, labels is None)
        if key not in self._evaluators:
            def member(g_params, g_stats, z, labels):
                samples = self.gan.generate(g_params, z, labels, g_stats)
                return metric_fn(samples) if labels is None else metric_fn(samples, labels)

            spec, replicated = PartitionSpec(MEMBER_AXIS), PartitionSpec()

            def local(g_params, g_stats, z, labels):  # one member after another: see the docstring
                return jax.lax.map(lambda m: member(*m, z, labels), (g_params, g_stats))

            self._evaluators[key] = jax.jit(jax.shard_map(
                local, mesh=self.mesh, in_specs=(spec, spec, replicated, replicated), out_specs=spec))
        return self._evaluators[key](state.g_ema, state.g_stats, z, labels)


def jit_single_step(gan: GAN):
    """A jitted single-member step, the 'naive JAX' baseline: a Python loop calls it once per step."""
    return jax.jit(gan.step, donate_argnums=0)
