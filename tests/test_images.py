"""Your own images: the .npz / PNG-folder loader and its refusals, DCGAN widths that follow the image shape,
image-set metrics on random or trained features, the classifier's files, and the training script's --data."""
import dataclasses
import hashlib
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from PIL import Image

from conftest import run_main
from gan_jax import presets
from gan_jax.components.models import dcgan_widths
from gan_jax.core.gan import GAN
from gan_jax.data import images as loader
from gan_jax.data import mnist as mnist_data
from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import images as im
from gan_jax.metrics import mnist as mnist_metrics


def write_pngs(folder, arrays, names):
    """uint8 arrays [h, w] or [h, w, c] as PNG files `folder/name` (name may hold a subfolder)."""
    for array, name in zip(arrays, names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(array, np.uint8)).save(folder / name)


def one_line_error(fn, *args):
    with pytest.raises(DataError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- loading -------------------------------------------------------------------------------------------------

def test_npz_round_trip_and_grayscale_gets_a_channel(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 6, 4, 3), np.uint8), np.array([2, 0, 1, 1, 0], np.int64)
    np.savez(tmp_path / "rgb.npz", images=images, labels=labels)
    data = loader.load_images(tmp_path / "rgb.npz")
    np.testing.assert_array_equal(data.images, images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.labels.dtype == np.int32
    np.savez(tmp_path / "gray.npz", images=images[..., 0])
    gray = loader.load_images(tmp_path / "gray.npz")
    assert gray.images.shape == (5, 6, 4, 1) and gray.labels is None
    np.testing.assert_array_equal(gray.images[..., 0], images[..., 0])


def test_flat_png_folder_is_sorted_by_name_without_labels(tmp_path):
    arrays = [np.full((3, 5), v, np.uint8) for v in (30, 10, 20)]
    write_pngs(tmp_path, arrays, ["c.png", "a.PNG", "b.png"])
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "classifier.msgpack").write_bytes(b"ignored")
    (tmp_path / ".hidden.png").write_bytes(b"ignored too")
    data = loader.load_images(tmp_path)
    assert data.images.shape == (3, 3, 5, 1) and data.labels is None
    assert data.images[:, 0, 0, 0].tolist() == [10, 20, 30]  # a, b, c
    assert loader.class_names(tmp_path) == ()


def test_class_subfolders_give_sorted_labels(tmp_path):
    rng = np.random.default_rng(1)
    arrays = rng.integers(0, 256, (5, 4, 4, 3), np.uint8)
    names = ["zebra/1.png", "cat/b.png", "cat/a.png", "dog/x.png", "zebra/0.png"]
    write_pngs(tmp_path, arrays, names)
    data = loader.load_images(tmp_path)
    # sorted paths: cat/a, cat/b, dog/x, zebra/0, zebra/1 -> classes cat 0, dog 1, zebra 2
    assert data.labels.tolist() == [0, 0, 1, 2, 2]
    np.testing.assert_array_equal(data.images, arrays[[2, 1, 3, 4, 0]])
    assert loader.class_names(tmp_path) == ("cat", "dog", "zebra")


def test_a_png_beside_the_subfolders_means_no_labels(tmp_path):
    write_pngs(tmp_path, [np.zeros((4, 4), np.uint8)] * 3, ["a/1.png", "b/1.png", "top.png"])
    data = loader.load_images(tmp_path)
    assert len(data.images) == 3 and data.labels is None and loader.class_names(tmp_path) == ()


def test_opaque_alpha_is_dropped_and_transparency_refused(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 256, (4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    write_pngs(tmp_path / "opaque", [rgba], ["a.png"])
    data = loader.load_images(tmp_path / "opaque")
    np.testing.assert_array_equal(data.images[0], rgba[..., :3])
    rgba[0, 0, 3] = 0
    write_pngs(tmp_path / "clear", [rgba], ["a.png"])
    assert "transparent pixels" in one_line_error(loader.load_images, tmp_path / "clear")


def test_bilevel_and_palette_pngs_read_as_gray_and_rgb(tmp_path):
    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "bits.png")
    assert loader.load_images(tmp_path).images[..., 0].tolist() == [(np.eye(4) * 255).tolist()]
    rgb = np.random.default_rng(3).integers(0, 256, (4, 4, 3), np.uint8)
    folder = tmp_path / "palette"
    folder.mkdir()
    Image.fromarray(rgb).quantize(256).save(folder / "p.png")
    palette_rgb = np.asarray(Image.open(folder / "p.png").convert("RGB"))
    np.testing.assert_array_equal(loader.load_images(folder).images[0], palette_rgb)


def _npz(tmp_path, **arrays):
    np.savez(tmp_path / "x.npz", **arrays)
    return tmp_path / "x.npz"


def _corrupt_npz(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 not really a zip")
    return tmp_path / "x.npz"


def _pngs(tmp_path, arrays, names=None):
    write_pngs(tmp_path, arrays, names or [f"{i}.png" for i in range(len(arrays))])
    return tmp_path


def _corrupt_png(tmp_path):
    _pngs(tmp_path, [np.zeros((4, 4), np.uint8)] * 2)
    (tmp_path / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return tmp_path


def _truncated_png(tmp_path):
    _pngs(tmp_path, [np.random.default_rng(0).integers(0, 256, (32, 32), np.uint8)])
    raw = (tmp_path / "0.png").read_bytes()
    (tmp_path / "0.png").write_bytes(raw[:len(raw) // 2])
    return tmp_path


def _file(tmp_path, name, save=None):
    """A file `name` in tmp_path: text, or what `save(path)` writes."""
    path = tmp_path / name
    path.write_text("1,2") if save is None else save(path)
    return path if save is None else tmp_path


U8 = np.zeros((4, 5, 5, 1), np.uint8)
BAD_INPUTS = {
    "missing": (lambda t: t / "absent.npz", r"absent.npz does not exist; give an .npz file"),
    "not npz": (lambda t: _file(t, "x.csv"), r"x.csv is neither an .npz file nor"),
    "corrupt npz": (_corrupt_npz, r"x.npz cannot be read as an .npz file \(.*\); write it with numpy.savez"),
    "no images": (lambda t: _npz(t, pixels=U8), r"x.npz has no `images` array \(it has: pixels\)"),
    "float images": (lambda t: _npz(t, images=U8.astype(np.float32)), r"dtype float32, expected uint8"),
    "2-D images": (lambda t: _npz(t, images=U8[:, :, 0, 0]), r"shape \(4, 5\), expected 4-D \[N, H, W, C\]"),
    "5-D images": (lambda t: _npz(t, images=U8[..., None]), r"shape \(4, 5, 5, 1, 1\), expected 4-D"),
    "no images in it": (lambda t: _npz(t, images=U8[:0]), r"shape \(0, 5, 5, 1\), which holds no pixels"),
    "short labels": (lambda t: _npz(t, images=U8, labels=np.arange(3)), r"`labels` has shape \(3,\), expected \[4\]"),
    "2-D labels": (lambda t: _npz(t, images=U8, labels=np.zeros((4, 1), int)), r"shape \(4, 1\), expected \[4\]"),
    "float labels": (lambda t: _npz(t, images=U8, labels=np.arange(4.0)), r"dtype float64, expected integers"),
    "negative labels": (lambda t: _npz(t, images=U8, labels=np.array([0, 1, -1, 2])), r"`labels` holds -1"),
    "empty folder": (lambda t: t, r"holds no .png files"),
    "corrupt png": (_corrupt_png, r"1.png cannot be read as a PNG image \(.*\); replace or remove it"),
    "truncated png": (_truncated_png, r"0.png cannot be read as a PNG image"),
    "jpeg named png": (lambda t: _file(t, "a.png", lambda p: Image.new("RGB", (4, 4)).save(p, "JPEG")),
                       r"a.png is a JPEG file named .png"),
    "16-bit png": (lambda t: _file(t, "a.png", lambda p: Image.new("I;16", (4, 4)).save(p)), r"PNG mode I;16"),
    "mixed sizes": (lambda t: _pngs(t, [np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 6))]),
                    r"/0.png is 4x4 but .*/2.png is 6x4; resize every image to one size"),
    "mixed modes": (lambda t: _pngs(t, [np.zeros((4, 4)), np.zeros((4, 4, 3))]),
                    r"/0.png has 1 channel\(s\) but .*/1.png has 3 channel\(s\); convert them all"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_naming_problem_and_fix(tmp_path, case):
    make, expected = BAD_INPUTS[case]
    message = one_line_error(loader.load_images, make(tmp_path))
    assert re.search(expected, message), message


def test_data_sha256_is_of_content_not_container(tmp_path):
    images = np.random.default_rng(4).integers(0, 256, (3, 4, 4, 3), np.uint8)
    np.savez_compressed(tmp_path / "x.npz", images=images, labels=np.array([0, 0, 1]))
    write_pngs(tmp_path / "folder", images, ["a/0.png", "a/1.png", "b/2.png"])
    from_npz, from_pngs = loader.load_images(tmp_path / "x.npz"), loader.load_images(tmp_path / "folder")
    expected = hashlib.sha256(b"(3, 4, 4, 3)" + images.tobytes() + b"labels"
                              + np.array([0, 0, 1], "<i8").tobytes()).hexdigest()
    assert loader.data_sha256(from_npz) == loader.data_sha256(from_pngs) == expected
    changed = from_npz.images.copy()
    changed[2, 3, 3, 2] ^= 1
    assert loader.data_sha256(from_npz._replace(images=changed)) != expected
    assert loader.data_sha256(from_npz._replace(labels=None)) != expected


def test_image_sampler_flattens_any_shape_row_column_channel():
    images = np.arange(36, dtype=np.uint8).reshape(3, 2, 2, 3)
    x, labels = mnist_data.image_sampler(images, "tanh", np.array([0, 1, 2]))(jax.random.key(0), 50)
    assert x.shape == (50, 12) and set(np.asarray(labels).tolist()) == {0, 1, 2}
    expected = (np.arange(12)[None] + 12 * np.asarray(labels)[:, None]) * (2 / 255) - 1
    np.testing.assert_allclose(x, expected, rtol=1e-6)


# --- DCGAN widths --------------------------------------------------------------------------------------------

def test_dcgan_widths_by_hand():
    assert dcgan_widths((28, 28, 1)) == ((64, 32), (32, 64))
    assert dcgan_widths((32, 32, 3)) == ((128, 64, 32), (32, 64, 128))
    assert dcgan_widths((64, 64, 3)) == ((256, 128, 64, 32), (32, 64, 128, 256))
    assert dcgan_widths((64, 32, 3), base=16) == ((64, 32, 16), (16, 32, 64))  # the smaller side: 32 -> 4
    assert dcgan_widths((8, 8, 1)) == ((32,), (32,))
    preset = presets.get("dcgan").config
    assert dcgan_widths(preset.image_shape) == (preset.generator.hidden, preset.discriminator.hidden)
    for bad in ((27, 27, 1), (6, 6, 3), (4, 8, 1)):
        with pytest.raises(ConfigError, match="`image_shape`: a DCGAN halves"):
            dcgan_widths(bad)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_dcgan_of_those_widths_draws_images_of_the_shape_and_d_takes_them(shape):
    g_hidden, d_hidden = dcgan_widths(shape)
    preset = presets.get("dcgan").config
    cfg = preset.replace(image_shape=shape, generator=dataclasses.replace(preset.generator, hidden=g_hidden),
                         discriminator=dataclasses.replace(preset.discriminator, hidden=d_hidden))
    images = np.random.default_rng(0).integers(0, 256, (4, *shape), np.uint8)
    gan = GAN.from_config(cfg, mnist_data.image_sampler(images), int(np.prod(shape)))

    @jax.jit  # one program: eager, each flax op compiles alone (3x slower)
    def draw_and_judge(key):
        k_init, k_z, k_real = jax.random.split(key, 3)
        state = gan.init(k_init)
        fake = gan.generate(state.g_params, gan.sample_latent(k_z, 3)[0], None, state.g_stats)
        real = gan.sample_real(k_real, 3)[0]
        return fake, real, gan.discriminate(state.d_params, fake)[0], gan.discriminate(state.d_params, real)[0]

    if shape[0] > 32:  # the 4-layer network: its shapes, without compiling it (the 3-layer 32x32x3 one runs here)
        shapes = jax.eval_shape(draw_and_judge, jax.random.key(0))
        assert shapes[0].shape == shapes[1].shape == (3, int(np.prod(shape))) and shapes[2].shape == (3,)
        return
    fake, real, fake_logits, real_logits = draw_and_judge(jax.random.key(0))
    assert fake.shape == real.shape == (3, int(np.prod(shape)))
    assert 0 < float(jnp.max(jnp.abs(fake))) <= 1.0  # tanh
    assert fake_logits.shape == real_logits.shape == (3,)
    assert bool(jnp.all(jnp.isfinite(fake_logits))) and bool(jnp.all(jnp.isfinite(real_logits)))


# --- metrics -------------------------------------------------------------------------------------------------

def blobs(n, seed, size=16):
    """Images of one coloured Gaussian blob at a random place, [n, size, size, 3] in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(3, size - 3, (2, n, 1, 1))
    radius = rng.uniform(1.5, 3.5, (n, 1, 1))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))[..., None]
    noise = rng.uniform(0, 0.05, (n, size, size, 3))
    return np.clip(blob * rng.uniform(0.3, 1.0, (n, 1, 1, 3)) + noise, 0, 1).astype(np.float32)


def quadrants(n, seed, size=16):
    """Images whose class k is the bright quadrant (row k // 2, column k % 2): [n, size, size, 3], labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    x = rng.uniform(0, 0.25, (n, size, size, 3))
    half = size // 2
    for i, k in enumerate(labels):
        x[i, half * (k // 2):half * (k // 2 + 1), half * (k % 2):half * (k % 2 + 1)] += 0.6
    return x.astype(np.float32), labels


def quadrant_logits(images):
    """A classifier by hand: 20 x each quadrant's mean brightness."""
    h = images.shape[1] // 2
    parts = [images[:, r * h:(r + 1) * h, c * h:(c + 1) * h].mean((1, 2, 3)) for r in (0, 1) for c in (0, 1)]
    return 20.0 * jnp.stack(parts, -1)


@pytest.mark.parametrize("shape", [(8, 8, 1), (16, 12, 3), (64, 64, 3)])
def test_classifier_shapes_for_any_image_size(shape):
    params = im.init_params(jax.random.key(0), shape, 5)
    logits, features = im.classify(params, jnp.zeros((2, *shape)))
    assert logits.shape == (2, 5) and features.shape == (2, im.FEATURES)
    assert len(im.conv_widths(*shape[:2])) == {8: 3, 12: 3, 64: 4}[min(shape[:2])]
    with pytest.raises(DataError, match="too small"):
        im.init_params(jax.random.key(0), (4, 8, 1), 5)


def test_random_features_are_deterministic_and_seeded():
    x = jnp.asarray(blobs(8, 0))
    a, b = im.random_features((16, 16, 3))(x), im.random_features((16, 16, 3))(x)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, im.FEATURES) and float(jnp.std(a)) > 0.05
    assert not np.allclose(a, im.random_features((16, 16, 3), seed=1)(x))


def test_chunked_classify_equals_one_call():
    params = im.init_params(jax.random.key(0), (8, 8, 3), 3)
    x = jnp.asarray(blobs(20, 1, size=8))
    whole, chunked = im.classify(params, x), im.classify(params, x, chunk=7)
    for w, c in zip(whole, chunked):
        np.testing.assert_allclose(c, w, rtol=1e-5, atol=1e-6)


def flat_pixels(images):
    return images.reshape(images.shape[0], -1)


def test_frechet_distance_by_hand():
    """Images of two pixels: the first 0, 0.2, ..., 1 (mean 0.5, variance 0.14), the second always 0."""
    a = np.stack([np.linspace(0, 1, 6), np.zeros(6)], -1).astype(np.float32).reshape(6, 1, 2, 1)
    fn = jax.jit(im.metrics_fn(flat_pixels, a))
    np.testing.assert_allclose(fn(a)["frechet_distance"], 0.0, atol=1e-6)
    # half the spread: (sqrt(0.14) - sqrt(0.035))^2 = 0.035; and shifted to mean 0.3: + 0.2^2
    half = a * np.array([0.5, 0], np.float32).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(fn(half + np.array([0.25, 0], np.float32).reshape(1, 1, 2, 1))["frechet_distance"],
                               0.035, rtol=1e-5)
    np.testing.assert_allclose(fn(half + np.array([0.05, 0], np.float32).reshape(1, 1, 2, 1))["frechet_distance"],
                               0.075, rtol=1e-5)


def test_frechet_distance_matches_numpy_and_scipy():
    rng = np.random.default_rng(5)
    real = rng.uniform(0, 1, (50, 2, 2, 1)).astype(np.float32)
    fake = (rng.uniform(0, 1, (40, 2, 2, 1)) ** 2).astype(np.float32)
    a, b = real.reshape(50, -1).astype(np.float64), fake.reshape(40, -1).astype(np.float64)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a + s_b - 2 * np.real(scipy.linalg.sqrtm(s_a @ s_b)))
    got = jax.jit(im.metrics_fn(flat_pixels, real, n_samples=40))(fake.reshape(40, -1))["frechet_distance"]
    np.testing.assert_allclose(got, expected, rtol=1e-4)


@pytest.fixture(scope="module")
def blob_metrics():
    """Random-feature metrics against 200 blob images: of 200 other blobs (the ceiling), noise, one image."""
    features = im.random_features((16, 16, 3))
    real, other = blobs(200, 0), blobs(200, 1)
    fn = jax.jit(im.metrics_fn(features, real))
    noise = np.random.default_rng(2).uniform(0, 1, real.shape).astype(np.float32)
    return {"real": im.real_reference(features, real, other),
            "noise": fn(noise), "one": fn(np.repeat(other[:1], 200, 0))}


def test_real_images_score_near_the_ceiling(blob_metrics):
    real = blob_metrics["real"]
    assert set(real) == {"frechet_distance", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    assert real["precision"] > 0.8 and real["recall"] > 0.8 and real["coverage"] > 0.8
    assert 0.7 < real["density"] < 1.3 and abs(real["kid"]) < 3 * real["kid_std"]


def test_noise_and_one_repeated_image_score_clearly_worse(blob_metrics):
    real, noise, one = blob_metrics["real"], blob_metrics["noise"], blob_metrics["one"]
    for bad in (noise, one):
        assert float(bad["frechet_distance"]) > 20 * real["frechet_distance"]
        assert float(bad["kid"]) > 10 * real["kid_std"]
        assert float(bad["coverage"]) < 0.1
    assert float(noise["precision"]) < 0.1 and float(noise["density"]) < 0.1
    assert float(one["recall"]) < 0.05  # one image is realistic (precision 1) but covers nothing


def test_class_metrics_by_hand():
    images, labels = quadrants(40, 0)
    fn = jax.jit(im.metrics_fn(im.random_features(images.shape[1:]), images, quadrant_logits))
    balanced = fn(images, labels)
    assert float(balanced["classes_covered"]) == 4 and float(balanced["label_accuracy"]) == 1
    np.testing.assert_allclose(balanced["class_kl"], 0.0, atol=1e-6)
    assert 3.5 < float(balanced["classifier_score"]) <= 4.0
    one = fn(np.repeat(images[:1], 40, 0), labels)
    assert float(one["classes_covered"]) == 1 and float(one["label_accuracy"]) == 0.25
    np.testing.assert_allclose(one["class_kl"], np.log(4), rtol=1e-6)
    np.testing.assert_allclose(one["classifier_score"], 1.0, rtol=1e-5)
    # 1/10 of the uniform share (1/4 of 40) is 1 image: one of class 3 among 39 of class 0 covers it
    mixed = fn(np.concatenate([np.repeat(images[:1], 39, 0), images[3:4]]))
    assert float(mixed["classes_covered"]) == 2


def test_vmapped_over_members_equals_one_at_a_time():
    images, _ = quadrants(24, 1)
    fn = im.metrics_fn(im.random_features(images.shape[1:]), images, quadrant_logits, n_samples=16)
    members = jnp.stack([flat_pixels(quadrants(16, 2)[0]), flat_pixels(blobs(16, 3))])
    batched = jax.jit(jax.vmap(fn))(members)
    for i in range(2):
        single = jax.jit(fn)(members[i])
        assert set(single) == set(batched)
        for name, value in single.items():
            np.testing.assert_allclose(batched[name][i], value, rtol=1e-4, atol=1e-5, err_msg=name)


def test_samples_of_another_shape_or_dtype_are_refused():
    fn = im.metrics_fn(flat_pixels, blobs(8, 0, size=8))
    with pytest.raises(ValueError, match=r"shape \[n, 192\] or \[n, 8, 8, 3\]"):
        fn(jnp.zeros((8, 8, 8, 1)))
    with pytest.raises(TypeError, match="floats in"):
        fn(jnp.zeros((8, 192), jnp.uint8))
    with pytest.raises(DataError, match="at least 6 images in"):
        im.metrics_fn(flat_pixels, blobs(8, 0, size=8) * 255)


# --- the classifier's files ----------------------------------------------------------------------------------

def test_classifier_path_beside_the_data(tmp_path):
    assert im.classifier_path(tmp_path / "faces.npz") == tmp_path / "faces.classifier.msgpack"
    assert im.classifier_path(tmp_path / "faces") == tmp_path / "faces" / "classifier.msgpack"
    assert im.sidecar_path(tmp_path / "faces.classifier.msgpack") == tmp_path / "faces.classifier.json"


@pytest.fixture
def saved(tmp_path):
    params = im.init_params(jax.random.key(3), (8, 8, 3), 4)
    path = tmp_path / "c.msgpack"
    digest = im.save_classifier(params, path, (8, 8, 3), 0.75, 20, "d" * 64)
    return params, path, digest


def test_saved_classifier_loads_back(saved):
    params, path, digest = saved
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, info = im.load_classifier(path, data_sha256="d" * 64)
    assert info == {**json.loads(im.sidecar_path(path).read_text()), "sha256": digest}
    assert (info["num_classes"], info["image_shape"], info["accuracy"], info["heldout"]) == (4, [8, 8, 3], 0.75, 20)
    jax.tree.map(np.testing.assert_array_equal, loaded, params)


def test_altered_or_mismatched_classifier_is_refused_in_one_line(saved):
    _, path, digest = saved
    assert "trained on data with sha256 ddd" in one_line_error(im.load_classifier, path, "e" * 64)
    sidecar = im.sidecar_path(path)
    info = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**info, "image_shape": [8, 8, 1]}))
    assert "other shapes than ImageClassifier" in one_line_error(im.load_classifier, path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    message = one_line_error(im.load_classifier, path)
    assert re.search(rf"sha256 .* but c.json records {digest}: the file is corrupt", message)
    sidecar.unlink()
    assert "c.json cannot be read" in one_line_error(im.load_classifier, path)
    path.unlink()
    assert "not found; train it again" in one_line_error(im.load_classifier, path)


def test_provenance_names_the_feature_network(saved):
    _, path, digest = saved
    random = im.provenance(200, 100)
    assert random["features_seed"] == im.RANDOM_FEATURES_SEED and "random weights from seed 0" in random["features"]
    assert (random["reference_samples"], random["samples"], random["feature_dim"]) == (200, 100, 128)
    assert {"frechet_distance", "kid", "precision", "coverage", "classifier_score"} <= set(random["definitions"])
    trained = im.provenance(200, 100, features="classifier", classifier=path)
    assert "features_seed" not in trained and trained["classifier"]["sha256"] == digest
    assert trained["classifier"]["data_sha256"] == "d" * 64 and trained["classifier"]["accuracy"] == 0.75


# --- the training script's --data ----------------------------------------------------------------------------

def test_train_classifier_on_labelled_images_writes_files_that_load(tmp_path):
    images, labels = quadrants(64, 7)
    np.savez(tmp_path / "quad.npz", images=np.round(images * 255).astype(np.uint8), labels=labels)
    out = run_main("experiments.train_classifier", "--data", tmp_path / "quad.npz", "--epochs", 10,
                   "--batch-size", 16)
    assert out.returncode == 0, out.stderr
    accuracy = float(out.stdout.split("held-out accuracy: ")[1].split("%")[0]) / 100
    assert accuracy >= 0.9 and "(12 images)" in out.stdout  # every 5th of 64 held out
    data = loader.load_images(tmp_path / "quad.npz")
    assert f"data sha256: {loader.data_sha256(data)}" in out.stdout
    weights = im.classifier_path(tmp_path / "quad.npz")
    params, info = im.load_classifier(weights, loader.data_sha256(data))
    assert f"sha256: {info['sha256']}" in out.stdout and info["num_classes"] == 4
    _, (held_images, held_labels) = mnist_metrics.heldout_split(data.images, data.labels)
    assert im.accuracy(params, im.to_unit(held_images), held_labels) == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.parametrize("arrays, flags, message", [
    ({"images": np.zeros((20, 8, 8, 1), np.uint8)}, [], "has no labels, and a classifier needs labels"),
    ({"images": np.zeros((20, 8, 8, 1), np.uint8), "labels": np.zeros(20, int)}, [], "has one class"),
    ({"images": np.zeros((20, 4, 4, 1), np.uint8), "labels": np.arange(20) % 2}, [], "needs height and width >= 8"),
    ({"images": np.zeros((20, 8, 8, 1), np.uint8), "labels": np.arange(20) % 2}, ["--data-dir", "x"], "not both"),
    ({"pixels": np.zeros((20, 8, 8, 1), np.uint8)}, [], "has no `images` array"),
])
def test_train_classifier_refuses_bad_data_in_one_line(tmp_path, arrays, flags, message):
    np.savez(tmp_path / "d.npz", **arrays)
    out = run_main("experiments.train_classifier", "--data", tmp_path / "d.npz", *flags)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]
