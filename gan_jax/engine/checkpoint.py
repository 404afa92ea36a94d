"""Checkpoints of a whole member-stacked TrainState (params, optimizer states, keys, step, divergence
flags) plus the run's config, with orbax; the last `keep` are kept, and a resumed run continues bitwise.

Layout: `<dir>/<step>/{state,config}/`. A save is atomic: orbax writes `<dir>/<step>.orbax-checkpoint-tmp/`
and renames it to `<dir>/<step>/` once everything is on disk, so a process killed mid-save leaves only
the tmp directory, which is never listed as a checkpoint and is deleted when a Checkpointer next opens
the directory. A finished checkpoint whose files are truncated or missing is skipped, with a warning,
for the one before it.
"""
from __future__ import annotations

import json
import pathlib
import warnings
from typing import Iterable

import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax.engine.rundir import to_json
from gan_jax.errors import CheckpointError

FIX = "use the same config, or a new `out` directory"


def _flat(tree) -> dict[str, jax.Array]:
    """{'g_params.Dense_0.kernel': leaf, ...}: one level of named arrays, whatever the pytree types."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path, simple=True, separator="."): leaf for path, leaf in leaves}


def _flat_config(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        out.update(_flat_config(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return out


def _piece(flat_config: dict, role: str) -> str:
    """'name (sha256 0123456789ab)' of a piece in a flattened config; a library piece has no hash."""
    name, digest = flat_config.get(f"pieces.{role}.name"), flat_config.get(f"pieces.{role}.sha256")
    return f"{name} (sha256 {digest[:12]})" if digest else str(name)


def _is_key(leaf) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _raw(tree):
    """Typed PRNG keys as their uint32 data, which orbax stores."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


class Checkpointer:
    """Saves and restores one run's state (any pytree of arrays: a TrainState, or the state with the
    members' current hyperparameters) under `directory` (the run's `checkpoints/`).

    `config` (a JSON-able dict, the run's resolved config) is stored with every checkpoint; resuming
    with a config that differs in any key other than those in `may_change` is refused.
    """

    def __init__(self, directory: str | pathlib.Path, keep: int, config: dict, may_change: Iterable[str] = ()):
        self.directory = pathlib.Path(directory).absolute()
        self.config = json.loads(json.dumps(to_json(config)))  # as it reads back from disk
        self.may_change = set(may_change)
        self._readable: dict[int, bool] = {}
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False,
                                               cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers={
            "state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler()})

    def save(self, state, step: int) -> None:
        """Write checkpoint `step` (replacing one of that step left by an abandoned run); returns once it
        is complete on disk, so `state` may then be donated."""
        if step in self.steps():
            self._manager.delete(step)
        self._readable.pop(step, None)
        self._manager.save(step, force=True, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_flat(_raw(state))), config=ocp.args.JsonSave(self.config)))
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        """Steps of the finished checkpoints on disk, oldest first (unfinished saves never count)."""
        self._manager.reload()
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The latest checkpoint that reads back whole (every array is read, on the host), or None."""
        return next((s for s in reversed(self.steps()) if self._check_readable(s)), None)

    def _check_readable(self, step: int) -> bool:
        if step not in self._readable:
            try:
                meta = self._manager.item_metadata(step)["state"]
                host = {k: np.zeros(m.shape, m.dtype) for k, m in meta.items()}
                self._manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(host), config=ocp.args.JsonRestore()))
                self._readable[step] = True
            except Exception as e:  # truncated or missing files, bad metadata
                message = (str(e).strip().splitlines() or [""])[0][:300]
                warnings.warn(f"checkpoint {step} in {self.directory} cannot be read ({type(e).__name__}: "
                              f"{message}); skipping it for the one before", stacklevel=3)
                self._readable[step] = False
        return self._readable[step]

    def saved_config(self, step: int) -> dict:
        """The config stored with checkpoint `step`."""
        return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def restore(self, like, step: int | None = None) -> tuple:
        """(state, step) of checkpoint `step` (default: `latest_step()`), with the structure, shapes,
        dtypes and shardings of `like` (e.g. a fresh `Sweep.init` state; only its metadata is used)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no complete checkpoint to resume from in {self.directory}; "
                                  "run without `resume`, or point `out` at the run to resume")
        where = f"checkpoint {step} in {self.directory}"
        try:
            saved = self.saved_config(step)
            meta = self._manager.item_metadata(step)["state"]
        except Exception as e:
            raise CheckpointError(f"{where} cannot be read: {type(e).__name__}: {e}") from e
        old, new = _flat_config(saved), _flat_config(self.config)
        differ = [k for k in sorted(old.keys() | new.keys()) if k not in self.may_change and old.get(k) != new.get(k)]
        piece = next((k.split(".")[1] for k in differ if k.startswith("pieces.")), None)
        if piece is not None:
            there, now = (_piece(c, piece) for c in (old, new))
            raise CheckpointError(f"`resume`: the run's {piece} was {there} and is now {now}; resume with the "
                                  f"pieces it ran with, or train a new run in another `out`")
        if differ:
            diffs = "; ".join(f"{k}: {old.get(k, '<unset>')!r} there vs {new.get(k, '<unset>')!r} now" for k in differ)
            raise CheckpointError(f"{where} was written for a different config ({diffs}); {FIX}")
        raw_like = _raw(like)
        target = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=v.sharding) for k, v in _flat(raw_like).items()}
        if set(meta) != set(target):
            raise CheckpointError(f"{where} holds different arrays (only there: {sorted(set(meta) - set(target))}; "
                                  f"only now: {sorted(set(target) - set(meta))}); {FIX}")
        for name, t in target.items():
            shape, dtype = tuple(meta[name].shape), np.dtype(meta[name].dtype)
            if shape != t.shape or dtype != t.dtype:
                raise CheckpointError(f"{where} does not fit this state: shapes differ at {name}: "
                                      f"{dtype}{shape} there vs {t.dtype}{t.shape} now; {FIX}")
        try:
            flat = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))["state"]
        except Exception as e:
            raise CheckpointError(f"{where} cannot be read: {type(e).__name__}: {e}") from e
        raw = jax.tree.unflatten(jax.tree.structure(raw_like), [flat[k] for k in target])
        typed = jax.tree.map(lambda r, l: jax.random.wrap_key_data(r, impl=jax.random.key_impl(l)) if _is_key(l) else r,
                             raw, like)
        return typed, step

    def close(self) -> None:
        self._manager.close()
