"""MNIST MLP GANs of references R2, R3 and R4, for many seeds in one program, on real MNIST.

    python -m experiments.mnist_gan --preset r2 --data-dir ../shared/data/mnist-test --seeds 4
    python -m experiments.mnist_gan --preset r4 --loss non_saturating_prob --data-dir ../shared/data/mnist-test
    python -m experiments.mnist_gan --preset dcgan --data-dir ../shared/data/mnist-test --seeds 2
    python -m experiments.mnist_gan --preset cgan --data-dir ../shared/data/mnist-test

Presets: r2 (TF1 MLP 100-128-128-784, leaky_relu 0.2, tanh output, Adam 1e-3, batch 100), r3 (r2 with
real labels 0.9 and dropout 0.3 in D), r4 (100-128-784 relu/sigmoid G, 784-128-1 relu D, the notebook's
"Xavier" N(0, 2/fan_in) init, Adam 1e-3, batch 128; `--loss non_saturating_prob` is its probability-form
"loss 1", the default `non_saturating` its stable logit form "loss 2"), dcgan (G: z ~ N(0, 1)^100 ->
dense 7x7x64 -> 4x4 stride-2 transposed convs to 14x14x32 and 28x28x1, batch norm and relu, tanh output;
D: 4x4 stride-2 convs 32, 64 with leaky_relu 0.2, dense logit; Adam 2e-4 beta1 0.5, batch 64; half the
usual DCGAN widths, so a CPU trains it in minutes), cgan (r2
with the digit's one-hot code concatenated to G's noise and to D's input; Adam beta1 0.5) and cdcgan
(dcgan, conditioned the same way, D's label as 10 constant channels). Images are scaled to [-1, 1] for a
tanh generator and [0, 1] for a sigmoid one. Without --data-dir, tensorflow-datasets provides the data.

Figures (in <run>/figures): D and G losses of every member, the first seed's samples every
--snapshot-every steps as a 4x4 grid (R4) and an 8x8 grid, an animated GIF of the 8x8 grids, and the
final 8x8 grid of every member. A conditional preset draws 10 x 8 grids, one row per digit 0-9.

Evaluation (MNIST): at every snapshot and at the end, each member's 2,000 samples are scored by the
shipped classifier (gan_jax.eval.mnist): classifier score, Frechet distance to 2,000 held-out real images,
digit classes covered, class KL, and for a conditional preset the share read as the asked-for digit. On the
10,000-image test split the GAN trains on 8,000 images and the other 2,000 are held out for this. The same
metrics of real images are printed beside them as the ceiling.
"""
from __future__ import annotations

import sys

from gan_jax import sweep as sweep_lib

sweep_lib.use_cpu_cores_as_devices()  # before any JAX computation

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import cli, experiment, plotting  # noqa: E402
from gan_jax.config import Config, DiscriminatorConfig, GeneratorConfig  # noqa: E402
from gan_jax.data import mnist  # noqa: E402
from gan_jax.eval import mnist as mnist_eval  # noqa: E402
from gan_jax.eval import stats  # noqa: E402
from gan_jax.train import GAN  # noqa: E402

_R2 = Config(data="mnist", latent_dim=100, noise="uniform",
             generator=GeneratorConfig(hidden=(128, 128), output_activation="tanh"),
             discriminator=DiscriminatorConfig(hidden=(128, 128), feature_dim=None),
             loss="non_saturating", optimizer="adam", batch_size=100, steps=5000, share_batch=False,
             log_every=50)
_DCGAN = Config(data="mnist", architecture="dcgan", image_shape=(28, 28, 1), latent_dim=100, noise="normal",
                generator=GeneratorConfig(hidden=(64, 32), activation="relu", output_activation="tanh"),
                discriminator=DiscriminatorConfig(hidden=(32, 64), feature_dim=None),
                loss="non_saturating", optimizer="adam", batch_size=64, steps=3000, share_batch=False,
                log_every=50)
PRESETS = {
    "r2": (_R2, {}),
    "r3": (_R2.replace(discriminator=DiscriminatorConfig(hidden=(128, 128), feature_dim=None, dropout=0.3)),
           {"real_label": 0.9}),
    "r4": (_R2.replace(generator=GeneratorConfig(hidden=(128,), activation="relu", output_activation="sigmoid",
                                                 kernel_init="r4_xavier"),
                       discriminator=DiscriminatorConfig(hidden=(128,), feature_dim=None, activation="relu",
                                                         kernel_init="r4_xavier"),
                       batch_size=128), {}),
    "dcgan": (_DCGAN, {"lr": 2e-4, "beta1": 0.5}),
    # r2's model; Adam b1 0.5, because with r2's b1 0.9 every seed collapsed to one class (README, Results)
    "cgan": (_R2.replace(num_classes=10), {"beta1": 0.5}),
    "cdcgan": (_DCGAN.replace(num_classes=10), {"lr": 2e-4, "beta1": 0.5}),
}


def parse(argv):
    preset_name = _preset_from(argv)
    preset, hp_defaults = PRESETS[preset_name]
    parser = cli.experiment_parser("mnist_gan", __doc__.split("\n")[0], preset, default_lr=1e-3)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="r2", help="reference configuration")
    parser.add_argument("--dataset", choices=list(mnist.TFDS_NAMES), default="mnist", help="dataset")
    parser.add_argument("--data-dir", default=None, help="directory of IDX files (offline); default: TFDS")
    parser.add_argument("--split", choices=["auto", "train", "test"], default="auto",
                        help="split to train on; auto: train if present, else test")
    parser.add_argument("--snapshot-every", type=cli.positive_int, default=500,
                        help="steps between sample grids and evaluations")
    parser.add_argument("--no-eval", action="store_true", help="skip the classifier metrics")
    parser.set_defaults(**hp_defaults)
    args = parser.parse_args(argv)
    if args.snapshot_every % args.log_every:
        parser.error(f"--snapshot-every {args.snapshot_every} must be a multiple of --log-every {args.log_every}")
    return parser, cli.resolve(parser, args, preset.replace(data=args.dataset), "mnist_gan")


def _preset_from(argv) -> str:
    """The --preset value, read first because the preset sets the other flags' defaults."""
    for i, arg in enumerate(argv):
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1] if arg.split("=", 1)[1] in PRESETS else "r2"
        if arg == "--preset" and i + 1 < len(argv) and argv[i + 1] in PRESETS:
            return argv[i + 1]
    return "r2"


def grid_latents(gan: GAN, seed: int):
    """Fixed grid inputs: 64 noise vectors, or for a conditional GAN 8 per digit, one row per digit."""
    if not gan.cfg.num_classes:
        return gan.sample_noise(jax.random.key(seed + 10_000), 64), None
    z = gan.sample_noise(jax.random.key(seed + 10_000), 8)
    return jnp.tile(z, (gan.cfg.num_classes, 1)), jnp.repeat(jnp.arange(gan.cfg.num_classes), 8)


def load_images(parser, args) -> tuple[mnist.ImageData, str]:
    """The training images and their split, or exit 2 with one line saying where to get them."""
    splits = ["train", "test"] if args.split == "auto" and args.data_dir else ["train" if args.split == "auto"
                                                                                else args.split]
    missing = None
    for split in splits:
        try:
            return mnist.load(args.dataset, split, args.data_dir), split
        except mnist.DataError as e:
            if "not found" not in str(e):  # a broken file is reported, not skipped
                parser.error(str(e))
            missing = missing or e
    parser.error(str(missing))


def split_heldout(args, data: mnist.ImageData, split: str) -> tuple[mnist.ImageData, np.ndarray | None]:
    """(training data, held-out images for the metrics or None). On the test split, the metrics' 2,000
    held-out images are taken out of training; training on the train split, they come from the test split."""
    if args.no_eval or args.dataset != "mnist":  # the classifier knows digits only
        return data, None
    if split == "test":
        (train, train_labels), (heldout, _) = mnist_eval.heldout_split(data.images, data.labels)
        return mnist.ImageData(train, train_labels), heldout
    try:
        test = mnist.load(args.dataset, "test", args.data_dir)
    except mnist.DataError as e:
        print(f"no evaluation: the held-out reference comes from the test split, which is missing ({e})")
        return data, None
    return data, mnist_eval.heldout_split(test.images, test.labels)[1][0]


def make_evaluate(gan: GAN, heldout: np.ndarray, train: np.ndarray, to_unit, seed: int):
    """`evaluate(sweep, state)` for experiment.run, and the real-data ceiling of the same metrics."""
    params = mnist_eval.load_classifier()
    metrics = mnist_eval.metrics_fn(params, mnist_eval.to_unit(heldout))
    ceiling = mnist_eval.real_reference(params, mnist_eval.to_unit(heldout), mnist_eval.to_unit(train))
    z, labels = gan.sample_latent(jax.random.key(seed + 20_000), mnist_eval.EVAL_SAMPLES)

    def sample_metrics(samples, labels=None):  # one function object, so Sweep.evaluate compiles it once
        return metrics(to_unit(samples), labels)

    return (lambda sweep, state: sweep.evaluate(state, z, sample_metrics, labels)), ceiling


def setup(argv) -> experiment.Setup:
    """The parsed experiment on its data, its GAN and its evaluation: what `main` and `experiments.sweep` run.
    Its extra_config carries the real-data ceiling of the metrics ("real_reference") and the scale."""
    parser, exp = parse(argv)
    data, split = load_images(parser, exp.args)
    print(f"{exp.args.dataset}/{split}: {len(data.images)} images from {exp.args.data_dir or 'tensorflow-datasets'}")
    data, heldout = split_heldout(exp.args, data, split)
    scale = "sigmoid" if exp.cfg.generator.output_activation == "sigmoid" else "tanh"
    labels = data.labels if exp.cfg.num_classes else None
    gan = GAN.from_config(exp.cfg, mnist.image_sampler(data.images, scale, labels), data_dim=784)
    extra = {"experiment": "mnist_gan", "preset": exp.args.preset, "split": split, "data_dir": exp.args.data_dir,
             "scale": scale, "train_images": len(data.images),
             "heldout_images": None if heldout is None else len(heldout)}
    if heldout is None:
        return experiment.Setup(exp, gan, None, extra)
    print(f"training on {len(data.images)} images; {len(heldout)} held out for the metrics")
    evaluate, extra["real_reference"] = make_evaluate(gan, heldout, data.images, to_unit_fn(scale), exp.seeds[0])
    return experiment.Setup(exp, gan, evaluate, extra)


def to_unit_fn(scale: str):
    """Generator outputs -> images in [0, 1]."""
    return (lambda x: (x + 1) / 2) if scale == "tanh" else (lambda x: x)


def main(argv=None):
    run = setup(sys.argv[1:] if argv is None else argv)
    exp, gan = run.exp, run.gan
    z_fixed, labels_fixed = grid_latents(gan, exp.seeds[0])
    to_unit = to_unit_fn(run.extra_config["scale"])
    frames: list[tuple[int, np.ndarray]] = []
    finals: list[np.ndarray] = []

    def on_chunk(sweep, state):
        fake = to_unit(np.asarray(sweep.gather(sweep.generate(state, z_fixed, labels_fixed))))
        fake = fake.reshape(sweep.n_members, -1, 28, 28)
        frames.append((int(sweep.gather(state.step)[0]), fake[0]))
        finals[:] = list(fake)

    result = experiment.run(exp, gan, exp.args.snapshot_every, on_chunk=on_chunk, evaluate=run.evaluate,
                            extra_config=run.extra_config)
    if not result.run.primary:
        return
    ceiling = run.extra_config.get("real_reference")
    if ceiling:
        result.summary["real_reference"] = ceiling
        result.run.write_json("summary.json", result.summary)
    write_figures(result, exp, frames, finals)
    print(experiment.throughput_line(result.summary))
    for name, summary in result.summary["over_seeds"].items():
        real = f"   (real data: {ceiling[name[5:]]:.4g})" if ceiling and name[5:] in ceiling else ""
        print(f"  {name[5:]:>17} over seeds: {stats.format_ci(summary)}{real}")
    print(f"run directory: {result.run.path}")


def write_figures(result, exp, frames, finals):
    fig_dir = result.run.figures
    plotting.loss_curves(result.steps, result.history["d_loss"], result.history["g_loss"],
                         fig_dir / "losses.png", exp.seeds)
    rows = exp.cfg.num_classes or 8  # conditional: one row per digit
    for step, images in frames:
        if not exp.cfg.num_classes:
            plotting.image_grid(images[:16], fig_dir / f"grid4x4_step{step:07d}.png", 4, f"step {step}")
        plotting.image_grid(images, fig_dir / f"grid{rows}x8_step{step:07d}.png", rows, f"step {step}")
    plotting.image_gif(frames, fig_dir / "samples.gif", rows, title=f"seed {exp.seeds[0]}")
    for seed, images in zip(exp.seeds, finals):
        plotting.image_grid(images, fig_dir / f"final_seed{seed}.png", rows, f"seed {seed}, step {exp.cfg.steps}")
    if result.evals:
        plotting.metric_bands(result.eval_steps, {k[5:]: v for k, v in result.evals.items()},
                              fig_dir / "eval_metrics.png")


if __name__ == "__main__":
    main()
