"""Sample-quality metrics for the toy 2-D datasets. Pure, jittable functions of sample arrays.

Mixtures follow the PacGAN protocol, as its code (pacgan/extensions.py, MetricLogger) computes it: each of
2,500 samples goes to its nearest mode by standardized distance (Euclidean over the std: the modes are
isotropic and equal); it is high quality if that distance is below 3; `modes_captured` counts the modes with
at least one high-quality sample (PacGAN's and VEEGAN's "modes"); `high_quality` is the share of high-quality
samples; `mode_reverse_kl` is KL(p || uniform) of the histogram of high-quality samples over the modes (log K
minus the entropy the code logs; 0 for a perfect sampler, log K for full collapse, nan with no high-quality
sample). `modes_covered` is gan_jax's stricter count: modes with at least `min_share` of the samples as
high-quality ones (20 of 2,500).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from gan_jax.data.toy import QUADRATIC_X_RANGE, ToyDataset
from gan_jax.metrics import features
from gan_jax.metrics.metric import higher, lower

METRICS = (higher("modes_captured", "modes with at least one high-quality sample (PacGAN's and VEEGAN's modes)"),
           higher("modes_covered", "modes with at least min_share of the samples as high-quality ones"),
           higher("high_quality", "share of samples within 3 std of their nearest mode"),
           lower("mode_reverse_kl", "KL(high-quality samples' mode histogram || uniform)"),
           lower("curve_distance", "median distance from a sample to the curve"),
           lower("x_ks", "Kolmogorov-Smirnov statistic of the samples' x against the real x"),
           lower("mmd", "RBF-kernel MMD against a real draw, standardized units"),
           higher("share_upper", "two_curves: share of samples on the upper curve"),
           higher("share_lower", "two_curves: share of samples on the lower curve"),
           *features.METRICS)

MIN_MODE_SHARE = 20 / 2500


def mode_metrics(samples: jax.Array, modes: jax.Array, std: float,
                 min_share: float = MIN_MODE_SHARE) -> dict[str, jax.Array]:
    dist = jnp.linalg.norm(samples[:, None, :] - jnp.asarray(modes)[None], axis=-1)
    nearest = jnp.argmin(dist, axis=1)
    high_quality = jnp.min(dist, axis=1) < 3.0 * std
    counts = jnp.zeros(modes.shape[0]).at[nearest].add(high_quality.astype(jnp.float32))
    p = counts / jnp.maximum(counts.sum(), 1.0)
    reverse_kl = jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30) * modes.shape[0]), 0.0))
    reverse_kl = jnp.where(counts.sum() > 0, reverse_kl, jnp.nan)  # undefined without high-quality samples
    return {"modes_captured": jnp.sum(counts >= 1).astype(jnp.float32),
            "modes_covered": jnp.sum(counts >= min_share * samples.shape[0]).astype(jnp.float32),
            "high_quality": jnp.mean(high_quality.astype(jnp.float32)),
            "mode_reverse_kl": reverse_kl}


def ks_statistic(a: jax.Array, b: jax.Array) -> jax.Array:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b| of 1-D samples."""
    a, b = jnp.sort(a), jnp.sort(b)
    pooled = jnp.concatenate([a, b])
    cdf_a = jnp.searchsorted(a, pooled, side="right") / a.shape[0]
    cdf_b = jnp.searchsorted(b, pooled, side="right") / b.shape[0]
    return jnp.max(jnp.abs(cdf_a - cdf_b))


MMD_SAMPLES = 1000  # per side; the kernel matrix is (2 * MMD_SAMPLES)^2
BANDWIDTH_SAMPLES = 256  # per side, for the median heuristic (a full median sorts millions of pairs)


def median_of_non_negative(values: jax.Array) -> jax.Array:
    """`jnp.median(values)`, bitwise, for float32 values >= 0 (or NaN), without sorting them: a float32 >= 0
    orders as its bit pattern, so the lower middle order statistic is a binary search over 32 bits, a count
    per bit. jnp.median's sort of the bandwidth's 262,144 distances was most of a toy evaluation (189 of 340 ms
    a member, compiled as the tests compile)."""
    flat = values.ravel()
    bits = jax.lax.bitcast_convert_type(flat, jnp.uint32)
    n = flat.shape[0]

    def smallest(k):  # the k-th smallest (0-based): the least b with more than k values at or below it
        def step(_, bounds):
            lo, hi = bounds
            mid = lo + (hi - lo) // 2
            enough = jnp.sum(bits <= mid) > k
            return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

        # bounds from the values themselves (so they vary over a shard_map's members, as the loop's results do)
        lo, _ = jax.lax.fori_loop(0, 32, step, (jnp.min(bits), jnp.max(bits)))
        return jax.lax.bitcast_convert_type(lo, jnp.float32)

    low = smallest((n - 1) // 2)
    # the next order statistic: the same value while it fills that place too, else the least one above it
    high = jnp.where(jnp.sum(flat <= low) > n // 2, low, jnp.min(jnp.where(flat > low, flat, jnp.inf)))
    median = (low + high) * jnp.float32(0.5)  # jnp.median's midpoint
    return jnp.where(jnp.any(jnp.isnan(flat)), jnp.nan, median)


def mmd_rbf(x: jax.Array, y: jax.Array) -> jax.Array:
    """Unbiased squared MMD of the first MMD_SAMPLES of x and y with a Gaussian kernel exp(-d^2 / (2 s^2)),
    s^2 = median squared pairwise distance of the first BANDWIDTH_SAMPLES of each, pooled (the median
    heuristic, Gretton et al. 2012)."""
    x, y = x[:MMD_SAMPLES], y[:MMD_SAMPLES]
    pooled = jnp.concatenate([x, y])
    head = jnp.concatenate([x[:BANDWIDTH_SAMPLES], y[:BANDWIDTH_SAMPLES]])
    s2 = median_of_non_negative(jnp.sum((head[:, None] - head[None]) ** 2, axis=-1))
    d2 = jnp.sum((pooled[:, None] - pooled[None]) ** 2, axis=-1)
    k = jnp.exp(-d2 / (2.0 * s2))
    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    off = lambda kk, size: (kk.sum() - jnp.trace(kk)) / (size * (size - 1))  # noqa: E731
    return off(kxx, n) + off(kyy, m) - 2.0 * kxy.mean()


def _curve_points(sign: float = 1.0, n: int = 2001) -> jax.Array:
    """n points along R1's curve y = sign * (10 + x^2) over its x range."""
    x = jnp.linspace(*QUADRATIC_X_RANGE, n)
    return jnp.stack([x, sign * (10.0 + x * x)], axis=-1)


def _standardize(points, dataset: ToyDataset):
    return (points - jnp.asarray(dataset.mean)) / jnp.asarray(dataset.std)


def curve_distance(samples: jax.Array, dataset: ToyDataset, signs=(1.0,)) -> jax.Array:
    """Per-sample Euclidean distance to the nearest curve, in units of the data's standard deviation per
    coordinate (so both axes count alike), for samples in the data's own units."""
    s = _standardize(samples, dataset)
    dists = [jnp.min(jnp.linalg.norm(s[:, None] - _standardize(_curve_points(sign), dataset)[None],
                                     axis=-1), axis=1) for sign in signs]
    return jnp.stack(dists, axis=-1)  # [n, n_curves]


def quadratic_metrics(samples: jax.Array, real: jax.Array, dataset: ToyDataset) -> dict[str, jax.Array]:
    dist = curve_distance(samples, dataset)[:, 0]
    return {"curve_distance": jnp.median(dist),
            "x_ks": ks_statistic(samples[:, 0], real[:, 0]),
            "mmd": mmd_rbf(_standardize(samples, dataset), _standardize(real, dataset))}


ON_CURVE = 0.05  # a sample within 0.05 data standard deviations of a curve lies on it


def two_curves_metrics(samples: jax.Array, real: jax.Array, dataset: ToyDataset) -> dict[str, jax.Array]:
    dist = curve_distance(samples, dataset, signs=(1.0, -1.0))
    nearest = jnp.min(dist, axis=1)
    on = nearest <= ON_CURVE  # each sample counts for its nearest curve only (they meet near x = 0)
    upper = dist[:, 0] <= dist[:, 1]
    return {"share_upper": jnp.mean(on & upper), "share_lower": jnp.mean(on & ~upper),
            "curve_distance": jnp.median(nearest),
            "mmd": mmd_rbf(_standardize(samples, dataset), _standardize(real, dataset))}


def metrics_fn(dataset: ToyDataset) -> Callable[[jax.Array, jax.Array], dict[str, jax.Array]]:
    """`(samples, real) -> metrics` for `dataset`, both arrays in the data's own units."""
    if dataset.modes is not None:
        return lambda samples, real: mode_metrics(samples, dataset.modes, dataset.mode_std)
    if dataset.name == "two_curves":
        return lambda samples, real: two_curves_metrics(samples, real, dataset)
    return lambda samples, real: quadratic_metrics(samples, real, dataset)


FEATURE_SAMPLES = 1000  # samples a side for KID, precision/recall, density/coverage (2,500 cost 0.37 s a member)


def evaluation_fn(dataset: ToyDataset, real: jax.Array) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """`samples -> metrics`, samples in the data's own units: the dataset's own metrics against the real
    draw `real`, and KID, precision, recall, density and coverage (`gan_jax.metrics.features`) of the first
    FEATURE_SAMPLES samples against the first FEATURE_SAMPLES of `real`, in coordinates centred on that real
    draw's mean and divided by its standard deviation (one scale for both axes)."""
    own = metrics_fn(dataset)
    ref = jnp.asarray(real[:FEATURE_SAMPLES], jnp.float32)
    # KID's cubic kernel on raw coordinates overflows float32's precision (the quadratic's y reaches 1e4:
    # real-vs-real KID 6e15); one scale for both axes leaves the k-NN metrics unchanged in exact arithmetic
    center, scale = jnp.mean(ref, axis=0), jnp.std(ref)
    reference = features.reference((ref - center) / scale, FEATURE_SAMPLES)
    return lambda samples: {**own(samples, real),
                            **features.metrics(reference, (samples[:FEATURE_SAMPLES] - center) / scale)}


def provenance(dataset: ToyDataset, n_samples: int) -> dict:
    """What the toy metrics depend on: compare two runs' numbers only when this matches."""
    return {"dataset": dataset.name, "samples": n_samples, "reference": "a real draw from the evaluation stream",
            "reference_samples": n_samples, "mode_std": dataset.mode_std,
            "min_mode_share": MIN_MODE_SHARE if dataset.modes is not None else None,
            "features": {"space": "coordinates centred and scaled by the real draw (one scale)",
                         **features.provenance(FEATURE_SAMPLES, FEATURE_SAMPLES, 2)}}
