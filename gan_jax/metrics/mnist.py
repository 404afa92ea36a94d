"""MNIST sample quality, measured by a small CNN classifier shipped with the package.

The classifier (`Classifier`: 3x3 convolutions of 32, 64 and 64 channels with stride 2, a 128-unit ReLU
feature layer and 10 logits; 131k parameters, 98.9% held-out accuracy) is trained by
`python -m experiments.train_classifier` on 8,000 images of the official MNIST test split
(`../shared/data/mnist-test`, available offline); the other HELDOUT_SIZE = 2,000, every HELDOUT_EVERY-th
image (`heldout_split`), are held out and are the real reference of the metrics. Its weights ship as
`mnist_classifier.msgpack` next to this file, checked against CLASSIFIER_SHA256.

Metrics of EVAL_SAMPLES = 2,000 generated images in [0, 1] (`metrics_fn`):
- classifier_score: exp(E_x KL(p(y|x) || p(y))) over all samples, the Inception Score with this classifier
  (10 for confident, class-balanced samples; 1 when every sample gets the same class distribution).
- frechet_distance: Frechet distance between Gaussians fitted to the 128 penultimate features of the samples
  and of the 2,000 held-out real images (FID with this classifier; not comparable to Inception FIDs, and
  biased upward at small n, so compare values only at the same sample counts).
- classes_covered: digit classes receiving at least MIN_CLASS_SHARE (1%) of the argmax predictions.
- class_kl: KL(predicted-class histogram || uniform), 0 for balanced classes, log 10 = 2.30 for one class.

`real_reference` gives the same metrics for real images, the ceiling for a generator. With the shipped
classifier: 2,000 training-part images against the held-out reference score classifier_score 9.87,
frechet_distance 9.4, 10 classes, class_kl 0.006; the held-out halves against each other (1,000 vs 1,000)
9.72 and 19.9. For scale: digits 0-4 only score 5.0 and FID 264, uniform noise 1.30 and 1263 (4 classes),
one image repeated 1.0 and 1986.
"""
from __future__ import annotations

import hashlib
import pathlib
from typing import Callable

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.metrics import features as feature_metrics
from gan_jax.metrics.metric import higher, lower

METRICS = (higher("classifier_score", "exp(E KL(p(y|x) || p(y))): the Inception Score with the shipped classifier"),
           lower("frechet_distance", "Frechet distance of the classifier's features to held-out real images'"),
           higher("classes_covered", "classes receiving at least 1% of the predictions"),
           lower("class_kl", "KL(predicted-class histogram || uniform)"),
           higher("label_accuracy", "conditional GANs: share of samples classified as the label asked for"),
           *feature_metrics.METRICS)

HELDOUT_EVERY = 5  # images 4, 9, 14, ... of the 10,000-image test split are held out; 8,000 train
HELDOUT_SIZE = 2000  # = 10,000 / HELDOUT_EVERY
EVAL_SAMPLES = 2000  # generated samples per evaluation, as many as the held-out real reference
MIN_CLASS_SHARE = 0.01  # a class is covered by >= 1% of the predictions (20 of 2,000)
NUM_CLASSES, FEATURES = 10, 128
CHUNK = 500  # images per classifier call inside `classify`, bounding memory when vmapped over members

CLASSIFIER_FILE = pathlib.Path(__file__).with_name("mnist_classifier.msgpack")
CLASSIFIER_SHA256 = "da65593ff07c1539bc59efc34a2106a5443d8c8327b41f37cebb76b57e9427e6"
RETRAIN_HINT = ("restore it with `git checkout gan_jax/metrics/mnist_classifier.msgpack`, or re-run "
                "`python -m experiments.train_classifier` and set CLASSIFIER_SHA256 in gan_jax/metrics/mnist.py "
                "to the sha256 it prints")
_HIGHEST = jax.lax.Precision.HIGHEST  # GPUs would otherwise use TF32, too coarse for FID, device-dependent


class ClassifierError(ValueError):
    """The classifier file is missing, altered or malformed; the message names the file and the fix."""


class Classifier(nn.Module):
    """A small CNN: (logits [n, 10], penultimate ReLU features [n, 128]) of images [n, 28, 28, 1] in [0, 1]."""

    @nn.compact
    def __call__(self, x):
        # strided convolutions downsample (28 -> 14 -> 7 -> 3): on CPU several times faster than pooling
        x = nn.relu(nn.Conv(32, (3, 3), strides=2, precision=_HIGHEST)(x))
        x = nn.relu(nn.Conv(64, (3, 3), strides=2, precision=_HIGHEST)(x))
        x = nn.relu(nn.Conv(64, (3, 3), strides=2, padding="VALID", precision=_HIGHEST)(x))
        features = nn.relu(nn.Dense(FEATURES, precision=_HIGHEST)(x.reshape(x.shape[0], -1)))
        return nn.Dense(NUM_CLASSES, precision=_HIGHEST)(features), features


def _as_images(images) -> jax.Array:
    """[n, 784], [n, 28, 28] or [n, 28, 28, 1] floats -> [n, 28, 28, 1] float32."""
    images = jnp.asarray(images)
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"images must be floats in [0, 1], got dtype {images.dtype}; divide uint8 pixels by "
                        "255 (`to_unit`)")
    if images.ndim < 2 or images.shape[1:] not in ((784,), (28, 28), (28, 28, 1)):
        raise ValueError(f"images must have shape [n, 784] or [n, 28, 28], got {images.shape}")
    return images.reshape(-1, 28, 28, 1).astype(jnp.float32)


def to_unit(images_uint8) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], flattened to [n, 784]."""
    return (np.asarray(images_uint8, np.float32) / 255.0).reshape(len(images_uint8), -1)


def init_params(key: jax.Array) -> dict:
    return Classifier().init(key, jnp.zeros((1, 28, 28, 1)))["params"]


def classify(params, images, chunk: int = CHUNK) -> tuple[jax.Array, jax.Array]:
    """(logits [n, 10], features [n, 128]) of images in [0, 1], [n, 784] or [n, 28, 28]. More than `chunk`
    images go through the network `chunk` at a time (lax.map), so memory stays bounded under vmap."""
    x = _as_images(images)
    apply = lambda batch: Classifier().apply({"params": params}, batch)  # noqa: E731
    n = x.shape[0]
    if n <= chunk:
        return apply(x)
    padded = jnp.pad(x, ((0, -n % chunk), (0, 0), (0, 0), (0, 0)))
    logits, features = jax.lax.map(apply, padded.reshape(-1, chunk, 28, 28, 1))
    return logits.reshape(-1, NUM_CLASSES)[:n], features.reshape(-1, FEATURES)[:n]


_classify_jit = jax.jit(classify, static_argnames="chunk")


def heldout_split(images, labels) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (held-out images, labels)): every HELDOUT_EVERY-th example (indices 4, 9,
    14, ...) is held out, 2,000 of the test split's 10,000, the other 8,000 train. Interleaved, not the last
    2,000: the test split is ordered by source and writer (its first 5,000 images are cleaner than its last
    5,000; contiguous blocks of 1,000 are FID ~50 apart), so a contiguous block would be a biased reference."""
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels) or len(images) < HELDOUT_EVERY:
        raise ValueError(f"need matching images and labels, at least {HELDOUT_EVERY} of them (the MNIST test "
                         f"split has 10,000); got {len(images)} images and {len(labels)} labels")
    held = np.arange(len(images)) % HELDOUT_EVERY == HELDOUT_EVERY - 1
    return (images[~held], labels[~held]), (images[held], labels[held])


def accuracy(params, images, labels) -> float:
    logits, _ = _classify_jit(params, images)
    return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(labels)))


# --- the shipped weights -------------------------------------------------------------------------------------

def sha256_of(path: str | pathlib.Path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def load_classifier(path: str | pathlib.Path | None = None, sha256: str | None = CLASSIFIER_SHA256) -> dict:
    """The classifier's params from `path` (default: the file shipped in the package), after checking the
    file's sha256 against `sha256` (None: no check, for a classifier you trained yourself). No network."""
    path = pathlib.Path(path) if path is not None else CLASSIFIER_FILE
    if not path.is_file():
        raise ClassifierError(f"classifier weights {path} not found; {RETRAIN_HINT}")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ClassifierError(f"classifier weights {path} have sha256 {digest}, expected {sha256}: the file "
                              f"is corrupt or was replaced; {RETRAIN_HINT}")
    try:
        return params_from_bytes(jax.eval_shape(init_params, jax.random.key(0)), raw)
    except UnreadableParams as e:
        raise ClassifierError(f"classifier weights {path} cannot be read as Classifier params ({e}); "
                              f"{RETRAIN_HINT}") from None
    except ParamShapeMismatch:
        raise ClassifierError(f"classifier weights {path} have other shapes than the Classifier architecture; "
                              f"{RETRAIN_HINT}") from None


class UnreadableParams(ValueError):
    """The bytes are not a flax msgpack file, or hold another architecture's tree: `kind` is the reading
    error's type name, the message that and its text."""

    def __init__(self, kind: str, text: str):
        super().__init__(f"{kind}: {text}")
        self.kind = kind


class ParamShapeMismatch(ValueError):
    """The tree reads, but its arrays' shapes are not the architecture's."""


def params_from_bytes(target, raw: bytes):
    """Flax msgpack `raw` as a params tree shaped like `target` (shapes from `jax.eval_shape` of an init):
    UnreadableParams or ParamShapeMismatch otherwise, for the caller to name the file and the fix."""
    try:
        params = flax.serialization.from_bytes(target, raw)
        shapes_match = jax.tree.all(jax.tree.map(lambda t, p: t.shape == np.shape(p), target, params))
    except Exception as e:  # not a flax msgpack file, or another architecture's tree
        raise UnreadableParams(type(e).__name__, str(e)) from None
    if not shapes_match:
        raise ParamShapeMismatch("shapes differ")
    return jax.tree.map(jnp.asarray, params)


def save_classifier(params, path: str | pathlib.Path) -> str:
    """Write params (flax msgpack) to `path`; returns the file's sha256."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flax.serialization.to_bytes(jax.device_get(params)))
    return sha256_of(path)


# --- metrics: pure, jittable, vmappable ----------------------------------------------------------------------

def classifier_score(logits: jax.Array) -> jax.Array:
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction over all given samples (not per batch)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    log_marginal = jnp.log(jnp.mean(jnp.exp(log_p), axis=0))
    return jnp.exp(jnp.mean(jnp.sum(jnp.exp(log_p) * (log_p - log_marginal), axis=-1)))


def class_coverage(logits: jax.Array, min_share: float = MIN_CLASS_SHARE) -> dict[str, jax.Array]:
    """classes_covered: classes with >= min_share of the argmax predictions; class_kl: KL(histogram ||
    uniform) of the predictions, 0 when balanced, log 10 when every sample gets one class."""
    counts = jnp.zeros(NUM_CLASSES).at[jnp.argmax(logits, axis=-1)].add(1.0)
    p = counts / logits.shape[0]
    kl = jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30) * NUM_CLASSES), 0.0))
    return {"classes_covered": jnp.sum(counts >= min_share * logits.shape[0]).astype(jnp.float32),
            "class_kl": kl}


def gaussian_stats(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and (unbiased) covariance of features [n, d], in float32 at full matmul precision."""
    f = jnp.asarray(features, jnp.float32)
    mu = jnp.mean(f, axis=0)
    centered = f - mu
    return mu, jnp.matmul(centered.T, centered, precision=_HIGHEST) / (f.shape[0] - 1)


def _psd_sqrt(cov: jax.Array) -> jax.Array:
    """The symmetric square root of a PSD matrix; eigenvalues below 0 (rounding) count as 0."""
    w, v = jnp.linalg.eigh(cov)
    return jnp.matmul(v * jnp.sqrt(jnp.clip(w, 0.0)), v.T, precision=_HIGHEST)


def _frechet(mu_a, trace_a, sqrt_a, feat_b) -> jax.Array:
    """|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b) against Gaussian a given by its mean, trace
    and covariance square root. tr sqrt(S_a S_b) is the sum of the singular values of X_b sqrt(S_a), X_b the
    centered features of b over sqrt(m - 1) (its squared singular values are the eigenvalues of
    sqrt(S_a) S_b sqrt(S_a), which has the spectrum of S_a S_b). Unlike square roots of eigenvalues, singular
    values keep float32's precision near 0: on 128 classifier features this matches float64 to ~1e-3, where
    eigh of sqrt(S_a) S_b sqrt(S_a) is off by ~0.5."""
    f = jnp.asarray(feat_b, jnp.float32)
    mu_b = jnp.mean(f, axis=0)
    x_b = (f - mu_b) / jnp.sqrt(f.shape[0] - 1.0)
    tr_sqrt = jnp.sum(jnp.linalg.svd(jnp.matmul(x_b, sqrt_a, precision=_HIGHEST), compute_uv=False))
    diff = mu_a - mu_b
    return jnp.dot(diff, diff, precision=_HIGHEST) + trace_a + jnp.sum(x_b * x_b) - 2.0 * tr_sqrt


def frechet_distance(feat_a: jax.Array, feat_b: jax.Array) -> jax.Array:
    """Frechet distance between Gaussians fitted to features [n, d] and [m, d] (n, m >= 2), in float32.
    Jittable and vmappable; no scipy sqrtm."""
    mu_a, cov_a = gaussian_stats(feat_a)
    return _frechet(mu_a, jnp.trace(cov_a), _psd_sqrt(cov_a), feat_b)


def _reference_stats(features) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(mean, trace of covariance, covariance square root) computed once, in float64 on the host."""
    f = np.asarray(features, np.float64)
    cov = np.cov(f, rowvar=False)
    w, v = np.linalg.eigh(cov)
    sqrt_cov = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return jnp.asarray(f.mean(0), jnp.float32), jnp.float32(np.trace(cov)), jnp.asarray(sqrt_cov, jnp.float32)


def metrics_fn(params, real_images_unit, min_class_share: float = MIN_CLASS_SHARE,
               n_samples: int = EVAL_SAMPLES) -> Callable[[jax.Array], dict[str, jax.Array]]:
    """`fn(samples, labels=None) -> {classifier_score, frechet_distance, classes_covered, class_kl, kid,
    kid_std, precision, recall, density, coverage}` for `n_samples` generated images in [0, 1], [n, 784];
    with the labels a conditional generator was asked for, also label_accuracy (the share the classifier
    reads as that digit). The reference is `real_images_unit` (the HELDOUT_SIZE held-out images in [0, 1]);
    its feature statistics are computed here, once, and closed over (`gan_jax.metrics.features` for KID,
    precision/recall and density/coverage on the classifier's 128 features). `fn` is pure: jit it, or vmap
    it over members (Sweep.evaluate does both). Rescale tanh outputs to [0, 1] first."""
    _, real_features = _classify_jit(params, real_images_unit)
    mu_r, trace_r, sqrt_r = _reference_stats(real_features)
    reference = feature_metrics.reference(real_features, n_samples)

    def fn(samples: jax.Array, labels: jax.Array | None = None) -> dict[str, jax.Array]:
        logits, features = classify(params, samples)
        metrics = {"classifier_score": classifier_score(logits),
                   "frechet_distance": _frechet(mu_r, trace_r, sqrt_r, features),
                   **class_coverage(logits, min_class_share), **feature_metrics.metrics(reference, features)}
        if labels is not None:  # a conditional GAN: how often the classifier reads the asked-for digit
            metrics["label_accuracy"] = jnp.mean(jnp.argmax(logits, -1) == labels)
        return metrics

    return fn


def real_reference(params, real_images_unit, train_images_unit=None) -> dict[str, float]:
    """The metrics of real data, the ceiling for a generator, scored by the same `metrics_fn(params,
    real_images_unit)` a generator's samples get. With `train_images_unit` (the training part in [0, 1],
    e.g. 8,000): EVAL_SAMPLES of its images, evenly spaced, as the samples, so sample counts match a
    generator's (recommended; the classifier has fit these images, which lifts classifier_score by ~0.1).
    Without: the odd-indexed held-out images against the even-indexed ones, 1,000 vs 1,000 of the 2,000
    held out, all unseen by the classifier, but FID's small-sample bias about doubles frechet_distance."""
    if train_images_unit is not None:
        step = max(1, len(train_images_unit) // EVAL_SAMPLES)  # spread over the data's writers and sources
        reference, samples = real_images_unit, train_images_unit[::step][:EVAL_SAMPLES]
    else:
        reference, samples = real_images_unit[0::2], real_images_unit[1::2]
    fn = metrics_fn(params, reference, n_samples=len(samples))
    return {k: float(v) for k, v in jax.jit(fn)(jnp.asarray(samples)).items()}


def provenance(n_reference: int, reference: str, n_samples: int = EVAL_SAMPLES) -> dict:
    """What the MNIST metrics depend on: compare two runs' numbers only when this matches."""
    return {"classifier": "gan_jax/metrics/mnist_classifier.msgpack", "classifier_sha256": CLASSIFIER_SHA256,
            "features": f"the classifier's {FEATURES} penultimate ReLU features", "reference": reference,
            **feature_metrics.provenance(n_reference, n_samples, FEATURES)}
