"""The one place that applies jit, vmap and sharding: many members (seeds x hyperparameters) of one GAN
trained as one compiled program, the member axis sharded over the available devices."""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.core import loop
from gan_jax.core.config import HParams
from gan_jax.core.gan import GAN, Metrics, TrainState
from gan_jax.core.streams import stream_key
from gan_jax.engine import layout as layouts
from gan_jax.engine import resources
from gan_jax.engine.members import member_keys, stack_hparams  # noqa: F401  (the sweep's inputs, importable here)

MEMBER_AXIS = "members"
ACCELERATOR_EVAL_BLOCK = 64  # members evaluated at once per device off the CPU (MNIST: ~80 MB of activations each)
# Samples per generator call in `generate` and `evaluate`: a full-width DCGAN's 26,000 Stacked MNIST samples in one call
# took the 24 GB CPU host past its limit (half width peaked at 13 GB). A tenth of those; the toy's 2,500
# and MNIST's 2,000 evaluation samples stay one call.
EVAL_SLICE = 2_600


def member_mesh(n_members: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over as many devices as divide the member count evenly."""
    devices = list(devices if devices is not None else jax.devices())
    n = max(d for d in range(1, len(devices) + 1) if n_members % d == 0)
    return Mesh(np.array(devices[:n]), (MEMBER_AXIS,))


@dataclasses.dataclass
class Sweep:
    """Compiled, sharded init and run of `n_members` members of `gan`.

    A member's numbers do not depend on which other members run beside it: each has its own key and
    hyperparameters, and vmap keeps their arithmetic independent. Memory is checked before it is used:
    `init` refuses members whose state cannot fit and `compile` a program that cannot (ResourceError).
    """

    gan: GAN
    n_members: int
    devices: Sequence[jax.Device] | None = None
    member_block: int | None = None  # members vmapped together per device; None: measured on a CPU, all elsewhere
    eval_block: int | None = None  # members evaluated together per device; None: 1 on CPU, 64 elsewhere
    eval_slice: int = EVAL_SLICE  # at most this many samples per G call in `generate` and `evaluate` (lax.map)
    compile_s: float = 0.0  # total seconds spent compiling so far
    probe_s: float = 0.0  # seconds spent measuring which member block is fastest (layout.probe)
    mesh: Mesh = dataclasses.field(init=False)
    sharding: NamedSharding = dataclasses.field(init=False)
    local: int = dataclasses.field(init=False)  # members per device
    compiled: dict[int, jax.stages.Compiled] = dataclasses.field(init=False, default_factory=dict)  # by length
    _init: Callable = dataclasses.field(init=False, repr=False)
    _generate: Callable = dataclasses.field(init=False, repr=False)
    _evaluators: dict = dataclasses.field(init=False, repr=False, default_factory=dict)
    _copy: Callable | None = dataclasses.field(init=False, repr=False, default=None)
    _trials: dict = dataclasses.field(init=False, repr=False, default_factory=dict)  # the probe's programs, while it runs
    _trial_state: tuple | None = dataclasses.field(init=False, repr=False, default=None)  # their (state, hparams)

    def __post_init__(self):
        if self.n_members < 1 or (self.member_block is not None and self.member_block < 1):
            raise ValueError(f"n_members ({self.n_members}) and member_block ({self.member_block}) must be >= 1")
        self.mesh = member_mesh(self.n_members, self.devices)
        self.sharding = NamedSharding(self.mesh, PartitionSpec(MEMBER_AXIS))
        self.local = local = self.n_members // self.mesh.devices.size
        if self.eval_block is None:
            self.eval_block = 1 if self.platform == "cpu" else ACCELERATOR_EVAL_BLOCK
        self.eval_block = largest_divisor(local, self.eval_block)
        self._init = jax.jit(jax.vmap(self.gan.init), out_shardings=self.sharding)
        self._generate = jax.jit(jax.vmap(self._member_samples, in_axes=(0, None, None, 0)))

    @property
    def mesh_devices(self) -> list[jax.Device]:
        return list(self.mesh.devices.flat)

    @property
    def platform(self) -> str:
        return self.mesh.devices.flat[0].platform

    # -- layout -------------------------------------------------------------------------------------------
    @functools.cached_property
    def layout(self) -> layouts.Layout:
        """How each device's members are vmapped (`gan_jax.engine.layout`), decided at the first compile:
        `member_block` when given; one vmap of every member off the CPU; on a CPU, the fastest block measured
        (cached per model, members per device and machine), or the rule's where probing is off or several
        processes would have to agree. Assign a Layout before compiling to impose one (a resumed run's)."""
        if self.member_block is not None:
            block = largest_divisor(self.local, self.member_block)
            return layouts.Layout(block, "given" if block == self.member_block else
                                  f"given {self.member_block}, the largest block <= it that divides {self.local}")
        if self.local == 1:
            return layouts.Layout(1, "one member")
        if self.platform != "cpu":
            return layouts.Layout(self.local, "rule")
        if not layouts.probing() or jax.process_count() > 1:
            return layouts.Layout(largest_divisor(self.local, layouts.CPU_RULE_BLOCK), "rule")
        start = time.perf_counter()
        key = layouts.cache_key(config=self.gan.recorded_config(), pieces=self.gan.pieces(), local=self.local,
                                devices=self.mesh.devices.size, kind=self.mesh_devices[0].device_kind,
                                cpu=os.cpu_count(), jax=jax.__version__,
                                probe=(layouts.PROBE_ROUNDS, layouts.PROBE_CUT_AFTER, layouts.PROBE_STEPS,
                                       layouts.PROBE_SECONDS, layouts.PROBE_SEED_STEPS))
        try:
            chosen = layouts.probe(self.local, self._measure, key)
        finally:
            self._trials.clear()  # the trial programs and their state, no longer needed
            self._trial_state = None
        self.probe_s += time.perf_counter() - start
        return chosen

    @property
    def block(self) -> int:
        """The member block used: divides the members per device."""
        return self.layout.block

    def _measure(self, block: int) -> float:
        """Seed-steps/s of this sweep's members in blocks of `block`, run layout.PROBE_STEPS steps at a time (fewer
        for a shorter logged window or past layout.PROBE_SEED_STEPS) for layout.PROBE_SECONDS: all those steps
        over all that time, as a run is timed.
        All the members, not one block of them: a call's fixed cost then weighs the same on every candidate
        (timing one block per device had R1's 64 members in blocks of 32 ahead of 16, which 3 s runs of all 64
        put behind, 9.9-11.2K against 11.9-12.4K seed-steps/s). The trial's program is compiled and warmed up
        on the first call for a block and kept for the probe's later rounds. One state, made by this sweep's
        own compiled init (which the run then reuses; the state itself is dropped after the probe), goes from
        trial to trial at the default hyperparameters: a trial's init would compile once per candidate (2 to 3 s
        each for 64 R2 members), and one state is in memory at a time."""
        n = self.n_members
        steps = min(self.gan.cfg.log_every, layouts.PROBE_STEPS, max(1, layouts.PROBE_SEED_STEPS // n))
        if self._trial_state is None:
            state = jax.block_until_ready(self.init(member_keys(range(n))))
            self._trial_state = state, stack_hparams([HParams()] * n)
        if block not in self._trials:
            self._trials[block] = Sweep(self.gan, n, self.mesh_devices, member_block=block)
            self._trial_run(block, steps)  # compile, warm up
        seconds = []
        while sum(seconds) < layouts.PROBE_SECONDS:
            start = time.perf_counter()
            self._trial_run(block, steps)
            seconds.append(time.perf_counter() - start)
        return n * steps * len(seconds) / sum(seconds)

    def _trial_run(self, block: int, steps: int) -> None:
        state, hp = self._trial_state
        self._trial_state = jax.block_until_ready(self._trials[block].run(state, hp, steps)[0]), hp

    # -- shapes and placement ---------------------------------------------------------------------------
    @functools.cached_property
    def _state_shape(self) -> TrainState:
        keys = jax.ShapeDtypeStruct((self.n_members,), jax.eval_shape(lambda: jax.random.key(0)).dtype)
        shapes = jax.eval_shape(jax.vmap(self.gan.init), keys)
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.sharding), shapes)

    def state_shape(self) -> TrainState:
        """The member-stacked state's shapes, dtypes and shardings, computed without allocating it (once)."""
        return self._state_shape

    def hparams_shape(self) -> HParams:
        return jax.tree.map(lambda _: jax.ShapeDtypeStruct((self.n_members,), np.float32, sharding=self.sharding),
                            HParams())

    def state_bytes_per_member(self) -> int:
        return resources.tree_bytes(self.state_shape()) // self.n_members

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

    # -- training -----------------------------------------------------------------------------------------
    def init(self, keys: jax.Array) -> TrainState:
        """All members' states in one vmapped init, created already sharded over the mesh (after checking
        that they fit: ResourceError)."""
        resources.check_state(self.state_bytes_per_member(), self.n_members, self.mesh_devices)
        keys = self.shard(keys)
        start = time.perf_counter()
        init = self._init.lower(keys).compile()
        self.compile_s += time.perf_counter() - start
        return init(keys)

    def compile(self, num_steps: int) -> jax.stages.Compiled:
        """The compiled run of `num_steps` steps (compiled once per distinct length, from shapes alone),
        after checking that it fits in memory (ResourceError)."""
        if num_steps not in self.compiled:
            resources.check_state(self.state_bytes_per_member(), self.n_members, self.mesh_devices)
            self.layout  # noqa: B018  (decided, timed if need be, before the program is traced)
            spec = PartitionSpec(MEMBER_AXIS)
            run = jax.shard_map(functools.partial(self._run_local, num_steps=num_steps), mesh=self.mesh,
                                in_specs=(spec, spec), out_specs=spec)
            start = time.perf_counter()
            compiled = jax.jit(run, donate_argnums=0).lower(self.state_shape(), self.hparams_shape()).compile()
            self.compile_s += time.perf_counter() - start
            resources.check_program(compiled, self.mesh_devices,
                                    f"training {self.n_members:,} members ({self.block} vmapped per block)")
            self.compiled[num_steps] = compiled
        return self.compiled[num_steps]

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
        """Advance every member `num_steps` steps with the traced values `hp` (which may differ from
        call to call: a schedule). Donates `state`: use the returned one."""
        return self.compile(num_steps)(state, self.shard(hp))

    def copy_members(self, state: TrainState, sources) -> TrainState:
        """Member i takes member sources[i]'s learned state and divergence flag (a gather along the member
        axis, on the devices holding the state); keys and step counters stay each member's own."""
        if self._copy is None:
            def copy(state, sources):
                taken = jax.tree.map(lambda a: a[sources], {**loop.learned(state), "diverged_at": state.diverged_at})
                return state.replace(**taken)
            self._copy = jax.jit(copy, out_shardings=self.sharding, donate_argnums=0)
        return self._copy(state, jax.device_put(np.asarray(sources, np.int32), NamedSharding(self.mesh, PartitionSpec())))

    # -- host copies, samples, evaluation --------------------------------------------------------------
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

    def _member_samples(self, g_params, z: jax.Array, labels: jax.Array | None, g_stats) -> jax.Array:
        """One member's G(z), `eval_slice` samples at a time (evaluation mode treats each sample alone, so
        slicing changes no sample); the last slice padded with zeros, its extra samples cut off. Batch norm
        uses G's standing statistics (`GAN.standing_stats`), the same latents for every member and call."""
        g_stats = self.gan.standing_stats(g_params, g_stats, stream_key("standing_stats"))
        n = z.shape[0]
        size = min(n, self.eval_slice)
        slices = -(-n // size)

        def in_slices(a):
            a = jnp.pad(a, [(0, slices * size - n)] + [(0, 0)] * (a.ndim - 1))
            return a.reshape((slices, size) + a.shape[1:])

        samples = jax.lax.map(lambda zl: self.gan.generate(g_params, zl[0], zl[1], g_stats),
                              jax.tree.map(in_slices, (z, labels)))
        return samples.reshape((slices * size,) + samples.shape[2:])[:n]

    def generate(self, state: TrainState, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Every member's samples (evaluation mode, G's moving average `g_ema`) for the same noise z (and
        labels): [members, n, ...]."""
        return self._generate(state.g_ema, z, labels, state.g_stats)

    def evaluate(self, state: TrainState, z: jax.Array, metric_fn: Callable[..., dict[str, Any]],
                 labels: jax.Array | None = None) -> dict[str, jax.Array]:
        """`metric_fn(samples) -> {name: scalar}` of every member's samples G(z) from `g_ema` (for a
        conditional GAN `metric_fn(samples, labels)`): {name: [members]}. Compiled once per (metric_fn, z shape).
        Each device evaluates its own members (shard_map) in blocks of `eval_block` (lax.map over blocks,
        vmap within): on a CPU one member at a time, since with the members vmapped the MNIST metrics (a
        batched SVD) hung on XLA:CPU with 2 devices of 2 members each; on an accelerator 64 at a time, so
        thousands of members are not evaluated one after another. G runs on `eval_slice` samples at a time."""
        key = (metric_fn, z.shape, labels is None)
        if key not in self._evaluators:
            def member(g_params, g_stats, z, labels):
                samples = self._member_samples(g_params, z, labels, g_stats)
                return metric_fn(samples) if labels is None else metric_fn(samples, labels)

            spec, replicated = PartitionSpec(MEMBER_AXIS), PartitionSpec()

            def local(g_params, g_stats, z, labels):  # blocks one after another: see the docstring
                n = jax.tree.leaves(g_params)[0].shape[0]
                blocks = jax.tree.map(lambda a: a.reshape((n // self.eval_block, self.eval_block) + a.shape[1:]),
                                      (g_params, g_stats))
                block = jax.vmap(lambda p, s: member(p, s, z, labels))
                out = jax.lax.map(lambda b: block(*b), blocks)
                return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

            self._evaluators[key] = jax.jit(jax.shard_map(
                local, mesh=self.mesh, in_specs=(spec, spec, replicated, replicated), out_specs=spec))
        return self._evaluators[key](state.g_ema, state.g_stats, z, labels)


def largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of n that is at most `at_most`."""
    return max(b for b in range(1, min(at_most, n) + 1) if n % b == 0)


def jit_single_step(gan: GAN):
    """A jitted single-member step, the 'naive JAX' baseline: a Python loop calls it once per step."""
    return jax.jit(gan.step, donate_argnums=0)
