"""The training loop and its divergence policy: steps in windows of `cfg.log_every`, each window one
`lax.fori_loop` that logs its first step's metrics and checks the member for divergence once, at its end.

Checking once per window rather than after every step matters for speed (a check and a select over the
whole state after every step cost R2 about a fifth of its speed). The price: a member that goes non-finite
anywhere in a window is frozen as it was at the window's first step, its last checked state, and loses up
to `log_every - 1` steps of progress. `step` is a window of one step, so it checks after that step.

A flagged member is one of two kinds, both frozen alike and recorded in `TrainState.diverged_at`:

- diverged: its losses or parameters went non-finite; `diverged_at` is the window's first step.
- stuck: losses and parameters finite, but a gradient norm logged on the window's first step (the metrics
  named `*grad_norm`, e.g. `d_grad_norm`, `g_grad_norm`) is inf or nan: the gradients overflow, and an
  adaptive optimizer (RMSProp, Adam) then divides them by an infinite second moment and stops moving the
  parameters. `diverged_at` is the window's first step plus `STUCK`.

`flag(diverged_at) -> (step, reason)` reads either back; `diverged_at >= 0` still means "flagged".
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

# Added to the flagged step of a stuck member (steps stay below it: 2^30 steps are beyond any run), so every
# flagged member has `diverged_at >= 0` and an int32 holds both kinds.
STUCK = 1 << 30


def learned(state) -> dict:
    """What training changes and a frozen member keeps (`TrainState.learned`)."""
    return state.learned()


def all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def flag(diverged_at) -> tuple[int | None, str | None]:
    """One member's `diverged_at` read back: (None, None) while healthy, else (the first step of the window
    in which it was flagged, "diverged" or "stuck")."""
    value = int(diverged_at)
    if value < 0:
        return None, None
    return (value - STUCK, "stuck") if value >= STUCK else (value, "diverged")


def window(gan: Any, start: Any, hp: Any, length: int) -> tuple[Any, Any]:
    """`length` steps from `start`, and the first step's metrics (later steps skip the gradient norms).
    A member whose losses or parameters went non-finite anywhere in the window is frozen at `start` and
    flagged with `start.step` (diverged); one whose logged gradient norms are not finite, with everything
    else finite, is frozen and flagged with `start.step + STUCK` (stuck); a member frozen earlier stays
    frozen; the step counter advances regardless."""
    def one_step(i, carry):
        state, finite, logged = carry
        state, metrics = gan.update(state, hp, log=i == 0)
        logged = jax.tree.map(lambda m, old: jnp.where(i == 0, m, old), metrics, logged)
        return state, finite & jnp.isfinite(metrics["d_loss"]) & jnp.isfinite(metrics["g_loss"]), logged

    # initial carries made from start.step, so that they vary over members as the loop's outputs do
    like = lambda shape, dtype: jnp.zeros_like(start.step, dtype, shape)  # noqa: E731
    logged = jax.tree.map(lambda m: like(m.shape, m.dtype), jax.eval_shape(gan.update, start, hp)[1])
    end, finite, metrics = jax.lax.fori_loop(0, length, one_step, (start, ~like((), bool), logged))
    healthy = start.diverged_at < 0
    sane = finite & all_finite((end.g_params, end.d_params, end.g_stats, end.d_stats))
    norms = [v for k, v in metrics.items() if k.endswith("grad_norm")]  # logged on the first step only
    moving = all_finite(norms) if norms else True
    keep = healthy & sane & moving
    kept = jax.tree.map(lambda e, s: jnp.where(keep, e, s), end.learned(), start.learned())
    flagged = jnp.where(sane, start.step + STUCK, start.step)
    return end.replace(**kept, diverged_at=jnp.where(healthy & ~keep, flagged, start.diverged_at)), metrics


def step(gan: Any, state: Any, hp: Any) -> tuple[Any, Any]:
    """One training step, checked for divergence after it."""
    return window(gan, state, hp, 1)


def run(gan: Any, state: Any, hp: Any, num_steps: int) -> tuple[Any, Any]:
    """`num_steps` steps in one scan of windows of `log_every` steps (the last may be shorter); the
    metrics of each window's first step, stacked along a leading axis."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps}")
    size = min(gan.cfg.log_every, num_steps)
    state, logged = jax.lax.scan(lambda s, _: window(gan, s, hp, size), state, None, length=num_steps // size)
    remainder = num_steps % size
    if remainder:
        state, last = window(gan, state, hp, remainder)
        logged = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), logged, last)
    return state, logged
