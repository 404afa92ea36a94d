"""Reference R1: the TF1 toy GAN on the quadratic curve (x, 10 + x^2), for many seeds in one program.

    python -m experiments.toy_quadratic                 # quick default: 8 seeds x 10,000 steps, ~1 min on 2 CPU cores
    python -m experiments.toy_quadratic --full          # the tutorial's 100,001 iterations
    python -m experiments.toy_quadratic --data ring8    # the other toy datasets, same model

Figures (in <run>/figures): the real data, D and G loss curves of every member, real vs generated samples
every --snapshot-every steps (PNG grid and GIF), D's 2-D feature space before and after a D update and a
G update, with centroids (when D has a 2-unit feature layer, as R1), and the sample-quality metrics (gan_jax.eval.toy) against step with a 95% band
over seeds. The metrics are measured on 2,500 samples per member at every snapshot.
"""
from __future__ import annotations

import dataclasses
import sys

from gan_jax import sweep as sweep_lib

sweep_lib.use_cpu_cores_as_devices()  # before any JAX computation

import jax  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import cli, data, experiment, models, plotting  # noqa: E402
from gan_jax.eval import stats  # noqa: E402
from gan_jax.eval import toy as toy_eval  # noqa: E402
from gan_jax.config import Config  # noqa: E402
from gan_jax.train import GAN, TrainState  # noqa: E402

R1 = Config()  # the config defaults are R1: widths 16/16, D's 2-unit feature layer, RMSProp 1e-3, batch 256
R1_FULL_STEPS = 100_001
EVAL_SAMPLES = 2500  # samples per member for the metrics (the VEEGAN / PacGAN protocol's count)


def parse(argv):
    parser = cli.experiment_parser("toy_quadratic", __doc__.split("\n")[0], R1, default_lr=1e-3)
    parser.set_defaults(seeds=8)
    parser.add_argument("--full", action="store_true", help=f"the tutorial's {R1_FULL_STEPS:,} iterations")
    parser.add_argument("--data", choices=sorted(data.TOY_DATASETS), default=R1.data, help="toy dataset")
    parser.add_argument("--raw-data", action="store_true",
                        help="train on the tutorial's raw units instead of standardized data")
    parser.add_argument("--snapshot-every", type=cli.positive_int, default=1000,
                        help="steps between sample snapshots (a multiple of --log-every)")
    parser.add_argument("--g-hidden", type=cli.widths, default=R1.generator.hidden, help="G's hidden widths")
    parser.add_argument("--d-hidden", type=cli.widths, default=R1.discriminator.hidden, help="D's hidden widths")
    parser.add_argument("--feature-dim", type=cli.non_negative_int, default=R1.discriminator.feature_dim,
                        help="width of D's linear feature layer; 0: none (features = last hidden layer)")
    parser.add_argument("--activation", choices=sorted(models.ACTIVATIONS), default=R1.generator.activation,
                        help="hidden activation of both nets")
    parser.add_argument("--latent-dim", type=cli.positive_int, default=R1.latent_dim, help="z's dimension")
    args = parser.parse_args(argv)
    if args.full:
        args.steps = R1_FULL_STEPS
    if args.snapshot_every % args.log_every:
        parser.error(f"--snapshot-every {args.snapshot_every} must be a multiple of --log-every {args.log_every}")
    cfg = R1.replace(data=args.data, standardize=not args.raw_data, latent_dim=args.latent_dim,
                     generator=dataclasses.replace(R1.generator, hidden=args.g_hidden, activation=args.activation),
                     discriminator=dataclasses.replace(R1.discriminator, hidden=args.d_hidden,
                                                       feature_dim=args.feature_dim or None,
                                                       activation=args.activation))
    return cli.resolve(parser, args, cfg, "toy_quadratic")


def feature_views(gan: GAN, state: TrainState, hp, key) -> list[dict[str, np.ndarray]]:
    """D's features of one batch (real x, fake G(z)) before a D update, after it (= before the G update),
    and after the G update, for one member. As in R1, both updates use that same batch."""
    k_data, k_noise, k_drop = jax.random.split(key, 3)
    real = gan.sample_data(k_data, gan.cfg.batch_size)
    z = gan.sample_noise(k_noise, gan.cfg.batch_size)

    def view(s):
        return {"real": np.asarray(gan.discriminate(s.d_params, real)[1]),
                "fake": np.asarray(gan.discriminate(s.d_params, gan.generate(s.g_params, z))[1])}

    views = [view(state)]
    state, _ = gan.d_update(state, hp, real, z, k_drop)
    views.append(view(state))
    state, _ = gan.g_update(state, hp, z, k_drop)
    views.append(view(state))
    return views


def setup(argv) -> experiment.Setup:
    """The parsed experiment, its GAN and its evaluation: what `main` and `experiments.sweep` run."""
    exp = parse(argv)
    dataset = data.get_dataset(exp.cfg.data)
    gan = GAN.from_config(exp.cfg)
    metric_fn = toy_eval.metrics_fn(dataset)
    k_eval = jax.random.key(exp.seeds[0] + 30_000)
    real_eval = dataset.sample(k_eval, EVAL_SAMPLES)
    z_eval = gan.sample_noise(jax.random.fold_in(k_eval, 1), EVAL_SAMPLES)

    def sample_metrics(samples):  # one function object, so Sweep.evaluate compiles it once
        return metric_fn(dataset.to_raw(samples, exp.cfg.standardize), real_eval)

    return experiment.Setup(exp, gan, lambda sweep, state: sweep.evaluate(state, z_eval, sample_metrics),
                            {"experiment": "toy_quadratic", "reference": "R1", "eval_samples": EVAL_SAMPLES})


def main(argv=None):
    run = setup(sys.argv[1:] if argv is None else argv)
    exp, gan = run.exp, run.gan
    dataset = data.get_dataset(exp.cfg.data)
    to_raw = lambda x: dataset.to_raw(np.asarray(x), exp.cfg.standardize)  # noqa: E731
    k_real, k_z, k_feat = jax.random.split(jax.random.key(exp.seeds[0] + 10_000), 3)
    real = np.asarray(dataset.sample(k_real, 1024))
    z_fixed = gan.sample_noise(k_z, 512)
    snapshots: list[tuple[int, np.ndarray]] = []  # member 0's samples, in the data's units
    final_fakes: list[np.ndarray] = []  # every member's latest samples

    def on_chunk(sweep, state):
        fake = sweep.gather(sweep.generate(state, z_fixed))
        snapshots.append((int(sweep.gather(state.step)[0]), to_raw(fake[0])))
        final_fakes[:] = [to_raw(f) for f in fake]

    result = experiment.run(exp, gan, exp.args.snapshot_every, on_chunk=on_chunk, evaluate=run.evaluate,
                            extra_config=run.extra_config)
    member0 = jax.tree.map(lambda a: a[0], result.sweep.gather(result.state))  # a collective: every process
    if result.run.primary:
        write_figures(result, gan, exp, real, snapshots, final_fakes, member0, k_feat)
        print_summary(result)


def write_figures(result, gan, exp, real, snapshots, final_fakes, member0, key):
    fig_dir = result.run.figures
    name = exp.cfg.data
    plotting.real_data(real, fig_dir / "real_data.png", f"real data: {name}")
    plotting.loss_curves(result.steps, result.history["d_loss"], result.history["g_loss"],
                         fig_dir / "losses.png", exp.seeds)
    plotting.snapshot_grid(snapshots, real, fig_dir / "samples_grid.png", title=f"seed {exp.seeds[0]}")
    plotting.snapshot_gif(snapshots, real, fig_dir / "samples.gif", title=f"seed {exp.seeds[0]}")
    plotting.snapshot_grid([(f"seed {s}", f) for s, f in zip(exp.seeds, final_fakes)][:16], real,
                           fig_dir / "final_samples_per_seed.png", max_panels=16,
                           title=f"step {exp.cfg.steps}, every member")
    if exp.cfg.discriminator.feature_dim == 2:  # R1's plottable feature layer
        before_d, after_d, after_g = feature_views(gan, member0, exp.hparams.as_arrays(), key)
        plotting.feature_space(before_d, after_d, fig_dir / "features_d_update.png", "D")
        plotting.feature_space(after_d, after_g, fig_dir / "features_g_update.png", "G")
    plotting.metric_bands(result.eval_steps, {k[5:]: v for k, v in result.evals.items()},
                          fig_dir / "eval_metrics.png")


def print_summary(result):
    s = result.summary
    print(experiment.throughput_line(s))
    for m in s["members"]:
        evals = "  ".join(f"{k[5:]} {v:.4g}" for k, v in m.items() if k.startswith("eval_"))
        print(f"  seed {m['seed']}: d_loss {m['d_loss']:.3f}  g_loss {m['g_loss']:.3f}  "
              f"D(real) {m['d_real']:.3f}  D(fake) {m['d_fake']:.3f}  {evals}")
    for name, summary in s["over_seeds"].items():
        print(f"  {name[5:]} over seeds: {stats.format_ci(summary)}")
    print(f"run directory: {result.run.path}")


if __name__ == "__main__":
    main()
