"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020): the same random
transformations applied to real and generated images before D, differentiable so G's gradient flows
through them. Each transformation is applied to each image with probability `p` (a traced
hyperparameter, `augment_p`); the registry `AUGMENTATIONS` maps names to functions of
(key, images [n, h, w, c], p) -> images.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Augmentation = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def translation(key: jax.Array, x: jax.Array, p, ratio: float = 0.125) -> jax.Array:
    """Shift each image by up to `ratio` of its height and width (integers, uniform), zero-padded, as
    DiffAugment's rand_translation (3 pixels on MNIST's 28)."""
    n, h, w, _ = x.shape
    k_apply, k_dy, k_dx = jax.random.split(key, 3)
    pad_h, pad_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    on = jax.random.bernoulli(k_apply, p, (n,))
    dy = jnp.where(on, jax.random.randint(k_dy, (n,), -pad_h, pad_h + 1), 0)
    dx = jnp.where(on, jax.random.randint(k_dx, (n,), -pad_w, pad_w + 1), 0)
    padded = jnp.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
    def shift(image, y, x_):  # the window of the padded image that moves its content by (y, x_)
        return jax.lax.dynamic_slice(image, (pad_h - y, pad_w - x_, 0), (h, w, image.shape[-1]))

    return jax.vmap(shift)(padded, dy, dx)


def cutout(key: jax.Array, x: jax.Array, p, ratio: float = 0.5) -> jax.Array:
    """Zero a square of `ratio` of the image's side at a uniform position (clipped at the borders), as
    DiffAugment's rand_cutout (14 x 14 on MNIST)."""
    n, h, w, _ = x.shape
    k_apply, k_y, k_x = jax.random.split(key, 3)
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = jax.random.randint(k_y, (n, 1, 1), 0, h + (1 - size_h % 2)) - size_h // 2
    left = jax.random.randint(k_x, (n, 1, 1), 0, w + (1 - size_w % 2)) - size_w // 2
    rows, cols = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    on = jax.random.bernoulli(k_apply, p, (n, 1, 1))
    return x * jnp.where(inside & on, 0.0, 1.0)[..., None]


AUGMENTATIONS: dict[str, Augmentation] = {"translation": translation, "cutout": cutout}


def augment(names: Sequence[str], key: jax.Array, x: jax.Array, image_shape: Sequence[int], p) -> jax.Array:
    """Flat images [n, h*w*c] -> the same, each named augmentation applied in order with its own key."""
    if not names:
        return x
    images = x.reshape((x.shape[0],) + tuple(image_shape))
    for i, name in enumerate(names):
        images = AUGMENTATIONS[name](jax.random.fold_in(key, i), images, p)
    return images.reshape(x.shape)
