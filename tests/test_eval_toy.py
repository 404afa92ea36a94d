import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from gan_jax import data
from gan_jax.data import toy
from gan_jax.metrics import toy as ev

N = 2500


def draw(name, n=N, seed=0):
    return data.get_dataset(name).sample(jax.random.key(seed), n)


@pytest.mark.parametrize("name, k", [("ring8", 8), ("grid25", 25)])
def test_perfect_sampler_covers_every_mode(name, k):
    ds = data.get_dataset(name)
    m = ev.metrics_fn(ds)(draw(name), None)
    assert float(m["modes_covered"]) == k
    # P(|N(0, s^2 I_2)| <= 3s) = 1 - exp(-4.5) = 0.9889
    assert float(m["high_quality"]) == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert float(m["mode_reverse_kl"]) < 0.03


def test_collapsed_sampler_covers_one_mode():
    ds = data.get_dataset("ring8")
    one_mode = toy.gaussian_mixture(jax.random.key(0), N, ds.modes[:1], ds.mode_std)
    m = ev.mode_metrics(one_mode, ds.modes, ds.mode_std)
    assert float(m["modes_covered"]) == 1
    assert float(m["mode_reverse_kl"]) == pytest.approx(np.log(8), rel=1e-5)


def test_ring_of_wrong_radius_has_no_high_quality_samples():
    ds = data.get_dataset("ring8")
    wrong = toy.gaussian_mixture(jax.random.key(0), N, toy.ring_modes(8, 1.5), ds.mode_std)
    m = ev.mode_metrics(wrong, ds.modes, ds.mode_std)
    assert float(m["high_quality"]) < 0.01 and float(m["modes_covered"]) == 0
    far = ev.mode_metrics(wrong * 10, ds.modes, ds.mode_std)
    assert float(far["high_quality"]) == 0 and np.isnan(float(far["mode_reverse_kl"]))


def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300).astype(np.float32), rng.normal(0.3, 1.0, size=500).astype(np.float32)
    expected = scipy.stats.ks_2samp(a, b).statistic
    assert float(ev.ks_statistic(jnp.asarray(a), jnp.asarray(b))) == pytest.approx(expected, abs=1e-6)


def test_mmd_matches_direct_numpy_and_separates():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 2)), rng.normal(0.5, 1.0, size=(30, 2))
    pooled = np.concatenate([x, y])
    d2 = ((pooled[:, None] - pooled[None]) ** 2).sum(-1)  # fewer than BANDWIDTH_SAMPLES: all pairs
    k = np.exp(-d2 / (2 * np.median(d2)))
    kxx, kyy, kxy = k[:40, :40], k[40:, 40:], k[:40, 40:]
    expected = ((kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (30 * 29)
                - 2 * kxy.mean())
    assert float(ev.mmd_rbf(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))) == pytest.approx(
        expected, rel=1e-4)
    same = ev.mmd_rbf(draw("ring8", 1000, 1), draw("ring8", 1000, 2))
    shifted = ev.mmd_rbf(draw("ring8", 1000, 1), draw("ring8", 1000, 2) + 1.0)
    assert abs(float(same)) < 0.005 and float(shifted) > 0.1


def test_the_bandwidth_median_is_jnp_median_bitwise():
    """mmd_rbf's median by bit search equals jnp.median's sort bit for bit: squared pairwise distances at
    several scales, with repeated points (zeros off the diagonal), an infinity, a NaN, odd and even counts."""
    median, reference = jax.jit(ev.median_of_non_negative), jax.jit(jnp.median)
    rng = np.random.default_rng(0)
    cases = [rng.random(n).astype(np.float32) for n in (1, 2, 3, 10, 11)]
    for trial in range(12):
        m = int(rng.integers(2, 60))
        points = (rng.normal(size=(m, 2)) * 10.0 ** rng.integers(-3, 4)).astype(np.float32)
        if trial % 3 == 0:
            points[: m // 2] = points[0]
        cases.append(np.sum((points[:, None] - points[None]) ** 2, -1).astype(np.float32))
    cases[-1][0, 1], cases[-2][1, 0] = np.inf, np.nan
    for values in cases:
        got, want = np.asarray(median(values)), np.asarray(reference(values))
        assert got.tobytes() == want.tobytes() or (np.isnan(got) and np.isnan(want)), (values.shape, got, want)


def test_quadratic_metrics():
    ds = data.get_dataset("quadratic")
    real, other = draw("quadratic", seed=1), draw("quadratic", seed=2)
    good = ev.quadratic_metrics(other, real, ds)
    assert float(good["curve_distance"]) < 1e-3
    assert float(good["x_ks"]) < 0.05 and abs(float(good["mmd"])) < 0.005
    half = other.at[:, 0].set(jnp.abs(other[:, 0])).at[:, 1].set(10 + other[:, 0] ** 2)  # only x >= 0
    assert float(ev.quadratic_metrics(half, real, ds)["x_ks"]) == pytest.approx(0.5, abs=0.05)
    lifted = other.at[:, 1].add(500.0)  # 500 / 745 = 0.67 data stds above the curve at most
    lifted_m = ev.quadratic_metrics(lifted, real, ds)
    assert 0.05 < float(lifted_m["curve_distance"]) < 0.68 and float(lifted_m["mmd"]) > 0.05


def test_two_curves_shares():
    ds = data.get_dataset("two_curves")
    real = draw("two_curves", seed=1)
    m = ev.two_curves_metrics(draw("two_curves", seed=2), real, ds)
    assert float(m["share_upper"]) == pytest.approx(0.5, abs=0.04)
    assert float(m["share_upper"] + m["share_lower"]) == pytest.approx(1.0, abs=1e-6)
    upper_only = ev.two_curves_metrics(draw("quadratic", seed=3), real, ds)
    assert float(upper_only["share_upper"]) == 1.0 and float(upper_only["share_lower"]) == 0.0


def test_metrics_vmap_over_members():
    ds = data.get_dataset("grid25")
    fn = ev.metrics_fn(ds)
    members = jnp.stack([draw("grid25", seed=s) for s in range(3)])
    batched = jax.jit(jax.vmap(fn, in_axes=(0, None)))(members, None)
    for i in range(3):
        single = fn(members[i], None)
        for k in single:
            assert float(batched[k][i]) == pytest.approx(float(single[k]), rel=1e-5, abs=1e-6)


def test_toy_feature_metrics_are_finite_and_scale_free():
    """KID's cubic kernel on raw quadratic coordinates (y up to 1e4) gave real-vs-real KID 6e15 in float32;
    the feature metrics are taken in coordinates scaled by the real draw, so a real draw scores KID near 0
    and rescaling the data's units changes no feature metric."""
    keys = ("kid", "precision", "recall", "density", "coverage")
    for name in ("quadratic", "ring8", "grid25", "pacgan_grid"):
        ds = data.get_dataset(name)
        real, other = draw(name, seed=1), draw(name, seed=2)
        m = ev.evaluation_fn(ds, real)(other)
        assert abs(float(m["kid"])) < 0.02 and float(m["kid_std"]) < 0.05, (name, m["kid"], m["kid_std"])
        assert float(m["precision"]) > 0.9 and float(m["recall"]) > 0.9, name
        # a power-of-two change of units is exact in float32, so every metric must come out the same
        units = ev.evaluation_fn(ds, real * 1024.0)(other * 1024.0)
        for k in keys:
            assert float(units[k]) == pytest.approx(float(m[k]), rel=1e-5, abs=1e-6), (name, k)
