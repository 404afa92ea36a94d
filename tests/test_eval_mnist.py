"""MNIST evaluation: the shipped classifier, its metrics on synthetic inputs and on the real held-out images,
and the training script's command line."""
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from conftest import REPO, run_main
from gan_jax.data import mnist as mnist_data
from gan_jax.metrics import mnist as ev

SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-test"
needs_data = pytest.mark.skipif(not SHARED_MNIST.is_dir(),
                                reason=f"real MNIST test split not found at {SHARED_MNIST}")


@pytest.fixture(scope="module")
def params():
    return ev.load_classifier()


def load_heldout():
    """The held-out real images in [0, 1] [2000, 784] and their labels."""
    data = mnist_data.load("mnist", "test", SHARED_MNIST)
    _, (images, labels) = ev.heldout_split(data.images, data.labels)
    return ev.to_unit(images), labels


@pytest.fixture(scope="module")
def heldout():
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST test split not found at {SHARED_MNIST}")
    return load_heldout()


@pytest.fixture(scope="module")
def heldout_logits(params, heldout):
    logits, _ = ev.classify(params, heldout[0])
    return logits


def noise_images(n=ev.EVAL_SAMPLES, seed=0):
    return jax.random.uniform(jax.random.key(seed), (n, 784))


# --- the shipped classifier ----------------------------------------------------------------------------------

def test_shipped_file_matches_checksum_and_loads(params):
    raw = ev.CLASSIFIER_FILE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == ev.CLASSIFIER_SHA256
    assert len(raw) < 1_000_000
    expected = jax.eval_shape(ev.init_params, jax.random.key(0))
    assert jax.tree.structure(params) == jax.tree.structure(expected)
    assert jax.tree.all(jax.tree.map(lambda p, e: p.shape == e.shape, params, expected))


def test_corrupted_copy_raises_error_naming_file_and_fix(tmp_path):
    raw = bytearray(ev.CLASSIFIER_FILE.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy = tmp_path / "mnist_classifier.msgpack"
    copy.write_bytes(bytes(raw))
    with pytest.raises(ev.ClassifierError, match=rf"{copy}.*sha256.*expected {ev.CLASSIFIER_SHA256}.*"
                                                 r"python -m experiments.train_classifier"):
        ev.load_classifier(copy)


def test_missing_or_malformed_file_raises_clear_error(tmp_path):
    with pytest.raises(ev.ClassifierError, match="not found; restore it"):
        ev.load_classifier(tmp_path / "absent.msgpack")
    (tmp_path / "junk.msgpack").write_bytes(b"not msgpack params")
    with pytest.raises(ev.ClassifierError, match="cannot be read as Classifier params"):
        ev.load_classifier(tmp_path / "junk.msgpack", sha256=None)


@needs_data
def test_heldout_accuracy_reproduced(params, heldout):
    assert ev.accuracy(params, *heldout) >= 0.985


def test_classify_accepts_flat_and_square_images_in_chunks(params):
    images = noise_images(7)
    flat, flat_feat = ev.classify(params, images)
    square, _ = ev.classify(params, images.reshape(7, 28, 28))
    chunked, chunked_feat = ev.classify(params, images, chunk=3)  # 3 chunks, the last one padded
    assert flat.shape == (7, ev.NUM_CLASSES) and flat_feat.shape == (7, ev.FEATURES)
    np.testing.assert_allclose(square, flat, atol=1e-5)
    np.testing.assert_allclose(chunked, flat, atol=1e-5)
    np.testing.assert_allclose(chunked_feat, flat_feat, atol=1e-5)


def test_classify_rejects_uint8_and_bad_shapes(params):
    with pytest.raises(TypeError, match="divide uint8 pixels by 255"):
        ev.classify(params, np.zeros((2, 784), np.uint8))
    with pytest.raises(ValueError, match=r"\[n, 784\] or \[n, 28, 28\]"):
        ev.classify(params, np.zeros((2, 32, 32), np.float32))


def test_heldout_split_is_every_fifth_image():
    images, labels = np.arange(10_000), np.arange(10_000) % 10
    (train, train_labels), (held, held_labels) = ev.heldout_split(images, labels)
    assert len(train) == 8000 and len(held) == ev.HELDOUT_SIZE == 2000
    np.testing.assert_array_equal(held, np.arange(4, 10_000, 5))
    np.testing.assert_array_equal(held_labels, held % 10)
    assert not set(train) & set(held)
    with pytest.raises(ValueError, match="at least 5"):
        ev.heldout_split(images[:3], labels[:3])


# --- Frechet distance ----------------------------------------------------------------------------------------

def correlated_features(seed, n=200, d=8, shift=0.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d))
    return (rng.normal(size=(n, d)) @ mixing + shift).astype(np.float32)


def scipy_frechet(a, b):
    a, b = np.float64(a), np.float64(b)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b)
            - 2 * np.trace(scipy.linalg.sqrtm(cov_a @ cov_b).real))


def test_frechet_of_a_set_with_itself_is_zero():
    a = correlated_features(0)
    assert abs(float(ev.frechet_distance(a, a))) < 1e-3 * np.trace(np.cov(a, rowvar=False))


def test_frechet_matches_scipy_and_is_symmetric():
    a, b = correlated_features(0), correlated_features(1, n=300, shift=0.5)
    expected = scipy_frechet(a, b)
    assert float(ev.frechet_distance(a, b)) == pytest.approx(expected, rel=1e-3)
    assert float(ev.frechet_distance(b, a)) == pytest.approx(expected, rel=1e-3)


def test_frechet_of_a_mean_shift_is_its_squared_length():
    a = correlated_features(0)
    for shift in (0.5, 1.0, 2.0):  # same covariance, so the distance is |shift|^2 * d exactly
        assert float(ev.frechet_distance(a, a + shift)) == pytest.approx(shift ** 2 * a.shape[1], rel=1e-3)


def test_frechet_vmaps_over_a_leading_axis():
    a = jnp.stack([correlated_features(0), correlated_features(1)])
    b = jnp.stack([correlated_features(2, shift=1.0), correlated_features(3)])
    batched = jax.jit(jax.vmap(ev.frechet_distance))(a, b)
    singles = [float(ev.frechet_distance(a[i], b[i])) for i in range(2)]
    np.testing.assert_allclose(batched, singles, rtol=1e-4)


@needs_data
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # dead ReLU units: singular covariances
def test_frechet_on_real_features_is_precise(params, heldout):
    _, features = ev.classify(params, heldout[0])
    assert abs(float(ev.frechet_distance(features, features))) < 0.01  # trace of the covariance is ~1,100
    half = len(features) // 2
    expected = scipy_frechet(features[:half], features[half:])
    assert float(ev.frechet_distance(features[:half], features[half:])) == pytest.approx(expected, rel=1e-3)


# --- classifier score and class coverage ---------------------------------------------------------------------

def test_classifier_score_of_synthetic_logits():
    confident = 30.0 * jnp.eye(10)[jnp.arange(1000) % 10]  # balanced, certain predictions
    assert float(ev.classifier_score(confident)) == pytest.approx(10.0, rel=1e-3)
    assert float(ev.classifier_score(jnp.tile(jnp.arange(10.0), (100, 1)))) == pytest.approx(1.0, abs=1e-5)


@needs_data
def test_classifier_score_real_one_image_and_noise(params, heldout, heldout_logits):
    real = float(ev.classifier_score(heldout_logits))
    one_logits, _ = ev.classify(params, np.repeat(heldout[0][:1], 500, axis=0))
    noise_logits, _ = ev.classify(params, noise_images())
    noise = float(ev.classifier_score(noise_logits))
    assert real >= 9.5  # 9.75 for the shipped classifier
    assert float(ev.classifier_score(one_logits)) == pytest.approx(1.0, abs=1e-3)
    assert noise < 3.0 and real - noise > 6.0  # noise scores 1.30


def test_class_coverage_threshold_and_kl():
    labels = jnp.concatenate([jnp.repeat(jnp.arange(5), 196), jnp.full(20, 5)])  # 5 classes; class 5 at 2%
    m = ev.class_coverage(jax.nn.one_hot(labels, 10), min_share=0.02)
    assert float(m["classes_covered"]) == 6
    assert float(ev.class_coverage(jax.nn.one_hot(labels, 10), min_share=0.03)["classes_covered"]) == 5
    balanced = ev.class_coverage(jax.nn.one_hot(jnp.arange(1000) % 10, 10))
    assert float(balanced["classes_covered"]) == 10 and float(balanced["class_kl"]) == pytest.approx(0, abs=1e-6)


@needs_data
def test_class_coverage_real_and_one_image(params, heldout, heldout_logits):
    real = ev.class_coverage(heldout_logits)
    assert float(real["classes_covered"]) == 10 and float(real["class_kl"]) < 0.02
    one_logits, _ = ev.classify(params, np.repeat(heldout[0][:1], 500, axis=0))
    one = ev.class_coverage(one_logits)
    assert float(one["classes_covered"]) == 1 and float(one["class_kl"]) == pytest.approx(np.log(10), rel=1e-5)


# --- metrics_fn and the real ceiling -------------------------------------------------------------------------

def test_metrics_fn_vmaps_over_members(params):
    fn = ev.metrics_fn(params, noise_images(300, seed=1), n_samples=600)
    members = jnp.stack([noise_images(600, seed=2), 0.5 * noise_images(600, seed=3)])  # > CHUNK: lax.map
    batched = jax.jit(jax.vmap(fn))(members)
    assert set(batched) == {"classifier_score", "frechet_distance", "classes_covered", "class_kl", "kid", "kid_std",
                            "precision", "recall", "density", "coverage"}
    for i in range(2):
        single = jax.jit(fn)(members[i])
        for name, value in single.items():
            np.testing.assert_allclose(batched[name][i], value, rtol=1e-4, atol=1e-5, err_msg=name)  # KID: a small
            # difference of large kernel sums, so float32 rounding shows in absolute terms


@needs_data
def test_real_reference_is_the_ceiling(params, heldout):
    data = mnist_data.load("mnist", "test", SHARED_MNIST)
    (train, _), _ = ev.heldout_split(data.images, data.labels)
    matched = ev.real_reference(params, heldout[0], ev.to_unit(train))  # 2,000 vs 2,000: FID 9.4
    halves = ev.real_reference(params, heldout[0])  # 1,000 vs 1,000: FID 19.9
    noise = jax.jit(ev.metrics_fn(params, heldout[0], n_samples=len(noise_images())))(noise_images())  # FID 1263
    for ref in (matched, halves):
        assert ref["classifier_score"] >= 9.5 and ref["classes_covered"] == 10 and ref["class_kl"] < 0.02
        assert 0 < ref["frechet_distance"] < 40 and 20 * ref["frechet_distance"] < float(noise["frechet_distance"])
    assert matched["frechet_distance"] < halves["frechet_distance"]  # more samples, less bias


# --- the training script's command line ----------------------------------------------------------------------

def run_script(*args):
    return run_main("experiments.train_classifier", *args)


def test_cli_help():
    out = run_script("--help")
    assert out.returncode == 0
    for flag in ("--split", "--data-dir", "--epochs", "--batch-size", "--lr", "--seed", "--out"):
        assert flag in out.stdout, flag


@pytest.mark.parametrize("flags, message", [
    (["--data-dir", "/nonexistent/mnist"], "--data-dir /nonexistent/mnist does not exist"),
    (["--epochs", "0"], "--epochs"),
    (["--split", "validation"], "--split"),
])
def test_cli_bad_argument_exits_2_with_one_line(tmp_path, flags, message):
    out = run_script(*flags, "--out", str(tmp_path / "w.msgpack"))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    assert not (tmp_path / "w.msgpack").exists()


@needs_data
@pytest.mark.slow
def test_training_reaches_the_required_accuracy(tmp_path):
    """The default run (about 75 s on 2 CPU cores) reproduces a classifier of the shipped quality."""
    out = run_script("--data-dir", str(SHARED_MNIST), "--out", str(tmp_path / "w.msgpack"))
    assert out.returncode == 0, out.stderr
    accuracy = float(out.stdout.split("held-out accuracy: ")[1].split("%")[0]) / 100
    digest = out.stdout.split("sha256: ")[1].split()[0]
    assert accuracy >= 0.985 and digest == ev.sha256_of(tmp_path / "w.msgpack")
    assert ev.accuracy(ev.load_classifier(tmp_path / "w.msgpack", sha256=digest),
                       *load_heldout()) == pytest.approx(accuracy, abs=1e-6)


@needs_data
@pytest.mark.slow
def test_too_little_training_exits_1_and_writes_nothing(tmp_path):
    out = run_script("--data-dir", str(SHARED_MNIST), "--epochs", "1", "--out", str(tmp_path / "w.msgpack"))
    assert out.returncode == 1 and "below the required 98.5%; nothing written" in out.stderr
    assert not (tmp_path / "w.msgpack").exists()
