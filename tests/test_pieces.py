"""A researcher's own pieces: samplers checked once, one line per mistake; custom sampler, loss, penalty
and metric recorded in config.json by name and code hash; a resume with another piece refused; an update
rule as a replaceable piece, checked against a hand-written step; learned state declared by TrainState
itself; user-named random streams."""
import dataclasses
import hashlib
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gan_jax as gj
from conftest import run_main
from gan_jax.core import pieces, streams
from gan_jax.core.gan import TrainState

CFG = gj.Config(batch_size=32, log_every=10)


def swiss_roll(key, n):
    t = 1.5 * jnp.pi * (1 + 2 * jax.random.uniform(key, (n,)))
    return jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], -1) / 10


def drift(d_real, d_fake, real, fake, key):
    """A drift penalty (Karras et al. 2018): D's squared logits on real data."""
    return jnp.mean(d_real(real) ** 2)


LSGAN = gj.GANLoss(lambda real, fake, real_label: jnp.mean((real - 0.5) ** 2) + jnp.mean((fake + 0.5) ** 2),
                   lambda fake: jnp.mean((fake - 0.5) ** 2), label_smoothing=False)


@pytest.mark.parametrize("sampler, says", [
    (lambda k, n: jax.random.normal(k, (n, 2), jnp.float16), "returns float16 samples; return float32"),
    (lambda k, n: jax.random.randint(k, (n, 2), 0, 9), "returns int32 samples; return floats"),
    (lambda k, n: jax.random.normal(k, (n - 1, 2)), "returns 7 rows when asked for n=8"),
    (lambda k, n: jax.random.normal(k, (n + 1, 2)), "returns 9 rows when asked for n=8"),
    (lambda k, n: jax.random.normal(k, (n, 3)), "width 3 but the GAN's data_dim is 2"),
    (lambda k, n: jax.random.normal(k, (n, 2, 1)), "returns shape (8, 2, 1)"),
    (lambda k, n: jnp.asarray(np.random.default_rng().normal(size=(n, 2)), jnp.float32), "the same batch for two"),
    (lambda k, n: (jax.random.normal(k, (n, 2)), jnp.zeros(n, jnp.int32)), "returns a tuple, but the GAN is unc"),
    (lambda k, n: jnp.ones((n, 2)) @ jnp.ones((3, 2)), "calling sampler(key, 8) failed: TypeError"),
    (lambda k, n: jax.random.normal(k, (n, 2)) / 0, "returns non-finite values"),
])
def test_each_sampler_mistake_is_one_line(sampler, says):
    with pytest.raises(gj.ConfigError) as e:
        gj.GAN.from_config(CFG, sampler, 2)
    assert says in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("`sampler`")


def test_a_conditional_sampler_must_return_int_labels():
    cfg = CFG.replace(num_classes=3)
    bad = lambda k, n: (jax.random.normal(k, (n, 2)), jax.random.normal(k, (n,)))  # noqa: E731
    with pytest.raises(gj.ConfigError, match="int labels"):
        gj.GAN.from_config(cfg, bad, 2)
    good = lambda k, n: (jax.random.normal(k, (n, 2)), jax.random.randint(k, (n,), 0, 3))  # noqa: E731
    gj.GAN.from_config(cfg, good, 2)


def swiss_roll_gan(loss=LSGAN):
    gan = gj.GAN.from_config(CFG, swiss_roll, 2)
    return dataclasses.replace(gan, loss=loss, penalty=drift)


def test_a_custom_run_records_its_own_pieces_and_refuses_a_resume_with_another(tmp_path):
    hp = gj.default_hparams("adam", 1e-3, gp_weight=0.1)  # weights the plugged-in penalty; config says "none"
    members = gj.grid(range(2), hp)
    z = jax.random.normal(gj.stream_key("my_metric"), (64, 2))

    def spread(samples):
        return {"spread": jnp.std(samples)}

    options = gj.RunOptions(20, snapshot_every=10, checkpoint_every=10, progress=False)
    gj.run(swiss_roll_gan(), members, tmp_path / "roll", options, evaluate=gj.evaluator(z, spread))
    samples = np.load(tmp_path / "roll" / "samples.npz")  # a library run writes them too: the evaluation's z
    assert samples["samples"].shape == (2, 64, 2) and samples["samples"].dtype == np.float32
    config = json.loads((tmp_path / "roll" / "config.json").read_text())
    ran = config["pieces"]
    assert ran["sampler"]["name"] == "test_pieces:swiss_roll" and ran["penalty"]["name"] == "test_pieces:drift"
    assert ran["loss"]["name"] == "gan_jax.components.losses:GANLoss" and len(ran["loss"]["sha256"]) == 64
    assert ran["metrics"]["name"].endswith("spread") and ran["update_rule"] == {"name": "alternating"}
    # config.json names what ran, not the preset's names for what did not
    assert config["config"]["data"] == "test_pieces:swiss_roll" and config["config"]["standardize"] is None
    assert config["config"]["gradient_penalty"] == "test_pieces:drift"
    assert config["config"]["loss"] == ran["loss"]["name"]
    other = gj.GANLoss(LSGAN.discriminator, lambda fake: jnp.mean(fake ** 2), label_smoothing=False)
    resume = dataclasses.replace(options, steps=30, resume=True)
    with pytest.raises(gj.CheckpointError) as e:
        gj.run(swiss_roll_gan(other), members, tmp_path / "roll", resume, evaluate=gj.evaluator(z, spread))
    assert "the run's loss was" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "roll" / "checkpoints" / "30").exists()
    gj.run(swiss_roll_gan(), members, tmp_path / "roll", resume, evaluate=gj.evaluator(z, spread))  # same: resumes


def test_own_images_are_recorded_as_the_runs_data_and_a_resume_with_other_images_is_refused(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (200, 8, 8, 1), dtype=np.uint8)
    r2 = gj.presets.get("r2")
    cfg = r2.config.replace(image_shape=(8, 8, 1), batch_size=16, log_every=10)  # the preset says data "mnist"
    gan = lambda images: gj.GAN.from_config(cfg, gj.image_sampler(images, "tanh"), 64)  # noqa: E731
    members, options = gj.grid(range(2), r2.hparams), gj.RunOptions(10, checkpoint_every=10, progress=False)
    gj.run(gan(images), members, tmp_path / "own", options)
    config = json.loads((tmp_path / "own" / "config.json").read_text())
    digest = hashlib.sha256(b"(200, 8, 8, 1) uint8 tanh" + images.tobytes()).hexdigest()  # written here, by hand
    assert config["pieces"]["sampler"] == {"name": "image_sampler[200x8x8x1]", "sha256": digest}
    assert config["config"]["data"] == "image_sampler[200x8x8x1]"
    other = images.copy()
    other[0, 0, 0, 0] ^= 1  # one bit of one pixel
    with pytest.raises(gj.CheckpointError) as e:
        gj.run(gan(other), members, tmp_path / "own", dataclasses.replace(options, steps=20, resume=True))
    assert f"the run's sampler was image_sampler[200x8x8x1] (sha256 {digest[:12]}) and is now" in str(e.value)
    assert not (tmp_path / "own" / "checkpoints" / "20").exists()
    run = gj.load(tmp_path / "own")  # without its GAN: G's samples, and a stand-in that refuses to be its data
    assert run.generate(0).shape == (1000, 64)
    with pytest.raises(gj.ConfigError, match=r"loaded without its data \(image_sampler\[200x8x8x1\]\)"):
        run.gan.sample_data(jax.random.key(0), 4)
    task_sampler = gj.image_sampler(images, "tanh", record_data=False)  # a task records its data itself
    assert pieces.describe(task_sampler) == {"name": "gan_jax.data.mnist:image_sampler.<locals>.sample"}


@pytest.mark.slow  # a duplicate: the test above refuses a resume with another loss (one line), and the CLI's refusal
# of a changed config is one line on stderr, exit 2 (test_resume's shape-changing resume)
def test_a_script_refuses_a_resume_with_another_loss_in_one_line(tmp_path):
    common = ["--seeds", "1", "--steps", "20", "--snapshot-every", "10", "--checkpoint-every", "10", "--no-progress",
              "--no-figures", "--out", tmp_path / "run", "--batch-size", "32"]
    assert run_main("experiments.train", "--task", "toy", *common).returncode == 0
    again = run_main("experiments.train", "--task", "toy", *common, "--resume", "--loss", "hinge")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "the run's loss was non_saturating and is now hinge" in again.stderr


def test_pieces_are_named_and_fingerprinted_by_their_code():
    assert pieces.describe(swiss_roll) == {"name": "test_pieces:swiss_roll", "sha256": pieces.fingerprint(swiss_roll)}
    assert pieces.describe(gj.losses.LOSSES["hinge"]) == {"name": "gan_jax.components.losses:GANLoss"}
    assert pieces.fingerprint(LSGAN) != pieces.fingerprint(LSGAN._replace(generator=lambda fake: -fake.mean()))
    assert pieces.name_of(pieces.named(lambda k, n: k, "mine")) == "mine"
    assert pieces.name_of(gj.GANLoss(len, len, name="my_loss")) == "my_loss"


def test_an_update_rule_is_one_function_and_simultaneous_matches_a_hand_written_step():
    gan = gj.GAN.from_config(CFG.replace(optimizer="adam"), update_rule=gj.updates.simultaneous)
    hp = gj.default_hparams("adam", 1e-2).as_arrays()
    state = gan.init(jax.random.key(3))
    stepped, metrics = gan.update(state, hp)

    # by hand: both gradients at the step's starting parameters, on the step's one batch
    _, _, k_batch = jax.random.split(jax.random.fold_in(state.key, state.step), 3)
    k_data, k_noise = jax.random.split(k_batch)
    real, z = gan.sample_data(k_data, 32), jax.random.uniform(k_noise, (32, 2), minval=-1, maxval=1)
    G = lambda g: gan.generator.apply({"params": g}, z)  # noqa: E731
    D = lambda d, x: gan.discriminator.apply({"params": d}, x)[0]  # noqa: E731
    d_loss = lambda d: jnp.mean(optax.sigmoid_binary_cross_entropy(D(d, real), jnp.ones(32))  # noqa: E731
                                + optax.sigmoid_binary_cross_entropy(D(d, G(state.g_params)), jnp.zeros(32)))
    g_loss = lambda g: jnp.mean(optax.sigmoid_binary_cross_entropy(D(state.d_params, G(g)), jnp.ones(32)))  # noqa
    adam = optax.adam(1e-2, b1=0.9, b2=0.999)
    d_new = optax.apply_updates(state.d_params, adam.update(jax.grad(d_loss)(state.d_params), adam.init(state.d_params),
                                                           state.d_params)[0])
    g_new = optax.apply_updates(state.g_params, adam.update(jax.grad(g_loss)(state.g_params), adam.init(state.g_params),
                                                           state.g_params)[0])
    chex.assert_trees_all_close(stepped.d_params, d_new, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(stepped.g_params, g_new, rtol=1e-5, atol=1e-6)
    assert float(metrics["d_loss"]) == pytest.approx(float(d_loss(state.d_params)), rel=1e-5)
    assert int(stepped.step) == 1 and gan.pieces()["update_rule"] == {"name": "simultaneous"}
    # the shipped rule lets G see the updated D: a different step, so the comparison above can fail
    alternating = dataclasses.replace(gan, update_rule=gj.updates.alternating).update(state, hp)[0]
    assert not np.allclose(jax.tree.leaves(alternating.g_params)[0], jax.tree.leaves(g_new)[0], atol=1e-6)


def test_train_state_declares_its_learned_fields():
    fields = {f.name for f in dataclasses.fields(TrainState)}
    state = gj.GAN.from_config(CFG).init(jax.random.key(0))
    assert set(state.learned()) == fields - {"key", "step", "diverged_at"}


def test_users_name_their_own_random_streams():
    data = lambda name: np.asarray(jax.random.key_data(streams.stream_key(name)))  # noqa: E731
    assert np.array_equal(data("my_metric"), data("my_metric"))
    named = {tuple(data(n)) for n in ("my_metric", "my_other_metric", *streams.STREAMS)}
    assert len(named) == 2 + len(streams.STREAMS)
    assert streams.stream_id("my_metric") >= streams.USER_STREAMS > max(streams.STREAMS.values())
    with pytest.raises(ValueError):
        streams.stream_key("")


def test_run_checks_a_sampler_replaced_by_hand_and_runs_shorter_than_a_logged_window(tmp_path):
    gan = gj.GAN.from_config(CFG.replace(log_every=100))
    wide = dataclasses.replace(gan, sample_data=lambda k, n: jax.random.normal(k, (n, 3)))
    with pytest.raises(gj.ConfigError, match="width 3 but the GAN's data_dim is 2"):
        gj.run(wide, gj.grid(range(1)), tmp_path / "wide", gj.RunOptions(10, progress=False))
    assert not (tmp_path / "wide").exists()
    result = gj.run(gan, gj.grid(range(1)), tmp_path / "short", gj.RunOptions(10, progress=False))
    assert result.summary["steps"] == 10  # 10 steps of a 100-step logging window: one short chunk
