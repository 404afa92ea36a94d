"""Train an evaluation classifier, MNIST's or (--data) one for your own labelled images, and write its weights.

MNIST's is gan_jax.metrics.mnist.Classifier; your images' gan_jax.metrics.images.ImageClassifier.

    python -m experiments.train_classifier                    # offline: ../shared/data/mnist-test, ~75 s
    python -m experiments.train_classifier --split train      # 60,000 TFDS training images (downloads)
    python -m experiments.train_classifier --data faces.npz   # your images: an .npz or a PNG folder, labelled

Default (--split test): the 10,000-image official test split from --data-dir (default
../shared/data/mnist-test); every 5th image (indices 4, 9, ...; gan_jax.metrics.mnist.heldout_split), 2,000
in all, is held out, as the metrics assume, and the other 8,000 train. --split train: the 60,000-image
training split (tensorflow-datasets, or IDX files in --data-dir) trains and the whole official test split
is held out (so the metrics' 2,000 held-out reference images stay unseen).

MNIST training: Adam with weight decay and a cosine schedule, on images randomly rotated (+-10 degrees), scaled
(+-10%) and shifted (+-2 pixels). The held-out accuracy must reach 98.5%, or the script exits 1 without
writing. It writes the weights (flax msgpack) to --out and prints the file's sha256; set CLASSIFIER_SHA256
in gan_jax/metrics/mnist.py to it when replacing the shipped file.

--data PATH (instead of --split and --data-dir): an .npz file or a folder of PNG files with labels, read by
gan_jax.data.images.load_images (an .npz `labels` array, or the PNGs in one subfolder per class). Every 5th
image (indices 4, 9, ...) is held out and the other 4/5 train, interleaved as MNIST's split, so data ordered
by class or source still gives a representative held-out part. Training: the same optimizer, about
DATA_STEPS = 2,000 steps by default, on images shifted by up to 1/16 of their size (edge pixels repeated),
the one distortion that keeps most image sets' classes. No accuracy is required: the script prints the
held-out accuracy, the data's and the weights' sha256, and writes the weights and their JSON sidecar to
--out (default beside the data: gan_jax.metrics.images.classifier_path).
"""
from __future__ import annotations

import functools
import math
import pathlib
import sys
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import cli
from gan_jax.data import images as image_data
from gan_jax.data import mnist as mnist_data
from gan_jax.errors import DataError
from gan_jax.metrics import images as image_metrics
from gan_jax.metrics import mnist

MIN_ACCURACY = 0.985
DEFAULT_DATA_DIR = "../shared/data/mnist-test"
ROTATE, SCALE, SHIFT = 0.17, 0.1, 2.0  # random distortions: +-10 degrees, +-10% size, +-2 pixels
EPOCHS = {"test": 30, "train": 5}  # ~1,900 and ~2,300 steps: about 75 s and 90 s on 2 CPU cores
DATA_STEPS = 2000  # --data's default training length
SHIFT_DIVISOR = 16  # --data: shifts of up to 1/16 of the image size (at least 1 pixel)
REPORTS = 20  # held-out accuracy printed about this many times (every epoch for MNIST's 30 or fewer)


def parse(argv):
    parser = cli.OneLineParser(prog="python -m experiments.train_classifier", description=__doc__.split("\n")[0],
                               formatter_class=cli.DefaultsFormatter)
    add = parser.add_argument
    add("--data", type=pathlib.Path, default=None,
        help="your labelled images, an .npz file or a folder of PNG files (one subfolder per class), instead "
             "of MNIST: every 5th held out")
    add("--split", choices=["test", "train"], default="test",
        help="test: hold out every 5th image of the test split (2,000), train on the other 8,000; "
             "train: train on the 60,000 training images, hold out the test split")
    add("--data-dir", type=pathlib.Path, default=None,
        help=f"directory of IDX files (default: {DEFAULT_DATA_DIR} for --split test, "
             "tensorflow-datasets for --split train)")
    add("--epochs", type=cli.positive_int, default=None,
        help=f"passes over the training images (default: {EPOCHS['test']} for --split test, "
             f"{EPOCHS['train']} for --split train, about {DATA_STEPS:,} steps' worth for --data)")
    add("--batch-size", type=cli.positive_int, default=128,
        help="batch size (at most 500 on CPU: larger batches hit an XLA convolution path ~40x slower)")
    add("--lr", type=cli.positive_float, default=3e-3, help="peak learning rate")
    add("--seed", type=cli.non_negative_int, default=0, help="random seed (init, order, distortions)")
    add("--out", type=pathlib.Path, default=None,
        help="where to write the weights (default: the shipped gan_jax/metrics/mnist_classifier.msgpack; with "
             "--data, beside the data: x.npz -> x.classifier.msgpack, folder -> folder/classifier.msgpack)")
    return parser, parser.parse_args(argv)


def load_data(parser, args):
    """((train images, labels), (held-out images, labels)) as uint8, or exit 2 naming the problem."""
    data_dir = args.data_dir if args.data_dir is not None else (DEFAULT_DATA_DIR if args.split == "test" else None)
    try:
        if args.split == "test":
            test = mnist_data.load("mnist", "test", data_dir)
            return mnist.heldout_split(test.images, test.labels)
        train = mnist_data.load("mnist", "train", data_dir)
        test = mnist_data.load("mnist", "test", data_dir)
    except (mnist_data.DataError, ValueError) as e:
        parser.error(parser.as_flags(str(e)))
    return (train.images, train.labels), (test.images, test.labels)


def augment(key, images):
    """Each image [n, 28, 28] rotated by up to ROTATE radians, scaled by 1 +- SCALE and moved by up to SHIFT
    pixels (bilinear, zero fill): the small distortions of handwriting, so 8,000 images suffice."""
    k_rot, k_scale, k_shift = jax.random.split(key, 3)
    n = images.shape[0]
    angle = jax.random.uniform(k_rot, (n,), minval=-ROTATE, maxval=ROTATE)
    scale = jax.random.uniform(k_scale, (n,), minval=1 - SCALE, maxval=1 + SCALE)
    offset = jax.random.uniform(k_shift, (n, 2), minval=-SHIFT, maxval=SHIFT)
    grid = jnp.stack(jnp.meshgrid(jnp.arange(28.0), jnp.arange(28.0), indexing="ij")) - 13.5  # [2, 28, 28]

    def warp(image, a, s, o):
        c, si = jnp.cos(a), jnp.sin(a)
        y, x = grid[0] - o[0], grid[1] - o[1]
        src = jnp.stack([(c * y - si * x) / s, (si * y + c * x) / s]) + 13.5
        return jax.scipy.ndimage.map_coordinates(image, list(src), order=1, mode="constant", cval=0.0)

    return jax.vmap(warp)(images, angle, scale, offset)


def shift(key, images):
    """Each image [n, h, w, c] moved by up to max(1, min(h, w) // SHIFT_DIVISOR) pixels along each axis, the
    pixels shifted in copying the edge: small translations keep most image sets' classes (flips need not)."""
    n, height, width, channels = images.shape
    s = max(1, min(height, width) // SHIFT_DIVISOR)
    padded = jnp.pad(images, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (n, 2), 0, 2 * s + 1)
    crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (height, width, channels))  # noqa: E731
    return jax.vmap(crop)(padded, offsets)


class Model(NamedTuple):
    """What training needs of a classifier."""

    init: Callable  # key -> params
    distort: Callable  # (key, images in [0, 1], as the uint8 data's layout) -> images
    classify: Callable  # (params, images in [0, 1]) -> (logits, features)
    unit: Callable  # uint8 images -> the floats in [0, 1] that `accuracy` takes
    accuracy: Callable  # (params, unit images, labels) -> float


MNIST = Model(mnist.init_params, augment, mnist.classify, mnist.to_unit, mnist.accuracy)


def image_model(image_shape, num_classes: int) -> Model:
    """gan_jax.metrics.images.ImageClassifier for `num_classes` classes of images of `image_shape`."""
    return Model(lambda key: image_metrics.init_params(key, image_shape, num_classes), shift,
                 image_metrics.classify, image_metrics.to_unit, image_metrics.accuracy)


def make_step(optimizer, model: Model):
    """A jitted update on one randomly distorted batch of uint8 images. (A Python loop over it runs ~10x faster
    on CPU than the same step inside lax.scan, where XLA's CPU convolutions lose their fast path.)"""

    def loss_fn(params, images, labels):
        logits, _ = model.classify(params, images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, key, images, labels):
        batch = model.distort(key, images.astype(jnp.float32) / 255.0)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def train(args, train_set, heldout, model: Model = MNIST):
    images, labels = train_set
    steps_per_epoch = len(images) // args.batch_size
    total = args.epochs * steps_per_epoch
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(steps_per_epoch, total // 10), total)
    optimizer = optax.adamw(schedule, weight_decay=1e-4)
    key = jax.random.key(args.seed)
    params = model.init(jax.random.fold_in(key, 0))
    opt_state = optimizer.init(params)
    step = make_step(optimizer, model)
    held_images, held_labels = model.unit(heldout[0]), heldout[1]
    rng = np.random.default_rng(args.seed)
    report_every = max(1, args.epochs // REPORTS)
    for e in range(args.epochs):
        start = time.perf_counter()
        order = rng.permutation(len(images))[:steps_per_epoch * args.batch_size].reshape(steps_per_epoch, -1)
        keys = jax.random.split(jax.random.fold_in(key, e + 1), steps_per_epoch)
        losses = []
        for k, idx in zip(keys, order):
            params, opt_state, loss = step(params, opt_state, k, images[idx], labels[idx])
            losses.append(loss)
        if (e + 1) % report_every == 0 or e + 1 == args.epochs:
            acc = model.accuracy(params, held_images, held_labels)
            print(f"epoch {e + 1}/{args.epochs}: loss {float(np.mean(losses)):.4f}, held-out accuracy {acc:.2%} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    return params, acc


def check_batch_size(parser, args, n_train: int) -> None:
    if args.batch_size > n_train:
        parser.error(f"--batch-size {args.batch_size} exceeds the {n_train} training images")


def main_mnist(parser, args):
    args.out = args.out or mnist.CLASSIFIER_FILE
    args.epochs = args.epochs or EPOCHS[args.split]
    train_set, heldout = load_data(parser, args)
    check_batch_size(parser, args, len(train_set[0]))
    print(f"training on {len(train_set[0])} images, {len(heldout[0])} held out ({args.split} split)", flush=True)
    params, acc = train(args, train_set, heldout)
    print(f"held-out accuracy: {acc:.2%} ({len(heldout[0])} images)")
    if acc < MIN_ACCURACY:
        sys.exit(f"error: held-out accuracy {acc:.2%} is below the required {MIN_ACCURACY:.1%}; nothing written "
                 "(train longer with --epochs, or try another --seed)")
    digest = mnist.save_classifier(params, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)\nsha256: {digest}")
    if args.out.resolve() == mnist.CLASSIFIER_FILE.resolve() and digest != mnist.CLASSIFIER_SHA256:
        print(f"set CLASSIFIER_SHA256 = \"{digest}\" in gan_jax/metrics/mnist.py to ship this file")


def load_labelled(parser, args):
    """--data's images and labels, or exit 2 with one line: unreadable, unlabelled, too few or too small."""
    if args.data_dir is not None:
        parser.error("give --data (your images) or --data-dir (MNIST's IDX files), not both")
    try:
        data = image_data.load_images(args.data)
    except DataError as e:
        parser.error(str(e))
    where = f"--data {args.data}"
    if data.labels is None:
        parser.error(f"{where} has no labels, and a classifier needs labels: save an .npz `labels` array, or put "
                     "the PNGs in one subfolder per class")
    height, width = data.images.shape[1:3]
    problems = [(len(np.unique(data.labels)) < 2, "has one class; a classifier needs at least 2"),
                (len(data.images) < 2 * mnist.HELDOUT_EVERY, f"has {len(data.images)} images; at least "
                 f"{2 * mnist.HELDOUT_EVERY} are needed to hold out every {mnist.HELDOUT_EVERY}th"),
                (min(height, width) < image_metrics.MIN_SIZE, f"has {height}x{width} images; the classifier needs "
                 f"height and width >= {image_metrics.MIN_SIZE}")]
    for bad, message in problems:
        if bad:
            parser.error(f"{where} {message}")
    return data


def main_images(parser, args):
    data = load_labelled(parser, args)
    train_set, heldout = mnist.heldout_split(data.images, data.labels)
    image_shape, num_classes = data.images.shape[1:], int(data.labels.max()) + 1
    check_batch_size(parser, args, len(train_set[0]))
    args.out = args.out or image_metrics.classifier_path(args.data)
    args.epochs = args.epochs or math.ceil(DATA_STEPS / (len(train_set[0]) // args.batch_size))
    print(f"training on {len(train_set[0])} images of {'x'.join(map(str, image_shape))}, {len(heldout[0])} held "
          f"out (every {mnist.HELDOUT_EVERY}th of {args.data}), {num_classes} classes", flush=True)
    params, acc = train(args, train_set, heldout, image_model(image_shape, num_classes))
    digest_data = image_data.data_sha256(data)
    digest = image_metrics.save_classifier(params, args.out, image_shape, acc, len(heldout[0]), digest_data)
    print(f"held-out accuracy: {acc:.2%} ({len(heldout[0])} images)\ndata sha256: {digest_data}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {image_metrics.sidecar_path(args.out)}\n"
          f"sha256: {digest}")


def main(argv=None):
    parser, args = parse(sys.argv[1:] if argv is None else argv)
    if args.data is not None:
        main_images(parser, args)
    else:
        main_mnist(parser, args)


if __name__ == "__main__":
    main()
