"""A PBT run on ring8 that the population tests run in-process and, with other device counts, as a script:
`python tests/pbt_run.py OUT` writes OUT.npz (G's parameters and the hyperparameters) and prints the
device count and PBT's copies."""
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.core.streams import stream_key
from gan_jax.engine import experiment
from gan_jax.engine.members import grid
from gan_jax.search import population


def mean_gap(samples):
    """A metric of the tests' own, cheap beside the toy metrics (2,500 samples a member): PBT's logic is what
    the tests check. ring8 is centred, so this is how far the samples' mean is off it."""
    return {"mean_gap": jnp.linalg.norm(samples.mean(0))}


def cheap_evaluator(gan: GAN) -> experiment.Evaluate:
    return experiment.evaluator(gan.sample_noise(stream_key("evaluation"), 256), mean_gap)


def main(out: str) -> None:
    cfg = Config(data="ring8", batch_size=32, log_every=10, optimizer="adam")
    members = grid(range(8), default_hparams("adam", 3e-4), lr=[1e-3])
    options = population.PBTOptions("mean_gap", 20, mode="min", truncation=0.25, explore=("lr_g", "lr_d"))
    controller = population.PBT(options, members, None)
    gan = GAN.from_config(cfg)
    result = experiment.run(gan, members, out + "_run", experiment.RunOptions(60, snapshot_every=20, progress=False),
                            evaluate=cheap_evaluator(gan), controller=controller)
    leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get((result.state.g_params, result.hparams)))]
    np.savez(out, *leaves)
    print("devices", result.summary["devices"],
          json.dumps([(r["step"], r["member"], r["source"]) for r in controller.records]))


if __name__ == "__main__":
    main(sys.argv[1])
