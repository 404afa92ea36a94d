"""Draw samples from a finished run's member, without training: an .npz in the task's encoding (e.g.
uint8 images) or a .png (an image grid, or a scatter plot of 2-D data).

    python -m experiments.sample runs/dcgan --best frechet_distance --n 2000 --out dcgan_best.npz
    python -m experiments.sample runs/r1 --member 3 --step 5000 --out r1_member3.png

Samples come from the member's generator average, with the run's own evaluation latents (the evaluation
stream), so a run's samples.npz row and `--member K` with the same --n agree.
"""
import pathlib
import sys

import numpy as np

from gan_jax import cli, runs
from gan_jax.reporting import plotting


def parse(argv):
    parser = cli.OneLineParser(prog="python -m experiments.sample", description=__doc__.split("\n")[0],
                               formatter_class=cli.DefaultsFormatter)
    parser.add_argument("run", type=pathlib.Path, help="the run directory")
    parser.add_argument("--step", type=cli.non_negative_int, default=None, help="the checkpoint (default: the latest)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--member", type=cli.non_negative_int, default=None, help="the member's index (default: 0)")
    which.add_argument("--best", default=None, help="the member with the best final value of this metric")
    parser.add_argument("--n", type=cli.positive_int, default=None,
                        help="samples to draw (default: as many as the run's samples.npz, with its latents)")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="the .npz or .png to write")
    args = parser.parse_args(argv)
    if args.out.suffix not in (".npz", ".png"):
        parser.error(f"--out {args.out}: give a .npz or .png file")
    return parser, args


def main(argv=None):
    parser, args = parse(sys.argv[1:] if argv is None else argv)
    with cli.exit_on_error(parser):
        run = runs.load(args.run, args.step)
        member = run.member(args.member, args.best)
        z, labels = run.latents(args.n)
        samples = run.encode(run.generate(member, z=z, labels=labels))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    title = f"{args.run.name}: member {member} (seed {run.seeds[member]}), step {run.step}"
    if args.out.suffix == ".npz":
        extra = {} if labels is None else {"labels": np.asarray(labels)}
        np.savez_compressed(args.out, samples=samples, member=member, seed=run.seeds[member], step=run.step, **extra)
    elif run.cfg.image_shape:
        h, w, c = run.cfg.image_shape
        images = samples.reshape((-1, h, w) if c == 1 else (-1, h, w, c))[:64]
        plotting.image_grid(images.astype(np.float32) / 255 if images.dtype == np.uint8 else images, args.out,
                            rows=int(np.ceil(len(images) / 8)), title=title)
    else:
        plotting.real_data(samples, args.out, title)
    print(f"{len(samples)} samples of member {member} (seed {run.seeds[member]}) at step {run.step}: {args.out}")


if __name__ == "__main__":
    main()
