"""Each loss against values computed by hand for fixed logits.

real logits r = [0, 2], fake logits f = [0, -1]; with log s(x) = -log(1 + e^-x):
log s(0) = -0.6931472, log s(2) = -0.1269280, log s(-2) = -2.1269280,
log s(1) = -0.3132617, log s(-1) = -1.3132617.
"""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax.components import losses

R = jnp.array([0.0, 2.0])
F = jnp.array([0.0, -1.0])


class TestMinimax:
    def test_discriminator(self):
        # -(mean(log s(r)) + mean(log s(-f))) = (0.6931472 + 0.1269280)/2 + (0.6931472 + 0.3132617)/2
        assert losses.minimax_discriminator_loss(R, F) == pytest.approx(0.9132420, abs=1e-6)

    def test_discriminator_label_smoothing(self):
        # real term with target 0.9: -(0.9 log s(r) + 0.1 log s(-r)):
        # r=0: 0.6931472; r=2: 0.9*0.1269280 + 0.1*2.1269280 = 0.3269280; mean 0.5100376; + fake 0.5032045
        assert losses.minimax_discriminator_loss(R, F, 0.9) == pytest.approx(1.0132421, abs=1e-6)

    def test_generator_is_saturating(self):
        # mean(log(1 - D(G(z)))) = mean(log s(-f)) = -(0.6931472 + 0.3132617)/2
        assert losses.minimax_generator_loss(F) == pytest.approx(-0.5032045, abs=1e-6)


class TestNonSaturating:
    def test_discriminator_is_minimax(self):
        assert losses.non_saturating_discriminator_loss(R, F, 0.9) == pytest.approx(1.0132421, abs=1e-6)

    def test_generator(self):
        # -mean(log s(f)) = (0.6931472 + 1.3132617)/2
        assert losses.non_saturating_generator_loss(F) == pytest.approx(1.0032045, abs=1e-6)

    def test_matches_optax_cross_entropy(self):
        rng = np.random.default_rng(0)
        r, f = jnp.asarray(rng.normal(size=50) * 3), jnp.asarray(rng.normal(size=50) * 3)
        expected = (optax.sigmoid_binary_cross_entropy(r, jnp.full(50, 0.9)).mean()
                    + optax.sigmoid_binary_cross_entropy(f, jnp.zeros(50)).mean())
        assert losses.non_saturating_discriminator_loss(r, f, 0.9) == pytest.approx(float(expected), rel=1e-5)
        expected_g = optax.sigmoid_binary_cross_entropy(f, jnp.ones(50)).mean()
        assert losses.non_saturating_generator_loss(f) == pytest.approx(float(expected_g), rel=1e-5)


class TestLeastSquares:
    def test_discriminator(self):
        # 0.5 mean((r-1)^2) + 0.5 mean(f^2) = 0.5*1 + 0.5*0.5
        assert losses.least_squares_discriminator_loss(R, F) == pytest.approx(0.75)

    def test_discriminator_label_smoothing(self):
        # 0.5 mean((r-0.9)^2) = 0.5 * (0.81 + 1.21)/2 = 0.505; + 0.25
        assert losses.least_squares_discriminator_loss(R, F, 0.9) == pytest.approx(0.755)

    def test_generator(self):
        # 0.5 mean((f-1)^2) = 0.5 * (1 + 4)/2
        assert losses.least_squares_generator_loss(F) == pytest.approx(1.25)


class TestHinge:
    def test_discriminator(self):
        # mean(relu(1-r)) + mean(relu(1+f)) = (1 + 0)/2 + (1 + 0)/2
        assert losses.hinge_discriminator_loss(R, F) == pytest.approx(1.0)

    def test_generator(self):
        assert losses.hinge_generator_loss(F) == pytest.approx(0.5)


class TestWasserstein:
    def test_critic(self):
        # mean(f) - mean(r) = -0.5 - 1
        assert losses.wasserstein_discriminator_loss(R, F) == pytest.approx(-1.5)

    def test_generator(self):
        assert losses.wasserstein_generator_loss(F) == pytest.approx(0.5)


class TestRelativisticPairing:
    """softplus(t) = log(1 + e^t): softplus(0) = 0.6931472, softplus(-3) = 0.0485874, softplus(3) = 3.0485874."""

    def test_discriminator(self):
        # mean(softplus(f - r)) over the pairs (0, 0), (-1, 2) = (0.6931472 + 0.0485874) / 2
        assert losses.rpgan_discriminator_loss(R, F) == pytest.approx(0.3708673, abs=1e-6)

    def test_generator(self):
        # mean(softplus(r - f)) = (0.6931472 + 3.0485874) / 2
        assert losses.rpgan_generator_loss(F, R) == pytest.approx(1.8708673, abs=1e-6)

    def test_depends_on_the_pairing(self):
        assert losses.rpgan_discriminator_loss(R, F[::-1]) != pytest.approx(0.3708673, abs=1e-3)


class TestRelativisticAverage:
    """mean(r) = 1, mean(f) = -0.5; -log sigmoid(t) = softplus(-t)."""

    def test_discriminator(self):
        # real: softplus(-(r + 0.5)) -> (0.4740770 + 0.0789340) / 2; fake: softplus(-(1 - f)) -> (0.3132617 + 0.1269280) / 2
        assert losses.ragan_discriminator_loss(R, F) == pytest.approx(0.4965782, abs=1e-6)

    def test_generator(self):
        # fake as real: softplus(-(f - 1)) -> (1.3132617 + 2.1269280) / 2; real as fake: softplus(r + 0.5) -> (0.9740770 + 2.5789340) / 2
        assert losses.ragan_generator_loss(F, R) == pytest.approx(3.4965782, abs=1e-6)


@pytest.mark.parametrize("name", sorted(set(losses.LOSSES) - {"non_saturating_prob"}))
def test_stable_for_extreme_logits(name):
    loss = losses.LOSSES[name]
    big = jnp.array([-200.0, 200.0])
    assert jnp.isfinite(loss.discriminator(big, -big, 1.0))
    assert jnp.isfinite(loss.generator(big, -big) if loss.relativistic else loss.generator(big))


def test_non_saturating_generator_large_negative_logit_is_exact():
    # a naive log(sigmoid(-100)) underflows to -inf in float32; the stable form gives 100
    assert losses.non_saturating_generator_loss(jnp.array([-100.0])) == pytest.approx(100.0)


def test_unknown_loss_names_the_choices():
    from gan_jax.core.config import Config
    from gan_jax.errors import ConfigError
    from gan_jax.core.validate import validate

    with pytest.raises(ConfigError, match="`loss`: unknown loss 'wgan'; choose one of .*'non_saturating'"):
        validate(Config(loss="wgan"))


def test_probability_form_equals_logit_form_until_it_overflows():
    """R4's two formulations: equal for moderate logits; the probability form gives inf once D saturates."""
    r, f = jnp.array([0.5, 2.0, -1.0]), jnp.array([-0.3, 1.0, -2.0])
    assert losses.non_saturating_prob_discriminator_loss(r, f) == pytest.approx(
        float(losses.non_saturating_discriminator_loss(r, f)), rel=1e-5)
    assert losses.non_saturating_prob_generator_loss(f) == pytest.approx(
        float(losses.non_saturating_generator_loss(f)), rel=1e-5)
    saturated = jnp.array([-120.0])
    assert jnp.isinf(losses.non_saturating_prob_generator_loss(saturated))
    assert losses.non_saturating_generator_loss(saturated) == pytest.approx(120.0)
