import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import data
from gan_jax.components.optim import default_hparams, make_optimizer
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN, make_train
from gan_jax.core.loop import learned
from gan_jax.engine.sweep import member_keys, stack_hparams, Sweep


def run_single(cfg, hp, seed, steps):
    gan = GAN.from_config(cfg)
    state = gan.init(jax.random.key(seed))
    return jax.jit(gan.run, static_argnums=2)(state, hp.as_arrays(), steps)


def run_members(cfg, hps, seeds, steps):
    sweep = Sweep(GAN.from_config(cfg), len(seeds))
    hp = stack_hparams(hps)
    # on the host: indexing one member of a sharded array is a cross-device collective, which XLA:CPU
    # aborts after 40 s if one device is still busy with queued work (a loaded CI machine)
    return jax.device_get(sweep.run(sweep.init(member_keys(seeds)), hp, steps))


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def test_same_seed_same_numbers(tiny_cfg):
    hp = default_hparams("rmsprop")
    s1, m1 = run_single(tiny_cfg, hp, 3, 40)
    s2, m2 = run_single(tiny_cfg, hp, 3, 40)
    chex.assert_trees_all_equal(s1.g_params, s2.g_params)
    chex.assert_trees_all_equal(m1, m2)
    s3, _ = run_single(tiny_cfg, hp, 4, 40)
    assert not np.allclose(s1.g_params["Dense_0"]["kernel"], s3.g_params["Dense_0"]["kernel"])


@pytest.mark.parametrize("share_batch", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_vmapped_members_equal_single_runs(tiny_cfg, share_batch):
    tiny_cfg = tiny_cfg.replace(share_batch=share_batch)
    hp = default_hparams("rmsprop")
    seeds = [0, 1, 2, 3]
    state, metrics = run_members(tiny_cfg, [hp] * 4, seeds, 40)
    for i, seed in enumerate(seeds):
        single_state, single_metrics = run_single(tiny_cfg, hp, seed, 40)
        assert_trees_close(jax.tree.map(lambda a: a[i], state.g_params), single_state.g_params)
        assert_trees_close(jax.tree.map(lambda a: a[i], state.d_params), single_state.d_params)
        assert_trees_close({k: v[i] for k, v in metrics.items()}, single_metrics, rtol=1e-4)


# rmsprop's vmapped == single is test_vmapped_members_equal_single_runs; other traced values, adam's here
@pytest.mark.parametrize("optimizer", ["adam", pytest.param("rmsprop", marks=pytest.mark.slow),
                                       pytest.param("sgd", marks=pytest.mark.slow)])
def test_member_with_other_hparams_equals_single_run(tiny_cfg, optimizer):
    cfg = tiny_cfg.replace(optimizer=optimizer)
    base = default_hparams(optimizer, 1e-3)
    other = default_hparams(optimizer, 3e-3, lr_d=5e-4, beta1=0.5, real_label=0.9)
    state, _ = run_members(cfg, [base, other], [7, 7], 40)
    single_other, _ = run_single(cfg, other, 7, 40)
    single_base, _ = run_single(cfg, base, 7, 40)
    assert_trees_close(jax.tree.map(lambda a: a[1], state.g_params), single_other.g_params)
    assert_trees_close(jax.tree.map(lambda a: a[0], state.g_params), single_base.g_params)
    # and the hyperparameters really differ in effect
    assert not np.allclose(single_other.g_params["Dense_0"]["kernel"], single_base.g_params["Dense_0"]["kernel"])


@pytest.mark.slow  # a duplicate: test_vmapped_members_equal_single_runs has each of 4 members equal its run alone
def test_member_does_not_depend_on_neighbours(tiny_cfg):
    hp = default_hparams("rmsprop")
    alone, _ = run_members(tiny_cfg, [hp], [5], 40)
    crowd, _ = run_members(tiny_cfg, [hp] * 3, [9, 5, 11], 40)
    assert_trees_close(jax.tree.map(lambda a: a[0], alone.g_params), jax.tree.map(lambda a: a[1], crowd.g_params))


def test_chunked_run_equals_one_run(tiny_cfg):
    hp = stack_hparams([default_hparams("rmsprop")] * 2)
    sweep = Sweep(GAN.from_config(tiny_cfg), 2)
    whole, m_whole = sweep.run(sweep.init(member_keys([0, 1])), hp, 60)
    state = sweep.init(member_keys([0, 1]))
    state, m_a = sweep.run(state, hp, 20)
    state, m_b = sweep.run(state, hp, 40)
    chex.assert_trees_all_equal(whole, state)  # same member layout: bitwise
    np.testing.assert_array_equal(np.concatenate([m_a["step"], m_b["step"]], 1), m_whole["step"])


def test_logged_steps_with_remainder(tiny_cfg):
    _, metrics = run_single(tiny_cfg.replace(log_every=10), default_hparams("rmsprop"), 0, 25)
    np.testing.assert_array_equal(metrics["step"], [0, 10, 20])
    assert set(metrics) >= {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"}


def test_n_disc_and_n_gen_count_updates(tiny_cfg):
    cfg = tiny_cfg.replace(optimizer="adam", n_disc=3, n_gen=2)
    state, _ = run_single(cfg, default_hparams("adam"), 0, 10)
    assert int(state.d_opt_state[0].count) == 30
    assert int(state.g_opt_state[0].count) == 20
    assert int(state.step) == 10


@pytest.mark.parametrize("share_batch", [True, False])
def test_step_is_d_then_g_update_on_the_step_keys_batches(tiny_cfg, share_batch):
    """R1 (share_batch) uses one (x, z) batch for every update of a step; otherwise each update draws
    its own. Rebuild the step by hand from its keys and compare."""
    cfg = tiny_cfg.replace(share_batch=share_batch)
    gan = GAN.from_config(cfg)
    hp = default_hparams("rmsprop").as_arrays()
    state = gan.init(jax.random.key(0))
    stepped, _ = gan.step(state, hp)
    k_d, k_g, k_shared = jax.random.split(jax.random.fold_in(state.key, 0), 3)
    k_batch, k_drop = jax.random.split(jax.random.fold_in(k_d, 0))
    k_data, k_noise = jax.random.split(k_shared if share_batch else k_batch)
    real, z = gan.sample_data(k_data, 64), gan.sample_noise(k_noise, 64)
    manual, _ = gan.d_update(state, hp, real, z, k_drop)
    k_noise_g, k_drop_g = jax.random.split(jax.random.fold_in(k_g, 0))
    z_g = z if share_batch else gan.sample_noise(k_noise_g, 64)
    manual, _ = gan.g_update(manual, hp, z_g, k_drop_g)
    assert_trees_close(manual.g_params, stepped.g_params, rtol=1e-6, atol=1e-7)
    assert_trees_close(manual.d_params, stepped.d_params, rtol=1e-6, atol=1e-7)


def test_no_recompiles_across_calls_and_hparams(tiny_cfg):
    gan = GAN.from_config(tiny_cfg)
    traced_run = chex.assert_max_traces(gan.run, n=1)
    run = jax.jit(jax.vmap(traced_run, in_axes=(0, 0, None)), static_argnums=2)
    for lr in (1e-3, 2e-3, 5e-4):  # new traced values must not retrace
        hp = stack_hparams([default_hparams("rmsprop", lr)] * 2)
        state = jax.vmap(gan.init)(member_keys([0, 1]))
        for _ in range(2):
            state, _ = run(state, hp, 10)
    sweep = Sweep(gan, 2)
    state = sweep.init(member_keys([0, 1]))
    for _ in range(3):
        state, _ = sweep.run(state, hp, 10)
    assert len(sweep.compiled) == 1


def test_rmsprop_matches_tf1_semantics():
    # TF1 RMSProp: ms starts at 1; ms = 0.9 ms + 0.1 g^2; p -= lr g / sqrt(ms + eps)
    tx = make_optimizer("rmsprop", 0.01, 0.0, 0.9)
    params = {"w": jnp.array([1.0])}
    updates, _ = tx.update({"w": jnp.array([2.0])}, tx.init(params), params)
    ms = 0.9 * 1.0 + 0.1 * 4.0
    assert float(updates["w"][0]) == pytest.approx(-0.01 * 2.0 / np.sqrt(ms + 1e-10), rel=1e-6)


def test_adam_betas_are_traced():
    grads = [{"w": jnp.array([0.3])}, {"w": jnp.array([-1.2])}]  # two steps: Adam's first is sign(g) alone

    def two_updates(tx):
        state = tx.init({"w": jnp.zeros(1)})
        _, state = tx.update(grads[0], state)
        return tx.update(grads[1], state)[0]["w"]

    traced = jax.jit(lambda lr, b1, b2: two_updates(make_optimizer("adam", lr, b1, b2)))  # one program for all
    np.testing.assert_allclose(traced(0.1, 0.5, 0.9), two_updates(optax.adam(0.1, b1=0.5, b2=0.9)), rtol=1e-6)
    assert not np.allclose(traced(0.1, 0.9, 0.999), traced(0.1, 0.5, 0.9), rtol=1e-3)


def test_a_learning_rate_given_after_init_is_the_one_used(tiny_cfg):
    """HParams given to each run are the only source of traced values: a run with lr 0 leaves the
    parameters where they were (an optimizer that kept init's lr would move them), lr 1e-3 moves them."""
    gan = GAN.from_config(tiny_cfg.replace(optimizer="adam"))
    sweep = Sweep(gan, 2)
    state, _ = sweep.run(sweep.init(member_keys([0, 1])), stack_hparams([default_hparams("adam", 1e-3)] * 2), 10)
    before = jax.device_get(state)
    frozen, _ = sweep.run(state, stack_hparams([default_hparams("adam", 0.0)] * 2), 10)
    frozen = jax.device_get(frozen)
    chex.assert_trees_all_equal((frozen.g_params, frozen.d_params), (before.g_params, before.d_params))
    assert int(frozen.step[0]) == 20 and int(frozen.d_opt_state[0].count[0]) == 20  # it did take 10 steps
    moved, _ = sweep.run(sweep.init(member_keys([0, 1])), stack_hparams([default_hparams("adam", 1e-3)] * 2), 20)
    assert not np.allclose(jax.device_get(moved).g_params["Dense_0"]["kernel"], before.g_params["Dense_0"]["kernel"])


def test_lr_and_betas_changed_between_chunks_give_a_hand_computed_adam_step(tiny_cfg):
    """After 5 steps at (lr 1e-3, b1 0.9, b2 0.999), one step at (5e-3, 0.5, 0.9): D's new parameters are
    Adam's update with the new values, computed here by hand from D's gradient on that step's batch."""
    gan = GAN.from_config(tiny_cfg.replace(optimizer="adam"))
    sweep = Sweep(gan, 2)
    old, new = default_hparams("adam", 1e-3), default_hparams("adam", 5e-3, beta1=0.5, beta2=0.9)
    state, _ = sweep.run(sweep.init(member_keys([0, 1])), stack_hparams([old] * 2), 5)
    before = jax.tree.map(lambda a: a[1], jax.device_get(state))
    after = jax.tree.map(lambda a: a[1], jax.device_get(sweep.run(state, stack_hparams([old, new]), 1)[0]))
    # the step's shared batch (R1's share_batch), from the member's key and step
    _, _, k_shared = jax.random.split(jax.random.fold_in(before.key, 5), 3)
    k_data, k_noise = jax.random.split(k_shared)
    real, z = gan.sample_data(k_data, 64), gan.sample_noise(k_noise, 64)
    fake = gan.generate(before.g_params, z)
    grads = jax.grad(lambda d: gan.loss.discriminator(gan.discriminate(d, real)[0], gan.discriminate(d, fake)[0],
                                                      1.0))(before.d_params)
    adam = before.d_opt_state[0]
    t = int(adam.count) + 1

    def by_hand(p, g, mu, nu):
        mu, nu = 0.5 * mu + 0.5 * g, 0.9 * nu + 0.1 * g * g
        return p - 5e-3 * (mu / (1 - 0.5 ** t)) / (np.sqrt(nu / (1 - 0.9 ** t)) + 1e-8)

    expected = jax.tree.map(by_hand, before.d_params, grads, adam.mu, adam.nu)
    assert_trees_close(after.d_params, expected, rtol=2e-4, atol=1e-7)
    with_old = jax.tree.map(lambda p, g, mu, nu: p - 1e-3 * (0.9 * mu + 0.1 * g) / (1 - 0.9 ** t) / (
        np.sqrt((0.999 * nu + 0.001 * g * g) / (1 - 0.999 ** t)) + 1e-8), before.d_params, grads, adam.mu, adam.nu)
    assert not np.allclose(after.d_params["Dense_0"]["kernel"], with_old["Dense_0"]["kernel"], rtol=1e-3)


def test_make_train_is_pure_and_vmappable(tiny_cfg):
    train = make_train(tiny_cfg, 20)
    hp = stack_hparams([default_hparams("rmsprop")] * 2)
    states, metrics = jax.jit(jax.vmap(train))(hp, member_keys([0, 1]))
    assert metrics["d_loss"].shape == (2, 2)
    single, _ = jax.jit(train)(default_hparams("rmsprop").as_arrays(), jax.random.key(1))
    assert_trees_close(jax.tree.map(lambda a: a[1], states.g_params), single.g_params)


def test_custom_sampler_plugs_in(tiny_cfg):
    def circle(key, n):
        angle = jax.random.uniform(key, (n,), maxval=2 * jnp.pi)
        return jnp.stack([jnp.cos(angle), jnp.sin(angle), jnp.zeros(n)], -1)

    gan = GAN.from_config(tiny_cfg, circle, data_dim=3)
    state = gan.init(jax.random.key(0))
    state, metrics = gan.run(state, default_hparams("rmsprop").as_arrays(), 10)
    assert gan.generate(state.g_params, jnp.zeros((5, 2))).shape == (5, 3)
    assert np.isfinite(metrics["d_loss"]).all()


def test_custom_model_and_loss_plug_in(tiny_cfg):
    import dataclasses

    import flax.linen as nn

    from gan_jax.components.losses import GANLoss

    class TinyG(nn.Module):
        @nn.compact
        def __call__(self, z, train=False):
            return nn.Dense(2)(nn.tanh(nn.Dense(8)(z)))

    class TinyD(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            h = nn.tanh(nn.Dense(8)(x))
            return nn.Dense(1)(h)[..., 0], h

    wgan = GANLoss(lambda real, fake, real_label: fake.mean() - real.mean(), lambda fake: -fake.mean())
    gan = dataclasses.replace(GAN.from_config(tiny_cfg), generator=TinyG(), discriminator=TinyD(), loss=wgan)
    hp = stack_hparams([default_hparams("rmsprop")] * 2)
    sweep = Sweep(gan, 2)
    state, metrics = sweep.run(sweep.init(member_keys([0, 1])), hp, 20)
    assert sorted(p["kernel"].shape for p in state.g_params.values()) == [(2, 2, 8), (2, 8, 2)]
    # the WGAN critic loss is what the step logged: D(fake) - D(real) on its own batch, finite
    assert np.isfinite(metrics["d_loss"]).all() and metrics["d_loss"].shape == (2, 2)


def curve_error(gan, g_params, n=2000):
    """Median distance of generated points from y = 10 + x^2, in units of the data's y spread."""
    dataset = data.get_dataset("quadratic")
    x = dataset.to_raw(np.asarray(gan.generate(g_params, gan.sample_noise(jax.random.key(123), n))), True)
    return float(np.median(np.abs(x[:, 1] - (10 + x[:, 0] ** 2)))) / dataset.std[1]


def test_learns_the_quadratic_curve():
    gan = GAN.from_config(Config())
    hp = default_hparams("rmsprop").as_arrays()
    untrained = gan.init(jax.random.key(0))
    trained, _ = jax.jit(gan.run, static_argnums=2)(untrained, hp, 3000)
    before, after = curve_error(gan, untrained.g_params), curve_error(gan, trained.g_params)
    assert before > 0.3, before  # an untrained generator is far off the curve
    assert after < 0.08, after
    x = data.get_dataset("quadratic").to_raw(
        np.asarray(gan.generate(trained.g_params, gan.sample_noise(jax.random.key(1), 2000))), True)
    assert x[:, 0].min() < -35 and x[:, 0].max() > 35  # it covers the x range, not one point of it


@pytest.mark.slow
def test_every_seed_learns_the_curve_in_10k_steps():
    """The quick default of experiments.toy_quadratic (R1, 10,000 steps) fits the curve for every seed."""
    gan = GAN.from_config(Config())
    hp = stack_hparams([default_hparams("rmsprop")] * 8)
    sweep = Sweep(gan, 8)
    state, _ = sweep.run(sweep.init(member_keys(range(8))), hp, 10_000)
    errors = [curve_error(gan, jax.tree.map(lambda a: a[i], state.g_params)) for i in range(8)]
    assert max(errors) < 0.08, errors  # untrained generators score > 0.3


def test_diverging_member_is_frozen_flagged_and_isolated(tiny_cfg):
    hps = [default_hparams("rmsprop"), default_hparams("rmsprop", 1e30), default_hparams("rmsprop", 2e-3)]
    state, metrics = run_members(tiny_cfg, hps, [0, 1, 2], 40)
    diverged_at = np.asarray(state.diverged_at)
    assert diverged_at[0] == -1 and diverged_at[2] == -1
    assert 0 <= diverged_at[1] < 40
    frozen = jax.tree.map(lambda a: a[1], (state.g_params, state.d_params, state.g_opt_state, state.d_opt_state))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(frozen))  # its last finite state
    assert np.asarray(state.step)[1] == 40  # the step still advances
    if diverged_at[1] > 0:  # frozen exactly where an uninterrupted run of that many steps ends
        before, _ = run_single(tiny_cfg, hps[1], 1, int(diverged_at[1]))
        assert_trees_close(jax.tree.map(lambda a: a[1], state.g_params), before.g_params)
    healthy, _ = run_members(tiny_cfg, [hps[0], hps[2]], [0, 2], 40)
    for i, j in ((0, 0), (2, 1)):
        assert_trees_close(jax.tree.map(lambda a: a[i], state.g_params), jax.tree.map(lambda a: a[j], healthy.g_params))


def test_divergence_is_checked_once_per_logged_window(tiny_cfg):
    """SGD at lr 2 goes non-finite at step 12 (seed 1). `step` checks after every step, so it freezes the
    member at step 12; `run` checks each 10-step window at its end, so it freezes it at step 10, as a run
    of 10 steps left it. A healthy member's `run` equals its steps, and logs each window's first step."""
    gan = GAN.from_config(tiny_cfg.replace(optimizer="sgd"))
    run = jax.jit(gan.run, static_argnums=2)
    hp = default_hparams("sgd", 2.0).as_arrays()
    start = gan.init(jax.random.key(1))
    step, stepped, states = jax.jit(gan.step), start, []
    for _ in range(35):
        stepped, _ = step(stepped, hp)
        states.append(stepped)
    assert int(stepped.diverged_at) == 12 and int(stepped.step) == 35
    chex.assert_trees_all_equal(learned(stepped), learned(states[11]))  # as step 12 began
    state, _ = run(start, hp, 35)  # windows of 10, 10, 10 and 5 steps
    assert int(state.diverged_at) == 10 and int(state.step) == 35
    assert_trees_close(learned(state), learned(run(start, hp, 10)[0]))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(learned(state)))

    hp = default_hparams("sgd", 1e-3).as_arrays()
    start = gan.init(jax.random.key(1))
    stepped, metrics = start, []
    for _ in range(35):
        stepped, m = step(stepped, hp)
        metrics.append(m)
    state, logged = run(start, hp, 35)
    assert int(state.diverged_at) == int(stepped.diverged_at) == -1
    assert_trees_close(learned(state), learned(stepped))
    for name, values in logged.items():
        np.testing.assert_allclose(values, [metrics[i][name] for i in (0, 10, 20, 30)], rtol=1e-5, err_msg=name)
    _, first = gan.update(start, hp)  # an unlooped update computes its gradient norms directly
    for name in ("d_grad_norm", "g_grad_norm"):
        assert float(first[name]) > 0
        np.testing.assert_allclose(logged[name][0], first[name], rtol=1e-5, err_msg=name)


def test_r1_gradient_penalty_matches_hand_computed_value(tiny_cfg):
    """A linear D, logit = w.x + b, has grad_x logit = w for every x, so the penalty is gp/2 * |w|^2."""
    from gan_jax.core.config import DiscriminatorConfig

    cfg = tiny_cfg.replace(discriminator=DiscriminatorConfig(hidden=(), feature_dim=None), gradient_penalty="r1")
    gan = GAN.from_config(cfg)
    hp = default_hparams("rmsprop", gp_weight=0.0).as_arrays()
    state = gan.init(jax.random.key(0))
    real, z = gan.sample_data(jax.random.key(1), 64), gan.sample_noise(jax.random.key(2), 64)
    _, plain = gan.d_update(state, hp, real, z, jax.random.key(3))
    _, penalised = gan.d_update(state, hp.replace(gp_weight=jnp.float32(10.0)), real, z, jax.random.key(3))
    w = np.asarray(state.d_params["logit"]["kernel"])
    expected = float(plain["d_loss"]) + 10.0 / 2 * float(np.sum(w ** 2))
    assert float(penalised["d_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(penalised["d_loss"]) > float(plain["d_loss"]) + 1e-3


def test_gp_weight_without_the_penalty_is_refused(tiny_cfg):
    from gan_jax.errors import ConfigError
    from gan_jax.core.validate import validate

    with pytest.raises(ConfigError, match="there is no penalty"):
        validate(tiny_cfg, default_hparams("rmsprop", gp_weight=1.0))


def test_generator_average_is_the_hand_computed_ema_and_leaves_training_unchanged(tiny_cfg):
    """g_ema_t = d * g_ema_{t-1} + (1 - d) * g_params_t, starting from the initial G; training itself
    (G, D, metrics) is the same whatever the decay, and decay 0 makes g_ema G itself, bitwise."""
    gan = GAN.from_config(tiny_cfg)
    step = jax.jit(gan.step)
    runs = {}
    for decay in (0.0, 0.9):
        hp = default_hparams("rmsprop", ema_decay=decay).as_arrays()
        state = gan.init(jax.random.key(0))
        expected = jax.tree.map(np.asarray, state.g_params)
        for _ in range(5):
            state, metrics = step(state, hp)
            expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * np.asarray(p), expected, state.g_params)
        runs[decay] = (state, metrics, expected)
    (plain, plain_metrics, _), (averaged, averaged_metrics, expected) = runs[0.0], runs[0.9]
    chex.assert_trees_all_equal(plain.g_ema, plain.g_params)
    chex.assert_trees_all_equal((plain.g_params, plain.d_params, plain_metrics),
                                (averaged.g_params, averaged.d_params, averaged_metrics))
    assert_trees_close(averaged.g_ema, expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(averaged.g_ema["Dense_0"]["kernel"], averaged.g_params["Dense_0"]["kernel"])


def test_sweep_samples_come_from_the_generator_average(tiny_cfg):
    gan = GAN.from_config(tiny_cfg)
    sweep = Sweep(gan, 2)
    hp = stack_hparams([default_hparams("rmsprop", ema_decay=d) for d in (0.0, 0.99)])
    state, _ = sweep.run(sweep.init(member_keys([0, 1])), hp, 20)
    state = jax.device_get(state)
    z = gan.sample_noise(jax.random.key(9), 16)
    samples = np.asarray(sweep.generate(state, z))
    for i in range(2):
        member = jax.tree.map(lambda a: a[i], state)
        np.testing.assert_allclose(samples[i], gan.generate(member.g_ema, z), rtol=1e-5, atol=1e-6)
    assert not np.allclose(samples[1], gan.generate(jax.tree.map(lambda a: a[1], state.g_params), z), atol=1e-3)


def test_standing_stats_are_the_sampling_generators_own():
    """Batch norm's averages for sampling are recomputed for the network that samples (`g_ema`), whatever
    averages the run carried: for G's first layer, h = z W with z ~ N(0, I), each channel's mean is 0 and its
    variance the mean over positions of |W[:, position, channel]|^2, computed here by hand."""
    from gan_jax.core.config import DiscriminatorConfig, GeneratorConfig
    from gan_jax.core.streams import stream_key

    cfg = Config(architecture="dcgan", image_shape=(28, 28, 1), latent_dim=8, noise="normal",
                 generator=GeneratorConfig(hidden=(8, 4), activation="relu", output_activation="tanh"),
                 discriminator=DiscriminatorConfig(hidden=(4, 8), feature_dim=None))
    gan = GAN.from_config(cfg, lambda key, n: jax.random.normal(key, (n, 784)), data_dim=784)  # never sampled
    state = gan.init(jax.random.key(0))
    g_ema = jax.tree.map(lambda p: 3 * p, state.g_params)  # another network than the one the averages came from
    wrong = jax.tree.map(lambda a: a + 2.0, state.g_stats)  # averages far from g_ema's activations
    stats = jax.jit(gan.standing_stats)(g_ema, wrong, stream_key("standing_stats"))["batch_stats"]["BatchNorm_0"]
    kernel = np.asarray(g_ema["Dense_0"]["kernel"]).reshape(8, 7 * 7, 8)  # (latent, position, channel)
    np.testing.assert_allclose(stats["var"], (kernel ** 2).sum(0).mean(0), rtol=0.05)
    np.testing.assert_allclose(stats["mean"], 0.0, atol=0.05 * np.sqrt(np.asarray(stats["var"])).max())
    assert not gan.standing_stats(g_ema, {}, stream_key("standing_stats"))  # no batch norm: nothing to do
