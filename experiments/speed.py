"""How fast, and how large: the measurements behind `experiments.benchmark` (CPU and GPU suites).

- `fused`: members trained as one compiled Sweep program; seed-steps/s, compile time, state bytes per
  member, the device's peak memory.
- `naive`: one seed, a Python loop over a jitted step: what a JAX user writes first.
- `torch_rate`: a plain PyTorch eager loop of the same MLP GAN (R1 or R2), on torch's GPU when it has one.
- `largest_fit`: the largest member count whose state and compiled program fit, from XLA's memory analysis
  of compiled programs (nothing is allocated).
"""
from __future__ import annotations

import os
import platform
import re
import time
from typing import Callable, Sequence

import jax
import numpy as np

from gan_jax import presets
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.data import mnist
from gan_jax.engine import resources
from gan_jax.engine.members import member_keys, stack_hparams
from gan_jax.engine.sweep import CPU_MEMBER_BLOCK, jit_single_step, Sweep
from gan_jax.errors import ResourceError


def synthetic_images(n: int = 10_000, channels: int = 1) -> np.ndarray:
    """Random uint8 images of MNIST's shape (the speed does not depend on their content)."""
    shape = (n, 28, 28) if channels == 1 else (n, 28, 28, channels)
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def model(name: str, precision: str = "fp32") -> tuple[GAN, object]:
    """(GAN, its preset's HParams) of "R1" (the toy quadratic), "R2" (the MNIST MLP) or "DCGAN", the
    image models on synthetic images."""
    preset = presets.get({"R1": "r1", "R2": "r2", "DCGAN": "dcgan"}[name])
    cfg = preset.config.replace(precision=precision)
    if name == "R1":
        return GAN.from_config(cfg), preset.hparams
    images = synthetic_images()
    return GAN.from_config(cfg, mnist.image_sampler(images, "tanh"), images[0].size), preset.hparams


def until(fn: Callable[[], None], min_seconds: float, max_calls: int = 1000) -> tuple[int, float]:
    """Call the blocking `fn` until `min_seconds` have passed: (calls, seconds)."""
    calls, start = 0, time.perf_counter()
    while calls < max_calls and (calls == 0 or time.perf_counter() - start < min_seconds):
        fn()
        calls += 1
    return calls, time.perf_counter() - start


def peak_bytes(device: jax.Device) -> int | None:
    stats = device.memory_stats() if device.platform != "cpu" else None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def fused(gan: GAN, hp, members: int, steps: int, min_seconds: float = 2.0, devices=None,
          member_block: int | None = None) -> dict:
    """`members` members as one program of `steps` steps, called until `min_seconds` have passed."""
    sweep = Sweep(gan, members, devices, member_block)
    stacked = stack_hparams([hp] * members)
    sweep.compile(steps)
    box = [sweep.init(member_keys(range(members)))]

    def chunk():
        state, _ = sweep.run(box[0], stacked, steps)
        box[0] = jax.block_until_ready(state)

    chunk()  # the first call: transfers, allocations
    calls, seconds = until(chunk, min_seconds)
    return {"members": members, "devices": int(sweep.mesh.devices.size), "member_block": sweep.block,
            "steps": steps * calls, "seconds": seconds, "compile_s": sweep.compile_s,
            "seed_steps_per_s": steps * calls * members / seconds,
            "state_bytes_per_member": sweep.state_bytes_per_member(), "peak_bytes": peak_bytes(sweep.mesh_devices[0])}


def naive(gan: GAN, hp, steps: int, min_seconds: float = 1.0) -> dict:
    """One seed, a Python loop calling a jitted single step `steps` times per timing."""
    hp = hp.as_arrays()
    step = jit_single_step(gan)
    state = jax.jit(gan.init)(jax.random.key(0))  # jitted: distinct buffers, safe to donate
    start = time.perf_counter()
    box = [jax.block_until_ready(step(state, hp)[0])]
    compile_s = time.perf_counter() - start

    def loop():
        s = box[0]
        for _ in range(steps):
            s, _ = step(s, hp)
        box[0] = jax.block_until_ready(s)

    calls, seconds = until(loop, min_seconds)
    return {"steps": steps * calls, "compile_s": compile_s, "steps_per_s": steps * calls / seconds}


def largest_fit(gan: GAN, measured: int, devices: Sequence[jax.Device] | None = None, steps: int = 10) -> dict:
    """The largest member count (a multiple of the device count) whose state and compiled program fit in
    memory: bytes(n) from XLA's analysis of compiled programs at `measured` and 2 x `measured` members
    (linear in n: state and vmapped temporaries grow with the members), solved for the memory limit, then
    checked by compiling at that count (and 10% fewer while it does not fit). Nothing is allocated."""
    devices = list(devices if devices is not None else jax.devices())
    limit, where = resources.available_bytes(devices)

    def program_bytes(n: int) -> int:
        sweep = Sweep(gan, n, devices)
        stats = sweep.compile(steps).memory_analysis()
        per_device = stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes \
            + stats.temp_size_in_bytes
        return per_device * (len(devices) if devices[0].platform == "cpu" else 1)

    # on a CPU each device vmaps blocks of CPU_MEMBER_BLOCK members: start where the block is full, so
    # that more members add state (and block count) only
    n1 = max(measured, len(devices) * CPU_MEMBER_BLOCK) if devices[0].platform == "cpu" else measured
    n2 = 2 * n1
    b1, b2 = program_bytes(n1), program_bytes(n2)
    per_member = max((b2 - b1) / (n2 - n1), 1.0)
    step = len(devices)
    guess = max(step, int((limit - (b1 - per_member * n1)) / per_member) // step * step)
    for _ in range(8):
        try:
            fits = program_bytes(guess) <= limit
        except ResourceError:
            fits = False
        if fits:
            return {"members": guess, "limit_bytes": limit, "limit": where, "bytes_per_member": per_member}
        guess = max(step, int(guess * 0.9) // step * step)
    return {"members": None, "limit_bytes": limit, "limit": where, "bytes_per_member": per_member}


# -- PyTorch ---------------------------------------------------------------------------------------------
def torch_rate(cfg: Config, hp, steps: int, min_seconds: float = 1.0, threads: int | None = None) -> dict:
    """A plain eager PyTorch loop of the MLP GAN `cfg` (R1: RMSProp, one (x, z) batch for both updates; R2:
    Adam, fresh batches), one seed, on torch's GPU if it has one: {"steps_per_s", ...} or {"skipped": why}."""
    try:
        import torch
    except ImportError as e:
        return {"skipped": f"torch is not importable ({e}); pip install torch"}
    if cfg.architecture != "mlp" or cfg.loss != "non_saturating" or cfg.n_disc != 1 or cfg.n_gen != 1:
        return {"skipped": "the PyTorch loop implements the non-saturating MLP GAN with one D and one G update"}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if threads is not None:
        torch.set_num_threads(threads)
    step = _torch_step(torch, cfg, hp, device)
    for _ in range(10):  # warm-up: allocator, optimizer state, kernels
        step()

    def loop():
        for _ in range(steps):
            step()
        if device == "cuda":
            torch.cuda.synchronize()

    calls, seconds = until(loop, min_seconds)
    return {"torch": torch.__version__, "device": device, "threads": torch.get_num_threads(),
            "steps": steps * calls, "steps_per_s": steps * calls / seconds}


def _torch_mlp(nn, widths: list[int], slope: float, output=None):
    """Dense layers of `widths` with leaky_relu between them; Glorot-uniform kernels, zero biases (as gan_jax)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        dense = nn.Linear(fan_in, fan_out)
        nn.init.xavier_uniform_(dense.weight)
        nn.init.zeros_(dense.bias)
        layers += [dense] if i == len(widths) - 2 else [dense, nn.LeakyReLU(slope)]
    return nn.Sequential(*layers, *([output] if output is not None else []))


def _torch_step(torch, cfg: Config, hp, device: str) -> Callable[[], None]:
    """One training step of `cfg` in eager PyTorch: a D update on real data and G(z) (G frozen), then a G
    update through D (D frozen); BCE-with-logits losses."""
    nn, bce = torch.nn, torch.nn.functional.binary_cross_entropy_with_logits
    torch.manual_seed(0)
    slope, batch, latent = cfg.generator.negative_slope, cfg.batch_size, cfg.latent_dim
    image = cfg.data != "quadratic"
    dim = 784 if image else 2
    g = _torch_mlp(nn, [latent, *cfg.generator.hidden, dim], slope, nn.Tanh() if image else None).to(device)
    d_widths = [dim, *cfg.discriminator.hidden, *([cfg.discriminator.feature_dim] if cfg.discriminator.feature_dim
                                                  else []), 1]
    d = _torch_mlp(nn, d_widths, slope).to(device)
    if cfg.optimizer == "adam":
        opt = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(hp.beta1, hp.beta2))  # noqa: E731
    else:
        opt = lambda params, lr: torch.optim.RMSprop(params, lr=lr, alpha=hp.beta2, eps=1e-10)  # noqa: E731
    g_opt, d_opt = opt(g.parameters(), hp.lr_g), opt(d.parameters(), hp.lr_d)
    data = torch.from_numpy(synthetic_images()).to(device) if image else None
    ones, zeros = torch.ones(batch, 1, device=device), torch.zeros(batch, 1, device=device)

    def real_batch():
        if image:  # uint8 images by random index, scaled to [-1, 1]
            return data[torch.randint(len(data), (batch,), device=device)].reshape(batch, -1).float() * (2 / 255) - 1
        x = (torch.rand(batch, device=device) - 0.5) * 100  # R1's curve, standardized as gan_jax trains it
        return torch.stack([x / 28.87, (10 + x * x - 843.3) / 745.4], 1)

    def noise():
        return torch.rand(batch, latent, device=device) * 2 - 1

    def step():
        real, z = real_batch(), noise()
        with torch.no_grad():
            fake = g(z)
        d_loss = bce(d(real), ones) + bce(d(fake), zeros)
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        d.requires_grad_(False)
        g_loss = bce(d(g(z if not image else noise())), ones)  # R1 reuses its batch's z; R2 draws fresh
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        d.requires_grad_(True)

    return step


def platform_info() -> dict:
    import jaxlib

    devices = jax.devices()
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()) if os.path.exists("/proc/cpuinfo") else None
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "python": platform.python_version(),
            "platform": devices[0].platform, "device_kind": devices[0].device_kind, "n_devices": len(devices),
            "devices": [str(d) for d in devices], "cpu_count": os.cpu_count(),
            "cpu_model": cpu.group(1) if cpu else platform.processor() or platform.machine(),
            "gpu": sorted({d.device_kind for d in devices if d.platform == "gpu"}) or None,
            "load_avg_1m_start": os.getloadavg()[0]}
