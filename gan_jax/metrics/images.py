"""Sample quality on any image set ([n, height, width, channels] in [0, 1]): features of a small CNN
(`ImageClassifier`), randomly initialised or trained on the data's labels, compared between a generator's
samples and real images.

Feature networks (both `ImageClassifier`: 3x3 stride-2 convolutions, global average pooling, a 128-unit
ReLU feature layer, logits):
- random (`random_features`; no labels, no training): its 128 penultimate features with the weights drawn
  from RANDOM_FEATURES_SEED. Randomly initialised networks give feature spaces in which FD, KID and
  precision/recall/density/coverage rank generators sensibly (Naeem et al. 2020, "Reliable Fidelity and
  Diversity Metrics for Generative Models", sec. 5; Lee, Kim & Lee 2022, "Demystifying Randomly Initialized
  Networks for Evaluating Generative Models").
- trained (`classifier_fns`): a classifier of the data's labels, from `python -m experiments.train_classifier
  --data PATH`, saved by default beside the data (`classifier_path`) as flax msgpack weights and a JSON
  sidecar (`save_classifier`, `load_classifier`, which checks both sha256s).

`metrics_fn(feature_fn, real_images, classify_fn)` gives frechet_distance (FID in this feature space), kid,
kid_std, precision, recall, density, coverage (`gan_jax.metrics.features`), and with a classifier
classifier_score (the Inception Score with it), classes_covered, class_kl and, for a conditional generator,
label_accuracy. Values depend on the feature network, the image size and the sample counts: compare two
runs' numbers only when their `provenance` matches. `real_reference` gives a second real set's values, the
ceiling for a generator.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import pathlib
from typing import Callable

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import DataError
from gan_jax.metrics import features as feature_metrics
from gan_jax.metrics import mnist as mnist_metrics
from gan_jax.metrics.metric import higher, lower

METRICS = (lower("frechet_distance", "Frechet distance of the feature network's features to the real images'"),
           *feature_metrics.METRICS,
           higher("classifier_score", "with a classifier: exp(E KL(p(y|x) || p(y))), the Inception Score with it"),
           higher("classes_covered", "with a classifier: classes receiving at least 1/10 of their uniform share "
                                     "of the predictions (1% of them for 10 classes)"),
           lower("class_kl", "with a classifier: KL(predicted-class histogram || uniform)"),
           higher("label_accuracy", "conditional GANs: share of samples classified as the label asked for"))

FEATURES = 128
CONV_WIDTHS = (32, 64, 128, 256)  # channels of the stride-2 convolutions; later ones repeat the last
MIN_CONVS, COARSEST = 3, 4  # at least 3 convolutions; more until the map's smaller side is <= 4
MIN_SIZE = 8  # height and width the classifier accepts
ARCHITECTURE = ("ImageClassifier v1: inputs 2x - 1; 3x3 stride-2 SAME convolutions with ReLU of 32, 64, 128, then "
                "256 channels, at least 3 and more until the map's smaller side is at most 4; global average "
                "pooling; 128 ReLU features; logits; He-normal kernels, zero biases")
RANDOM_FEATURES_SEED = 0
COVERED_SHARE = 0.1  # a class is covered by >= 1/10 of its uniform share 1/K of the predictions (MNIST's 1%)
MIN_IMAGES = feature_metrics.DC_K + 1  # density/coverage need each point's 5th nearest other point
CHUNK = 500  # images per network call inside `classify`, bounding memory when vmapped over members
RETRAIN_HINT = "train it again with `python -m experiments.train_classifier --data PATH`"
_HIGHEST = jax.lax.Precision.HIGHEST  # as gan_jax.metrics.mnist: no TF32 on GPUs
# He init (variance 2 / fan_in) keeps the activations' scale through each ReLU, so a random network's features
# are O(1) rather than shrinking by half per layer (what KID's kernel (x.y / d + 1)^3 is scaled for)
_HE = nn.initializers.he_normal()


def conv_widths(height: int, width: int) -> tuple[int, ...]:
    """The channels of each stride-2 convolution for images of height x width."""
    n = max(MIN_CONVS, math.ceil(math.log2(max(min(height, width) / COARSEST, 1.0))))
    return tuple(CONV_WIDTHS[min(i, len(CONV_WIDTHS) - 1)] for i in range(n))


class ImageClassifier(nn.Module):
    """(logits [n, num_classes], penultimate ReLU features [n, 128]) of images [n, h, w, c] in [0, 1]."""

    num_classes: int

    @nn.compact
    def __call__(self, x):
        widths = conv_widths(x.shape[1], x.shape[2])
        x = 2.0 * x - 1.0  # centred: zero-bias random filters then see signed contrasts, not all-positive pixels
        for width in widths:
            x = nn.relu(nn.Conv(width, (3, 3), strides=2, kernel_init=_HE, precision=_HIGHEST)(x))
        x = jnp.mean(x, axis=(1, 2))  # global average pooling: one network for any image size
        features = nn.relu(nn.Dense(FEATURES, kernel_init=_HE, precision=_HIGHEST, name="features")(x))
        return nn.Dense(self.num_classes, precision=_HIGHEST, name="logits")(features), features


def to_unit(images_uint8) -> np.ndarray:
    """uint8 pixels [n, h, w, c] (or [n, h, w]: c = 1) -> float32 in [0, 1], [n, h, w, c]."""
    x = np.asarray(images_uint8, np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


def init_params(key: jax.Array, image_shape, num_classes: int) -> dict:
    """Fresh ImageClassifier params for images of `image_shape` (height, width, channels)."""
    height, width = image_shape[:2]
    if min(height, width) < MIN_SIZE:
        raise DataError(f"images of {height}x{width} are too small for the image classifier (height and width "
                        f">= {MIN_SIZE}); resize them")
    return ImageClassifier(num_classes).init(key, jnp.zeros((1, *image_shape)))["params"]


def classify(params, images, chunk: int = CHUNK) -> tuple[jax.Array, jax.Array]:
    """(logits, features) of images [n, h, w, c] in [0, 1]. More than `chunk` images go through the network
    `chunk` at a time (lax.map), so memory stays bounded under vmap."""
    x = jnp.asarray(images, jnp.float32)
    net = ImageClassifier(params["logits"]["bias"].shape[0])
    run = lambda batch: net.apply({"params": params}, batch)  # noqa: E731
    n = x.shape[0]
    if n <= chunk:
        return run(x)
    padded = jnp.pad(x, ((0, -n % chunk), (0, 0), (0, 0), (0, 0)))
    out = jax.lax.map(run, padded.reshape((-1, chunk) + x.shape[1:]))
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)


_classify_jit = jax.jit(classify, static_argnames="chunk")


def accuracy(params, images_unit, labels) -> float:
    """The share of images [n, h, w, c] in [0, 1] whose top logit is their label."""
    logits, _ = _classify_jit(params, images_unit)
    return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(labels)))


# --- feature networks: pure functions images [n, h, w, c] in [0, 1] -> features or logits ---------------------

def random_params(image_shape, seed: int = RANDOM_FEATURES_SEED) -> dict:
    """ImageClassifier params drawn from `seed` (one logit, unused): the random feature network."""
    return init_params(jax.random.key(seed), tuple(image_shape), 1)


def random_features(image_shape, seed: int = RANDOM_FEATURES_SEED) -> Callable[[jax.Array], jax.Array]:
    """`fn(images) -> [n, 128]`: the random network's penultimate features (the same for the same seed)."""
    params = random_params(image_shape, seed)
    return lambda images: classify(params, images)[1]


def classifier_fns(params) -> tuple[Callable, Callable]:
    """(feature_fn, classify_fn) of a trained classifier: `images -> features [n, 128]`, `images -> logits`."""
    return (lambda images: classify(params, images)[1]), (lambda images: classify(params, images)[0])


# --- metrics: pure, jittable, vmappable ----------------------------------------------------------------------

def _as_images(images, image_shape: tuple[int, ...]) -> jax.Array:
    """Float images [n, h*w*c], [n, h, w, c] (or [n, h, w] when c = 1) -> float32 [n, h, w, c]."""
    images = jnp.asarray(images)
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"images must be floats in [0, 1], got dtype {images.dtype}; divide uint8 pixels by "
                        "255 (`to_unit`)")
    size, shape = math.prod(image_shape), tuple(image_shape)
    shapes = {(size,), shape} | ({shape[:2]} if shape[2] == 1 else set())
    if images.ndim < 2 or images.shape[1:] not in shapes:
        raise ValueError(f"images must have shape [n, {size}] or [n, {', '.join(map(str, shape))}] (the real "
                         f"images'), got {images.shape}")
    return images.reshape((-1,) + tuple(image_shape)).astype(jnp.float32)


def _real_images(images) -> np.ndarray:
    """Real images [n, h, w, c] floats in [0, 1] (n >= MIN_IMAGES), checked once on the host."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"real images must be floats in [0, 1], [n, h, w, c], got {images.dtype} {images.shape}; "
                        "convert uint8 pixels with `to_unit`")
    if len(images) < MIN_IMAGES or images.min() < 0 or images.max() > 1:
        raise DataError(f"the real reference needs at least {MIN_IMAGES} images in [0, 1], got {len(images)} in "
                        f"[{images.min():g}, {images.max():g}]; use more images, scaled with `to_unit`")
    return images.astype(np.float32)


def class_metrics(logits: jax.Array, covered_share: float = COVERED_SHARE,
                  labels: jax.Array | None = None) -> dict[str, jax.Array]:
    """classifier_score; classes_covered: the K classes given >= covered_share / K of the argmax predictions;
    class_kl: KL(predicted-class histogram || uniform), 0 balanced, log K for one class; with the labels a
    conditional generator was asked for, label_accuracy."""
    k, n = logits.shape[-1], logits.shape[0]
    predicted = jnp.argmax(logits, axis=-1)
    counts = jnp.zeros(k).at[predicted].add(1.0)
    p = counts / n
    out = {"classifier_score": mnist_metrics.classifier_score(logits),
           "classes_covered": jnp.sum(counts >= covered_share / k * n).astype(jnp.float32),
           "class_kl": jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30) * k), 0.0))}
    if labels is not None:
        out["label_accuracy"] = jnp.mean(predicted == labels)
    return out


def metrics_fn(feature_fn: Callable, real_images, classify_fn: Callable | None = None, n_samples: int | None = None,
               covered_share: float = COVERED_SHARE) -> Callable[..., dict[str, jax.Array]]:
    """`fn(samples, labels=None) -> {frechet_distance, kid, kid_std, precision, recall, density, coverage}`
    (with `classify_fn`, also class_metrics') for `n_samples` (default: as many as the real images) generated
    images in [0, 1], flat [n, h*w*c] or [n, h, w, c]. The real images' features and statistics are computed
    here, once, on the host (float64 for the Frechet distance's), and closed over: `fn` is pure, so jit it or
    vmap it over members. Rescale tanh outputs to [0, 1] first."""
    real = _real_images(real_images)
    n_samples = len(real) if n_samples is None else n_samples
    if n_samples < MIN_IMAGES:
        raise ValueError(f"n_samples must be at least {MIN_IMAGES}, got {n_samples}")
    real_features = np.asarray(jax.jit(feature_fn)(jnp.asarray(real)), np.float32)
    mu, trace, sqrt_cov = mnist_metrics._reference_stats(real_features)
    reference = feature_metrics.reference(real_features, n_samples)
    shape = real.shape[1:]

    def fn(samples: jax.Array, labels: jax.Array | None = None) -> dict[str, jax.Array]:
        x = _as_images(samples, shape)
        features = feature_fn(x)
        metrics = {"frechet_distance": mnist_metrics._frechet(mu, trace, sqrt_cov, features),
                   **feature_metrics.metrics(reference, features)}
        if classify_fn is not None:
            metrics.update(class_metrics(classify_fn(x), covered_share, labels))
        return metrics

    return fn


def real_reference(feature_fn: Callable, real_images, other_real_images,
                   classify_fn: Callable | None = None) -> dict[str, float]:
    """The metrics of `other_real_images` (real images the reference does not hold, e.g. a held-out part)
    against `real_images`: the ceiling for a generator scored by the same `metrics_fn` at the same counts."""
    other = _real_images(other_real_images)
    fn = metrics_fn(feature_fn, real_images, classify_fn, n_samples=len(other))
    return {name: float(value) for name, value in jax.jit(fn)(jnp.asarray(other)).items()}


def provenance(n_reference: int, n_samples: int, features: str = "random", classifier: str | pathlib.Path | None = None,
               seed: int = RANDOM_FEATURES_SEED) -> dict:
    """What the metrics depend on: the feature network (`features` "random", with its seed, or "classifier":
    the trained `classifier` file's, named with its sha256 and what its sidecar records), the classifier
    behind the class metrics, sample counts and the metrics' definitions. Compare runs only when it matches."""
    if features not in ("random", "classifier") or (features == "classifier" and classifier is None):
        raise ValueError(f"features must be 'random' or 'classifier' (with `classifier`), got {features!r}")
    out = {"feature_network": ARCHITECTURE,
           "features": (f"the {FEATURES} penultimate ReLU features of the network with random weights from seed "
                        f"{seed}" if features == "random" else f"the trained classifier's {FEATURES} penultimate "
                        "ReLU features")}
    if features == "random":
        out["features_seed"] = seed
    if classifier is not None:
        info = _read_sidecar(pathlib.Path(classifier))
        out["classifier"] = {"file": str(classifier), "sha256": sha256_of(classifier),
                             **{k: info[k] for k in ("num_classes", "image_shape", "accuracy", "data_sha256")}}
    return {**out, **feature_metrics.provenance(n_reference, n_samples, FEATURES),
            "definitions": {m.name: m.help for m in METRICS}}


# --- a trained classifier's files ----------------------------------------------------------------------------

SIDECAR_KEYS = ("architecture", "num_classes", "image_shape", "accuracy", "heldout", "sha256", "data_sha256")


def classifier_path(data_path: str | pathlib.Path) -> pathlib.Path:
    """Where a data set's classifier lives by default: beside an .npz file (`faces.npz` ->
    `faces.classifier.msgpack`), inside a PNG folder (`faces/` -> `faces/classifier.msgpack`, which the image
    loader ignores). Its sidecar is the same name with .json (`sidecar_path`)."""
    path = pathlib.Path(data_path)
    if path.suffix.lower() == ".npz":
        return path.with_name(path.stem + ".classifier.msgpack")
    return path / "classifier.msgpack"


def sidecar_path(weights_path: str | pathlib.Path) -> pathlib.Path:
    return pathlib.Path(weights_path).with_suffix(".json")


def sha256_of(path: str | pathlib.Path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def save_classifier(params, path: str | pathlib.Path, image_shape, accuracy: float, heldout: int,
                    data_sha256: str) -> str:
    """Write params (flax msgpack) to `path` and its JSON sidecar (SIDECAR_KEYS: the image shape, held-out
    accuracy on `heldout` images, the weights' and the training data's sha256); returns the weights' sha256."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = flax.serialization.to_bytes(jax.device_get(params))
    path.write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    info = {"architecture": ARCHITECTURE, "num_classes": int(params["logits"]["bias"].shape[0]),
            "image_shape": [int(d) for d in image_shape], "accuracy": float(accuracy), "heldout": int(heldout),
            "sha256": digest, "data_sha256": data_sha256}
    sidecar_path(path).write_text(json.dumps(info, indent=2) + "\n")
    return digest


def _read_sidecar(path: pathlib.Path) -> dict:
    """The weights file's sidecar, checked for its keys; one DataError line if either file is missing."""
    sidecar = sidecar_path(path)
    if not path.is_file():
        raise DataError(f"classifier weights {path} not found; {RETRAIN_HINT}")
    try:
        info = json.loads(sidecar.read_text())
        missing = [k for k in SIDECAR_KEYS if k not in info]
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"classifier sidecar {sidecar} cannot be read ({type(e).__name__}); {RETRAIN_HINT}") from None
    if missing:
        raise DataError(f"classifier sidecar {sidecar} lacks {', '.join(missing)}; {RETRAIN_HINT}")
    return info


def load_classifier(path: str | pathlib.Path, data_sha256: str | None = None) -> tuple[dict, dict]:
    """(params, sidecar info) of a trained classifier, after checking the weights' sha256 against the sidecar's
    and, given `data_sha256` (`gan_jax.data.images.data_sha256`), that it was trained on that data."""
    path = pathlib.Path(path)
    info = _read_sidecar(path)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != info["sha256"]:
        raise DataError(f"classifier weights {path} have sha256 {digest}, but {sidecar_path(path).name} records "
                        f"{info['sha256']}: the file is corrupt or was replaced; {RETRAIN_HINT}")
    if data_sha256 is not None and data_sha256 != info["data_sha256"]:
        raise DataError(f"classifier {path} was trained on data with sha256 {info['data_sha256']}, not this data "
                        f"({data_sha256}); {RETRAIN_HINT} for this data, or pass its own classifier")
    return _params_from_bytes(path, raw, tuple(info["image_shape"]), info["num_classes"]), info


def _params_from_bytes(path: pathlib.Path, raw: bytes, image_shape: tuple, num_classes: int) -> dict:
    target = jax.eval_shape(functools.partial(init_params, image_shape=image_shape, num_classes=num_classes),
                            jax.random.key(0))
    try:
        return mnist_metrics.params_from_bytes(target, raw)
    except mnist_metrics.UnreadableParams as e:  # not a flax msgpack file, or another architecture's tree
        raise DataError(f"classifier weights {path} cannot be read as ImageClassifier params "
                        f"({e.kind}); {RETRAIN_HINT}") from None
    except mnist_metrics.ParamShapeMismatch:
        raise DataError(f"classifier weights {path} have other shapes than ImageClassifier for {image_shape} "
                        f"images and {num_classes} classes; {RETRAIN_HINT}") from None
