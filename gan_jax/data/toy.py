"""Toy 2-D datasets, sampled on device: pure functions of a PRNG key, safe inside jit, scan and vmap."""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError

Sampler = Callable[[jax.Array, int], jax.Array]  # (key, n) -> float32[n, dim]


class ToyDataset(NamedTuple):
    """A sampler in the data's own units, with what training, metrics and plots need to know about it."""

    name: str
    dim: int
    sample: Sampler
    mean: tuple[float, ...] = (0.0, 0.0)  # exact per-coordinate moments of the data
    std: tuple[float, ...] = (1.0, 1.0)
    modes: np.ndarray | None = None  # mixture means, for mode-coverage metrics
    mode_std: float | None = None

    def sampler(self, standardize: bool) -> Sampler:
        """The sampler training sees: raw units, or standardized to zero mean and unit variance."""
        if not standardize:
            return self.sample
        mean, std = jnp.asarray(self.mean), jnp.asarray(self.std)
        return lambda key, n: (self.sample(key, n) - mean) / std

    def to_raw(self, x, standardize: bool):
        """Map points from the space training sees back to the data's own units (for plots and metrics)."""
        return x * np.asarray(self.std) + np.asarray(self.mean) if standardize else x


def quadratic(key: jax.Array, n: int, scale: float = 100.0) -> jax.Array:
    """R1's curve: (x, 10 + x^2) with x ~ U(-scale/2, scale/2), in the tutorial's raw units."""
    x = scale * (jax.random.uniform(key, (n,)) - 0.5)
    return jnp.stack([x, 10.0 + x * x], axis=-1)


def two_curves(key: jax.Array, n: int, scale: float = 100.0) -> jax.Array:
    """R1's suggested extension: half the points on (x, 10 + x^2), half on its mirror (x, -(10 + x^2))."""
    k_curve, k_side = jax.random.split(key)
    points = quadratic(k_curve, n, scale)
    sign = jnp.where(jax.random.bernoulli(k_side, 0.5, (n,)), 1.0, -1.0)
    return points * jnp.stack([jnp.ones_like(sign), sign], axis=-1)


# Mode tables are numpy, so importing gan_jax starts no JAX backend (device settings stay open).
def ring_modes(n_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    angles = 2.0 * math.pi * np.arange(n_modes) / n_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)).astype(np.float32)


def grid_modes(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    coords = spacing * (np.arange(side) - (side - 1) / 2)
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float32)


def gaussian_mixture(key: jax.Array, n: int, modes: np.ndarray, std: float) -> jax.Array:
    """Equal-weight isotropic Gaussian mixture."""
    k_mode, k_noise = jax.random.split(key)
    idx = jax.random.randint(k_mode, (n,), 0, modes.shape[0])
    return jnp.asarray(modes)[idx] + std * jax.random.normal(k_noise, (n, modes.shape[1]))


# Mode-collapse mixtures. VEEGAN's (Srivastava et al. 2017): 8 modes on a circle of radius 2, std 0.02
# (ring8, also named veegan_ring), and a 5x5 grid with spacing 2 (grid25, also veegan_grid: VEEGAN gives no
# grid std, so its ring's 0.02). PacGAN's (Lin et al. 2018, from its code's config.py): 8 modes on a circle of
# radius 1, std 0.01, and the 5x5 grid {-4, -2, 0, 2, 4}^2 with std 0.05: the ones with published numbers.
RING8_MODES, RING8_STD = ring_modes(8, 2.0), 0.02
GRID25_MODES, GRID25_STD = grid_modes(5, 2.0), 0.02
PACGAN_RING_MODES, PACGAN_RING_STD = ring_modes(8, 1.0), 0.01
PACGAN_GRID_MODES, PACGAN_GRID_STD = grid_modes(5, 2.0), 0.05


def mixture(name: str, modes: np.ndarray, std: float) -> "ToyDataset":
    return ToyDataset(name, 2, lambda key, n: gaussian_mixture(key, n, modes, std), modes=modes, mode_std=std)


# Exact moments of R1's data, x ~ U(-a, a) with a = 50: E[x^2] = a^2/3, Var[x^2] = 4a^4/45.
_A = 50.0  # half the x range: quadratic's scale / 2
QUADRATIC_X_RANGE = (-_A, _A)
_Y_MEAN = 10.0 + _A**2 / 3
_Y_STD = math.sqrt(4 * _A**4 / 45)
_X_STD = _A / math.sqrt(3)

TOY_DATASETS: dict[str, ToyDataset] = {
    "quadratic": ToyDataset("quadratic", 2, quadratic, (0.0, _Y_MEAN), (_X_STD, _Y_STD)),
    # Mirrored halves: y has mean 0 and E[y^2] = Var + mean^2 of the single curve.
    "two_curves": ToyDataset("two_curves", 2, two_curves, (0.0, 0.0), (_X_STD, math.hypot(_Y_STD, _Y_MEAN))),
    "ring8": mixture("ring8", RING8_MODES, RING8_STD),
    "grid25": mixture("grid25", GRID25_MODES, GRID25_STD),
    "veegan_ring": mixture("veegan_ring", RING8_MODES, RING8_STD),
    "veegan_grid": mixture("veegan_grid", GRID25_MODES, GRID25_STD),
    "pacgan_ring": mixture("pacgan_ring", PACGAN_RING_MODES, PACGAN_RING_STD),
    "pacgan_grid": mixture("pacgan_grid", PACGAN_GRID_MODES, PACGAN_GRID_STD),
}


def get_dataset(name: str) -> ToyDataset:
    if name not in TOY_DATASETS:
        raise ConfigError(f"`data`: {name!r} is not a toy dataset; choose one of {sorted(TOY_DATASETS)}")
    return TOY_DATASETS[name]
