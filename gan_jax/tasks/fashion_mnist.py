"""Fashion-MNIST (Xiao et al. 2017): 28x28 grey images of 10 kinds of clothing, from IDX files (Debian's
`dataset-fashion-mnist` installs them offline under DEFAULT_DATA_DIR), measured in the features of a
classifier shipped with gan_jax, trained on the training split (48,000 of its 60,000 images; every 5th
held out: 92.3% correct there, 91.9% on the test split).

The GAN trains on the training split; every 5th test image (2,000) is the metrics' real reference, and
2,000 training images against it are the ceiling (most of them seen by the classifier in its training: a
small bias of the ceiling, none of the members' numbers). With only the test split present, it trains on the other
8,000 test images, as the MNIST task does.
"""
from __future__ import annotations

import pathlib

from gan_jax.data import images as image_data, mnist
from gan_jax.errors import DataError
from gan_jax.metrics import images as image_metrics
from gan_jax.tasks import images as images_task

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
CLASSIFIER_FILE = pathlib.Path(__file__).parents[1] / "metrics" / "fashion_mnist_classifier.msgpack"
CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def load(data_dir=DEFAULT_DATA_DIR, evaluate: bool = True) -> images_task.Images:
    """The training split (or, without it, the test split less its reference) and the test split's every
    5th image as the reference; the shipped classifier."""
    test = mnist.load_idx(data_dir, "test")
    try:
        train = mnist.load_idx(data_dir, "train")
        reference = images_task.split(test)[1]
    except DataError as e:
        if "not found" not in str(e):
            raise
        train, reference = images_task.split(test)
    if evaluate and len(reference) <= image_metrics.MIN_IMAGES:
        raise DataError(f"`data_dir`: {data_dir}'s test split holds {len(test.images)} images, too few for a "
                        f"reference of more than {image_metrics.MIN_IMAGES}; give the full split, or --no-eval")
    as_channels = lambda x: x[..., None] if x.ndim == 3 else x  # noqa: E731
    train = mnist.ImageData(as_channels(train.images), train.labels)
    digest = image_data.data_sha256(train)
    classifier = CLASSIFIER_FILE if CLASSIFIER_FILE.is_file() else None
    return images_task.Images(train, as_channels(reference) if evaluate else None, str(data_dir), digest,
                              classifier, len(CLASSES))


class FashionMnistTask(images_task.ImagesTask):
    name = "fashion_mnist"
    description = "Fashion-MNIST (IDX files; Debian's dataset-fashion-mnist), scored by its shipped classifier"

    def add_flags(self, parser, cfg) -> None:
        parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="directory of Fashion-MNIST's IDX files")
        parser.add_argument("--no-eval", action="store_true", help="skip the metrics")

    def load(self, args) -> images_task.Images:
        return load(args.data_dir, evaluate=not args.no_eval)


TASK = FashionMnistTask()
