import jax
import numpy as np
import pytest

from gan_jax import data
from gan_jax.data import toy


def sample(name, n=20000, standardize=False, seed=0):
    return np.asarray(data.get_dataset(name).sampler(standardize)(jax.random.key(seed), n))


def test_quadratic_is_r1s_curve():
    x = sample("quadratic")
    assert x.shape == (20000, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 1], 10 + x[:, 0] ** 2, rtol=1e-6)
    assert -50 <= x[:, 0].min() < -49.5 and 49.5 < x[:, 0].max() <= 50


@pytest.mark.parametrize("name", ["quadratic", "two_curves"])
def test_standardized_moments_are_exact(name):
    x = sample(name, 400_000, standardize=True)
    np.testing.assert_allclose(x.mean(0), 0, atol=0.01)
    np.testing.assert_allclose(x.std(0), 1, atol=0.01)
    ds = data.get_dataset(name)
    np.testing.assert_allclose(ds.to_raw(x[:10], True), sample(name, 400_000)[:10], rtol=1e-4)


def test_two_curves_splits_evenly():
    x = sample("two_curves")
    upper = x[:, 1] > 0
    np.testing.assert_allclose(np.abs(x[:, 1]), 10 + x[:, 0] ** 2, rtol=1e-6)
    assert 0.48 < upper.mean() < 0.52


@pytest.mark.parametrize("name, n_modes, radius", [("ring8", 8, 2.0), ("grid25", 25, None)])
def test_mixtures_hit_every_mode(name, n_modes, radius):
    ds = data.get_dataset(name)
    x = sample(name)
    dist = np.linalg.norm(x[:, None] - ds.modes[None], axis=-1)
    nearest = dist.argmin(1)
    assert np.bincount(nearest, minlength=n_modes).min() > 20000 / n_modes * 0.85
    assert np.all(dist.min(1) < 6 * ds.mode_std)  # nothing far from a mode
    if radius:
        np.testing.assert_allclose(np.linalg.norm(ds.modes, axis=1), radius, rtol=1e-6)
    else:
        assert sorted(set(ds.modes[:, 0].tolist())) == [-4, -2, 0, 2, 4]


def test_samplers_are_pure_functions_of_the_key():
    np.testing.assert_array_equal(sample("ring8", seed=3), sample("ring8", seed=3))
    assert not np.allclose(sample("ring8", seed=3), sample("ring8", seed=4))


def test_unknown_dataset():
    from gan_jax.errors import ConfigError

    with pytest.raises(ConfigError, match="ring8"):
        toy.get_dataset("swiss_roll")
