"""MNIST MLP GANs of references R2, R3 and R4, for many seeds in one program, on real MNIST.

    python -m experiments.mnist_gan --preset r2 --data-dir ../shared/data/mnist-test --seeds 4
    python -m experiments.mnist_gan --preset r4 --loss non_saturating_prob --data-dir ../shared/data/mnist-test

Presets: r2 (TF1 MLP 100-128-128-784, leaky_relu 0.2, tanh output, Adam 1e-3, batch 100), r3 (r2 with
real labels 0.9 and dropout 0.3 in D), r4 (100-128-784 relu/sigmoid G, 784-128-1 relu D, the notebook's
"Xavier" N(0, 2/fan_in) init, Adam 1e-3, batch 128; `--loss non_saturating_prob` is its probability-form
"loss 1", the default `non_saturating` its stable logit form "loss 2"). Images are scaled to [-1, 1] for a
tanh generator and [0, 1] for a sigmoid one. Without --data-dir, tensorflow-datasets provides the data.

Figures (in <run>/figures): D and G losses of every member, the first seed's samples every
--snapshot-every steps as a 4x4 grid (R4) and an 8x8 grid, an animated GIF of the 8x8 grids, and the
final 8x8 grid of every member.
"""
from __future__ import annotations

import sys

from gan_jax import sweep as sweep_lib

sweep_lib.use_cpu_cores_as_devices()  # before any JAX computation

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import cli, experiment, plotting  # noqa: E402
from gan_jax.config import Config, DiscriminatorConfig, GeneratorConfig  # noqa: E402
from gan_jax.data import mnist  # noqa: E402
from gan_jax.train import GAN  # noqa: E402

_R2 = Config(data="mnist", latent_dim=100, noise="uniform",
             generator=GeneratorConfig(hidden=(128, 128), output_activation="tanh"),
             discriminator=DiscriminatorConfig(hidden=(128, 128), feature_dim=None),
             loss="non_saturating", optimizer="adam", batch_size=100, steps=5000, share_batch=False,
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
    parser.add_argument("--snapshot-every", type=cli.positive_int, default=500, help="steps between sample grids")
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


def load_images(parser, args) -> tuple[np.ndarray, str]:
    """The training images and their split, or exit 2 with one line saying where to get them."""
    splits = ["train", "test"] if args.split == "auto" and args.data_dir else ["train" if args.split == "auto"
                                                                                else args.split]
    missing = None
    for split in splits:
        try:
            return mnist.load(args.dataset, split, args.data_dir).images, split
        except mnist.DataError as e:
            if "not found" not in str(e):  # a broken file is reported, not skipped
                parser.error(str(e))
            missing = missing or e
    parser.error(str(missing))


def main(argv=None):
    parser, exp = parse(sys.argv[1:] if argv is None else argv)
    images, split = load_images(parser, exp.args)
    print(f"{exp.args.dataset}/{split}: {len(images)} images from {exp.args.data_dir or 'tensorflow-datasets'}")
    scale = "sigmoid" if exp.cfg.generator.output_activation == "sigmoid" else "tanh"
    gan = GAN.from_config(exp.cfg, mnist.image_sampler(images, scale), data_dim=images.shape[1] * images.shape[2])
    z_fixed = gan.sample_noise(jax.random.key(exp.seeds[0] + 10_000), 64)
    to_unit = (lambda x: (x + 1) / 2) if scale == "tanh" else (lambda x: x)  # noqa: E731
    frames: list[tuple[int, np.ndarray]] = []
    finals: list[np.ndarray] = []

    def on_chunk(sweep, state):
        fake = to_unit(np.asarray(jax.device_get(sweep.generate(state, z_fixed)))).reshape(-1, 64, 28, 28)
        frames.append((int(jax.device_get(state.step)[0]), fake[0]))
        finals[:] = list(fake)

    result = experiment.run(exp, gan, exp.args.snapshot_every, on_chunk=on_chunk,
                            extra_config={"experiment": "mnist_gan", "preset": exp.args.preset, "split": split,
                                          "data_dir": exp.args.data_dir, "scale": scale})
    write_figures(result, exp, frames, finals)
    print(experiment.throughput_line(result.summary))
    print(f"run directory: {result.run.path}")


def write_figures(result, exp, frames, finals):
    fig_dir = result.run.figures
    plotting.loss_curves(result.steps, result.history["d_loss"], result.history["g_loss"],
                         fig_dir / "losses.png", exp.seeds)
    for step, images in frames:
        plotting.image_grid(images[:16], fig_dir / f"grid4x4_step{step:07d}.png", 4, f"step {step}")
        plotting.image_grid(images, fig_dir / f"grid8x8_step{step:07d}.png", 8, f"step {step}")
    plotting.image_gif(frames, fig_dir / "samples.gif", 8, title=f"seed {exp.seeds[0]}")
    for seed, images in zip(exp.seeds, finals):
        plotting.image_grid(images, fig_dir / f"final_seed{seed}.png", 8, f"seed {seed}, step {exp.cfg.steps}")


if __name__ == "__main__":
    main()
