"""Your own images: an `.npz` (uint8 [N, H, W, C], optional `labels`) or a folder of PNGs at any size a
DCGAN can be built for (the network's depth follows the shape), with evaluation.

Every HELDOUT_EVERY-th image (up to MAX_REFERENCE of them) is held out as the metrics' real reference; the
rest train. The metrics (`gan_jax.metrics.images`) are measured in the features of the data's own
classifier when one has been trained (`python -m experiments.train_classifier --data PATH`, found beside the
data) and the data has labels; otherwise in the features of a fixed randomly initialised network (Naeem et
al. 2020; Lee, Kim & Lee 2022), and the run says so. The ceiling: as many training images against the same
reference.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib

import jax.numpy as jnp
import numpy as np

from gan_jax.components import models
from gan_jax.core import pieces
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.core.streams import stream_key
from gan_jax.data import images as image_data, mnist
from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import images as image_metrics
from gan_jax.tasks import base, mnist as mnist_task

HELDOUT_EVERY = 5  # images 4, 9, 14, ... are the reference, as MNIST's held-out split
MAX_REFERENCE = 2000  # reference images and evaluation samples per member (MNIST's count)


@dataclasses.dataclass(frozen=True)
class Images:
    """An image set split for a run: what trains, the metrics' reference, where it came from."""

    train: mnist.ImageData  # uint8 [n, h, w, c], labels or None
    reference: np.ndarray | None  # uint8 held-out images; None: no evaluation
    path: str
    sha256: str
    classifier: pathlib.Path | None  # the trained classifier the metrics use, if any
    num_classes: int  # 0 without labels
    classifier_data_sha256: str | None = None  # the data the classifier must have been trained on (None: any)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.train.images.shape[1:])


def split(data: mnist.ImageData) -> tuple[mnist.ImageData, np.ndarray]:
    """(training part, reference): every HELDOUT_EVERY-th image held out, at most MAX_REFERENCE of them."""
    held = np.zeros(len(data.images), bool)
    held[HELDOUT_EVERY - 1::HELDOUT_EVERY] = True
    labels = None if data.labels is None else data.labels[~held]
    return mnist.ImageData(data.images[~held], labels), data.images[held][:MAX_REFERENCE]


def load(path, classifier=None, evaluate: bool = True) -> Images:
    """The image set at `path`, split; its classifier (`classifier`, else the default one beside the data,
    if trained) when it has labels."""
    if path is None:
        raise DataError("`data`: give an .npz of uint8 images [N, H, W, C] or a folder of PNGs")
    data = image_data.load_images(path)
    digest = image_data.data_sha256(data)
    num_classes = 0 if data.labels is None else int(data.labels.max()) + 1
    train, reference = split(data) if evaluate else (data, None)
    if reference is not None and len(reference) <= image_metrics.MIN_IMAGES:
        raise DataError(f"`data`: {path} has {len(data.images)} images, too few to hold out a reference of more "
                        f"than {image_metrics.MIN_IMAGES}; give at least {HELDOUT_EVERY * (image_metrics.MIN_IMAGES + 1)}"
                        " images, or pass --no-eval")
    found = pathlib.Path(classifier) if classifier else image_metrics.classifier_path(path)
    if classifier and not found.is_file():
        raise DataError(f"`classifier`: {found} not found; train it with `python -m experiments.train_classifier "
                        f"--data {path}`")
    use = found if found.is_file() and num_classes else None
    return Images(train, reference, str(path), digest, use, num_classes, digest)


def feature_networks(data: Images) -> tuple:
    """(feature_fn, classify_fn or None, provenance kind, note or None): the data's classifier if trained,
    else the random network."""
    if data.classifier is not None:
        params, _ = image_metrics.load_classifier(data.classifier, data.classifier_data_sha256)
        feature_fn, classify_fn = image_metrics.classifier_fns(params)
        return feature_fn, classify_fn, "classifier", None
    why = ("it has no labels" if not data.num_classes else
           f"no classifier has been trained for it; train one with `python -m experiments.train_classifier --data "
           f"{data.path}`")
    note = (f"metrics in the features of a randomly initialised network (seed {image_metrics.RANDOM_FEATURES_SEED}): "
            f"{data.path}: {why}")
    return image_metrics.random_features(data.shape), None, "random", note


class ImagesTask(base.Task):
    """An image set from files (.npz or PNG folder), the MNIST task's figures."""

    name = "images"
    description = "your own images: an .npz of uint8 [N, H, W, C] (optional labels) or a folder of PNGs"
    presets = ("dcgan", *(p for p in mnist_task.TASK.presets if p != "dcgan"))
    metrics = image_metrics.METRICS

    def add_flags(self, parser, cfg: Config) -> None:
        add = parser.add_argument
        add("--data", default=None, help="an .npz (uint8 images [N, H, W, C], optional labels [N]) or a folder of "
                                         "PNGs (one subfolder per class gives labels)")
        add("--classifier", default=None, help="the data's trained classifier (default: the one beside the data, "
                                               "if trained; else a random network's features)")
        add("--no-eval", action="store_true", help="skip the metrics")

    def load(self, args) -> Images:
        return load(args.data, args.classifier, evaluate=not args.no_eval)

    def configure(self, cfg: Config, args, data: Images) -> Config:
        """The data's shape; for a DCGAN left at the preset's widths, the widths that shape calls for."""
        if cfg.num_classes and not data.num_classes:
            raise ConfigError(f"`preset`: {args.preset} is conditional, but {data.path} has no labels; choose an "
                              "unconditional preset (dcgan, r2) or give labels")
        if cfg.architecture == "dcgan" and (args.g_hidden, args.d_hidden) == (cfg.generator.hidden,
                                                                            cfg.discriminator.hidden):
            args.g_hidden, args.d_hidden = models.dcgan_widths(data.shape)
        return cfg.replace(data=self.name, image_shape=data.shape,
                           num_classes=data.num_classes if cfg.num_classes else 0)

    def make_gan(self, cfg: Config, data: Images) -> GAN:
        labels = data.train.labels if cfg.num_classes else None
        sampler = mnist.image_sampler(data.train.images, mnist_task.scale_of(cfg), labels, record_data=False)
        return GAN.from_config(cfg, pieces.named(sampler, f"images:{pathlib.Path(data.path).name}"),
                               data_dim=int(np.prod(data.shape)))

    def describe(self, data: Images) -> dict:
        return {"data_path": data.path, "data_sha256": data.sha256, "train_images": len(data.train.images),
                "reference_images": None if data.reference is None else len(data.reference)}

    def scorer(self, cfg: Config, data: Images) -> base.Scorer | None:
        """The feature network's metrics of uint8 samples against the reference; as many training images the
        ceiling."""
        if data.reference is None:
            return None
        feature_fn, classify_fn, kind, note = feature_networks(data)
        reference = image_metrics.to_unit(data.reference)
        metric_fn = functools.lru_cache(lambda n: image_metrics.metrics_fn(feature_fn, reference, classify_fn, n))
        ceiling = image_metrics.real_reference(feature_fn, reference,
                                               image_metrics.to_unit(data.train.images[:len(reference)]), classify_fn)
        provenance = {**image_metrics.provenance(len(reference), len(reference), kind, data.classifier),
                      "samples_read_as": mnist_task.QUANTIZED}
        return base.Scorer(lambda x, labels=None: metric_fn(len(x))(x.astype(jnp.float32) / 255, labels), self.metrics,
                           ceiling, provenance, note, prepare=metric_fn)

    def sample_latents(self, gan: GAN, data: Images | None = None):
        """The evaluation's latents: one sample per reference image."""
        n = MAX_REFERENCE if data is None or data.reference is None else len(data.reference)
        return gan.sample_latent(stream_key("evaluation"), n)

    def encode(self, cfg: Config):
        return mnist_task.as_uint8(cfg)

    def snapshots(self, gan: GAN):
        return mnist_task.Snapshots(gan)

    def write_figures(self, result, gan: GAN, snapshots, members) -> None:
        if result.run.primary:
            mnist_task.write_figures(result, gan.cfg, snapshots)


TASK = ImagesTask()
