import contextlib
import io
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from conftest import REPO, run_main, xla_env
from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.core.streams import stream_key
from gan_jax.engine.sweep import member_keys, member_mesh, stack_hparams, Sweep

SCRIPT = textwrap.dedent("""
    import sys, jax, numpy as np
    from gan_jax.core.config import Config
    from gan_jax.components.optim import default_hparams
    from gan_jax.engine.sweep import Sweep, member_keys, stack_hparams
    from gan_jax.core.gan import GAN
    def main(out):
        cfg = Config(batch_size=64, log_every=10)
        hp = stack_hparams([default_hparams("adam", lr) for lr in (1e-3, 2e-3, 5e-4, 1e-3) * 2])
        sweep = Sweep(GAN.from_config(cfg.replace(optimizer="adam")), 8)
        state, metrics = sweep.run(sweep.init(member_keys(range(8))), hp, 30)
        print("devices", len(sweep.mesh.devices.flat))
        leaves = jax.tree.leaves(jax.device_get((state.g_params, state.d_params, metrics)))
        np.savez(out, *leaves)
    if __name__ == "__main__":
        main(sys.argv[1])
""")


def run_script(tmp_path, n_devices):
    """SCRIPT with `n_devices` CPU devices: here for 2 (the tests' pinned count), else in a subprocess."""
    out = tmp_path / f"out{n_devices}.npz"
    if n_devices == len(jax.devices()):
        namespace = {"__name__": "script"}
        exec(SCRIPT, namespace)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            namespace["main"](out)
        stdout = printed.getvalue()
    else:
        env = xla_env(n_devices)
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        stdout = proc.stdout
    assert f"devices {n_devices}" in stdout
    with np.load(out) as f:
        return [f[k] for k in f.files]


@pytest.mark.slow  # a duplicate: test_population's PBT run on 1 and 8 devices compares the trained state too
def test_sharded_over_devices_equals_one_device(tmp_path):
    one = run_script(tmp_path, 1)
    for n in (2, 8):
        many = run_script(tmp_path, n)
        for a, b in zip(one, many):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_member_mesh_uses_devices_that_divide_members():
    devices = [object()] * 8
    assert member_mesh(8, devices).devices.size == 8
    assert member_mesh(12, devices).devices.size == 6
    assert member_mesh(7, devices).devices.size == 7
    assert member_mesh(1, devices).devices.size == 1


def test_rejects_wrong_member_counts():
    sweep = Sweep(GAN.from_config(Config()), 3)
    with pytest.raises(ValueError, match="leading member axis of 3, got shape \\(2,\\)"):
        sweep.init(member_keys([0, 1]))
    state = sweep.init(member_keys([0, 1, 2]))
    with pytest.raises(ValueError, match="leading member axis of 3"):
        sweep.run(state, stack_hparams([default_hparams("rmsprop")] * 2), 10)
    with pytest.raises(ValueError, match="member_block"):
        Sweep(GAN.from_config(Config()), 3, member_block=0)


def test_evaluation_blocks_equal_one_vmap():
    """Evaluation in blocks of 4 (an accelerator's layout) or 1 (the CPU's) gives the same numbers (training
    in every candidate block: tests/test_layout.py)."""
    from gan_jax import data
    from gan_jax.metrics import toy

    cfg = Config(batch_size=64, log_every=10)
    gan = GAN.from_config(cfg)
    hp = stack_hparams([default_hparams("rmsprop", lr) for lr in (1e-3, 2e-3, 1e-3, 5e-4)])
    dataset = data.get_dataset("quadratic")
    metric = toy.evaluation_fn(dataset, dataset.sample(jax.random.key(5), 1000))
    z = gan.sample_noise(jax.random.key(6), 1000)
    state = None
    results = []
    for block in (4, 1):
        sweep = Sweep(gan, 4, devices=jax.devices()[:1], eval_block=block)  # 4 members, 1 device
        assert sweep.eval_block == block
        if state is None:  # one trained state for both: evaluation is what differs
            state, _ = sweep.run(sweep.init(member_keys([0, 1, 2, 3])), hp, 30)
        results.append(sweep.evaluate(state, z, lambda x: metric(dataset.to_raw(x, True))))
    for evals in results[1:]:
        for name, value in evals.items():  # shares of 1,000 samples may flip one sample at a threshold
            share = name in ("precision", "recall", "coverage", "density", "x_ks")
            np.testing.assert_allclose(value, results[0][name], rtol=1e-4, atol=2e-3 if share else 1e-6,
                                       err_msg=name)


def test_evaluation_in_slices_equals_one_generator_call():
    """`evaluate` and `generate` run G on `eval_slice` samples at a time (so 26,000 Stacked MNIST samples fit
    in memory), the last slice padded: a conditional DCGAN's samples, with batch norm's standing statistics and labels,
    are those of one call."""
    from gan_jax.core.config import DiscriminatorConfig, GeneratorConfig

    cfg = Config(architecture="dcgan", image_shape=(28, 28, 1), latent_dim=8, noise="normal", num_classes=10,
                 generator=GeneratorConfig(hidden=(8, 4), activation="relu", output_activation="tanh"),
                 discriminator=DiscriminatorConfig(hidden=(4, 8), feature_dim=None), optimizer="adam",
                 batch_size=16, log_every=2)

    def sampler(key, n):  # random images with random labels: only shapes matter here
        k1, k2 = jax.random.split(key)
        return jax.random.uniform(k1, (n, 784), minval=-1.0), jax.random.randint(k2, (n,), 0, 10)

    gan = GAN.from_config(cfg, sampler, data_dim=784)
    sweep = Sweep(gan, 2, devices=jax.devices()[:1], eval_slice=100)
    state = sweep.init(member_keys([0, 1]))  # slicing is about shapes: two initial generators will do
    z, labels = gan.sample_noise(jax.random.key(1), 250), jax.random.randint(jax.random.key(2), (250,), 0, 10)
    evals = sweep.evaluate(state, z, lambda x, y: {"x": x, "y": y}, labels)  # slices of 100, 100 and 50 (padded)
    stats = jax.vmap(gan.standing_stats, in_axes=(0, 0, None))(state.g_ema, state.g_stats, stream_key("standing_stats"))
    whole = jax.vmap(gan.generate, in_axes=(0, None, None, 0))(state.g_ema, z, labels, stats)  # one call
    np.testing.assert_allclose(evals["x"], whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sweep.generate(state, z, labels), whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(evals["y"], np.stack([labels, labels]))
    assert not np.allclose(evals["x"][0], evals["x"][1])  # two members, two generators


def test_two_processes_on_localhost_equal_one_process(tmp_path):
    """jax.distributed over 2 processes of 1 CPU device each == 1 process with 2 devices: same metrics.jsonl,
    written by process 0 alone."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flags = ["--seeds", "4", "--steps", "40", "--log-every", "10", "--snapshot-every", "20", "--no-progress",
             "--no-figures"]
    env = xla_env(1)
    procs = [subprocess.Popen([sys.executable, "-m", "experiments.toy_quadratic", *flags, "--out", str(tmp_path / "multi"),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert "4 members x 40 steps on 2 device(s)" in outputs[0][0]
    # one writer: process 1 prints nothing of its own (only gloo's connection line) and writes no file
    assert [line for line in outputs[1][0].splitlines() if not line.startswith("[Gloo]")] == []
    single = run_main("experiments.toy_quadratic", *flags, "--out", tmp_path / "one")  # 2 devices, 1 process
    assert single.returncode == 0, single.stderr
    multi_rows = (tmp_path / "multi" / "metrics.jsonl").read_text().splitlines()
    assert len(multi_rows) == 4 * 7 and multi_rows == (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
