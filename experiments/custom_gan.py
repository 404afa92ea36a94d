"""Write your own experiment: a new sampler, loss and metric, 8 seeds x 2 learning rates in one program.
Run `python -m experiments.custom_gan --out runs/spiral`; add `--steps 6000 --resume` to continue it."""
import argparse
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

import gan_jax as gj


def spiral(key, n):
    """The data: a noisy spiral (any pure (key, n) -> float32[n, dim] is a sampler)."""
    k_t, k_noise = jax.random.split(key)
    t = 3 * jnp.pi * jnp.sqrt(jax.random.uniform(k_t, (n,)))
    return jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], -1) / 5 + 0.05 * jax.random.normal(k_noise, (n, 2))


# The loss: LSGAN with targets -1 (fake) and 1 (real), and 0 for G (Mao et al. 2017, a=-1, b=1, c=0).
lsgan = gj.GANLoss(lambda real, fake, real_label: 0.5 * jnp.mean((real - 1) ** 2) + 0.5 * jnp.mean((fake + 1) ** 2),
                   lambda fake: 0.5 * jnp.mean(fake ** 2))


def nearest_real(samples, real):
    """The metric: mean distance from a generated point to its nearest real one (lower is better)."""
    return {"nearest_real": jnp.mean(jnp.min(jnp.linalg.norm(samples[:, None] - real[None], axis=-1), axis=1))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/custom_gan")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    gj.use_cpu_cores_as_devices()
    preset = gj.presets.get("ring8")  # its 128x3 MLPs and Adam settings on our data and loss; no penalty, no G average
    gan = dataclasses.replace(gj.GAN.from_config(preset.config.replace(gradient_penalty="none"), spiral, 2), loss=lsgan)
    hp = preset.hparams.replace(gp_weight=0.0, ema_decay=0.0)
    members = gj.grid(range(8), hp, lr=[1e-4, 3e-4])  # 16 members: the same 8 seeds at each rate, one program
    k_real, k_z = jax.random.split(gj.stream_key("evaluation"))  # the same draws for every member, in every run
    real, z = spiral(k_real, 1000), gan.sample_noise(k_z, 1000)
    options = gj.RunOptions(args.steps, snapshot_every=500, checkpoint_every=500, resume=args.resume)
    result = gj.run(gan, members, args.out, options,
                    evaluate=gj.evaluator(z, functools.partial(nearest_real, real=real)))
    samples = np.asarray(result.sweep.gather(result.sweep.generate(result.state, z)))
    gj.plotting.snapshot_grid([(f"lr {m.hparams.lr_g:g}, seed {m.seed}", s) for m, s in zip(members, samples)][::2],
                           np.asarray(real), result.run.figures / "final_samples.png", max_panels=8)
    print(gj.report.write(args.out, [({}, result)], varied=["lr"]).read_text())  # per lr: mean +- 95% CI over seeds


if __name__ == "__main__":
    main()
