"""How fast, and how large: the measurements behind `experiments.benchmark` (CPU and GPU suites).

- `fused`: members trained as one compiled Sweep program; seed-steps/s, compile time, state bytes per
  member, the device's peak memory.
- `in_rounds`: prepared measurements (`prepare_fused`, `prepare_naive`, `prepare_torch`,
  `prepare_torch_ensemble`) timed in turn, round after round, so that a slow spell of a shared machine falls
  on all of them alike; each keeps its fastest round and the spread of its rounds (the noise).
- `naive`: one seed, a Python loop over a jitted step: what a JAX user writes first.
- `flops_per_step`: XLA's count of one seed-step's floating-point operations; `matmul_peak`: the measured
  rate of a large float32 matmul, the ceiling achieved rates are read against.
- `torch_rate`: a plain PyTorch eager loop of the same GAN (R1, R2, r2_wide_r1 or the DCGAN), one seed, on torch's GPU
  when it has one; `torch_ensemble_rate`: the same members as one `torch.func` ensemble (PyTorch's
  model-ensembling recipe: stacked parameters, vmapped gradients), eager or under `torch.compile`.
- `largest_fit`: the largest member count whose state and compiled program fit, from XLA's memory analysis
  of compiled programs (nothing is allocated).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import signal
import threading
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import presets
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.data import mnist
from gan_jax.engine import resources
from gan_jax.engine.members import member_keys, stack_hparams
from gan_jax.engine.layout import CPU_RULE_BLOCK
from gan_jax.engine.sweep import jit_single_step, Sweep
from gan_jax.errors import ResourceError


def synthetic_images(n: int = 10_000, channels: int = 1) -> np.ndarray:
    """Random uint8 images of MNIST's shape (the speed does not depend on their content)."""
    shape = (n, 28, 28) if channels == 1 else (n, 28, 28, channels)
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


MODELS = {"R1": "r1", "R2": "r2", "r2_wide_r1": "r2_wide_r1", "DCGAN": "dcgan"}  # benchmark name -> preset


def model(name: str, precision: str = "fp32", convolutions: str = "windows") -> tuple[GAN, object]:
    """(GAN, its preset's HParams) of "R1" (the toy quadratic), "R2" (the MNIST MLP), "r2_wide_r1" (the
    wider MNIST MLP with an R1 penalty) or "DCGAN", the image models on synthetic images; `convolutions`:
    the DCGAN's (Config.convolutions)."""
    preset = presets.get(MODELS[name])
    cfg = preset.config.replace(precision=precision, convolutions=convolutions)
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


@dataclasses.dataclass
class Prepared:
    """A measurement ready to time: each `call()` does `work` units (seed-steps, or steps of one seed) and
    blocks until they are done; `row` is what it reports, with its rate under `rate_key` once timed."""
    call: Callable[[], None]
    work: int
    row: dict
    rate_key: str = "seed_steps_per_s"


def in_rounds(measurements: list, rounds: int, min_seconds: float) -> list[dict]:
    """Each `Prepared` measurement timed `rounds` times, `min_seconds` each, in turn (round 1 of every one,
    then round 2, ...), so a slow spell of a shared machine falls on all of them alike rather than on whichever
    ran then. Its row: the fastest round's rate (the least disturbed), `rounds` (every round's rate) and `noise`
    (1 - slowest / fastest). Anything else in `measurements` (a skipped one's dict) is passed through."""
    todo = [m for m in measurements if isinstance(m, Prepared)]
    rates: dict[int, list[float]] = {id(m): [] for m in todo}
    for _ in range(rounds):
        for m in todo:
            calls, seconds = until(m.call, min_seconds)
            rates[id(m)].append(calls * m.work / seconds)
    return [dict(m.row, **{m.rate_key: max(rates[id(m)])}, rounds=rates[id(m)],
                 noise=1 - min(rates[id(m)]) / max(rates[id(m)])) if isinstance(m, Prepared) else m
            for m in measurements]


def timed(measurement, min_seconds: float) -> dict:
    """One timing of a `Prepared` measurement (a skipped one's dict passed through)."""
    return in_rounds([measurement], 1, min_seconds)[0]


def prepare_fused(gan: GAN, hp, members: int, steps: int, devices=None, member_block: int | None = None) -> Prepared:
    """`members` members as one compiled program of `steps` steps, compiled, initialized and called once
    (transfers, allocations)."""
    sweep = Sweep(gan, members, devices, member_block)
    stacked = stack_hparams([hp] * members)
    sweep.compile(steps)
    box = [sweep.init(member_keys(range(members)))]

    def chunk():
        state, _ = sweep.run(box[0], stacked, steps)
        box[0] = jax.block_until_ready(state)

    chunk()
    return Prepared(chunk, steps * members, {
        "members": members, "devices": int(sweep.mesh.devices.size), "member_block": sweep.block,
        "layout": sweep.layout.chosen_by, "steps_per_call": steps, "compile_s": sweep.compile_s,
        "state_bytes_per_member": sweep.state_bytes_per_member(), "peak_bytes": peak_bytes(sweep.mesh_devices[0])})


def fused(gan: GAN, hp, members: int, steps: int, min_seconds: float = 2.0, devices=None,
          member_block: int | None = None) -> dict:
    """`members` members as one program of `steps` steps, called until `min_seconds` have passed."""
    return timed(prepare_fused(gan, hp, members, steps, devices, member_block), min_seconds)


def prepare_naive(gan: GAN, hp, steps: int) -> Prepared:
    """One seed, a Python loop calling a jitted single step `steps` times per call."""
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

    return Prepared(loop, steps, {"steps_per_call": steps, "compile_s": compile_s}, "steps_per_s")


def naive(gan: GAN, hp, steps: int, min_seconds: float = 1.0) -> dict:
    """One seed, a Python loop calling a jitted single step `steps` times per timing."""
    return timed(prepare_naive(gan, hp, steps), min_seconds)


def largest_fit(gan: GAN, measured: int, devices: Sequence[jax.Device] | None = None, steps: int = 10) -> dict:
    """The largest member count (a multiple of the device count) whose state and compiled program fit in
    memory: bytes(n) from XLA's analysis of compiled programs at `measured` and 2 x `measured` members
    (linear in n: state and vmapped temporaries grow with the members), solved for the memory limit, then
    checked by compiling at that count (and 10% fewer while it does not fit). Nothing is allocated."""
    devices = list(devices if devices is not None else jax.devices())
    limit, where = resources.available_bytes(devices)

    cpu = devices[0].platform == "cpu"

    def program_bytes(n: int) -> int:  # on a CPU in the rule's blocks: a timed probe per count would be waste
        sweep = Sweep(gan, n, devices, member_block=CPU_RULE_BLOCK if cpu else None)
        stats = sweep.compile(steps).memory_analysis()
        per_device = stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes \
            + stats.temp_size_in_bytes
        return per_device * (len(devices) if cpu else 1)

    # on a CPU each device vmaps blocks of CPU_RULE_BLOCK members: start where the block is full, so
    # that more members add state (and block count) only
    n1 = max(measured, len(devices) * CPU_RULE_BLOCK) if cpu else measured
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


def flops_per_step(gan: GAN, hp) -> float | None:
    """XLA's count of floating-point operations in one training step of one seed: the cost analysis of
    `jax.jit(gan.step)` compiled (the fused program's analysis counts its scan's body once, not per step)."""
    state = jax.eval_shape(gan.init, jax.random.key(0))
    cost = jax.jit(gan.step).lower(state, hp.as_arrays()).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict:
    """The measured float32 matmul rate, GFLOP/s: an n x n matmul, best of `repeats`, in jnp on one device,
    in jnp on every device at once (one each, sharded), and in torch where importable. `gflops` is the
    best of them: the ceiling the fused rows' achieved rates are read against."""
    devices = jax.devices()
    square = jax.jit(lambda a: a @ a)
    rates = {"jax_one_device": _best_gflops(square, jnp.ones((n, n), jnp.float32), n, repeats)}
    if len(devices) > 1:
        mesh = jax.sharding.Mesh(np.array(devices), ("d",))
        stacked = jax.device_put(jnp.ones((len(devices), n, n), jnp.float32),
                                 jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d")))
        rates["jax_all_devices"] = _best_gflops(square, stacked, n, repeats)
    torch, _ = _torch_or_skip()
    if torch is not None and not torch.cuda.is_available():
        rates["torch"] = _best_gflops(lambda a: a @ a, torch.ones(n, n), n, repeats, block=lambda x: x)
    best = max(rates, key=rates.get)
    return {"n": n, "repeats": repeats, "gflops_by": rates, "gflops": rates[best], "best": best}


def _best_gflops(matmul: Callable, a, n: int, repeats: int, block: Callable = jax.block_until_ready) -> float:
    block(matmul(a))  # compile, warm up
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(matmul(a))
        seconds.append(time.perf_counter() - start)
    return 2 * n ** 3 * (a.shape[0] if a.ndim == 3 else 1) / min(seconds) / 1e9


# -- PyTorch ---------------------------------------------------------------------------------------------
def _torch_or_skip():
    """(torch, None), or (None, {"skipped": why}) where it is not importable."""
    try:
        import torch
    except ImportError as e:
        return None, {"skipped": f"torch is not importable ({e}); pip install torch"}
    return torch, None


def torch_unsupported(cfg: Config) -> str | None:
    """Why the PyTorch loops cannot train `cfg`, or None: they implement the unconditional non-saturating
    MLP GAN (R1, R2, r2_wide_r1) and the preset DCGAN, one D and one G update a step, no penalty but R1, no
    dropout or packing."""
    dcgan = cfg.architecture == "dcgan" and (cfg.generator.activation, cfg.generator.output_activation,
                                             cfg.discriminator.activation) == ("relu", "tanh", "leaky_relu")
    if (cfg.architecture != "mlp" and not dcgan) or cfg.loss != "non_saturating" or (cfg.n_disc, cfg.n_gen) != (1, 1) \
            or cfg.num_classes or cfg.gradient_penalty not in ("none", "r1") or cfg.pack != 1 \
            or cfg.discriminator.dropout or cfg.discriminator.spectral_norm or cfg.augment:
        return "the PyTorch loops implement the unconditional non-saturating MLP GAN and the preset DCGAN, one D " \
               "and one G update a step, no penalty but R1"
    return None


def prepare_torch(cfg: Config, hp, steps: int, threads: int | None = None) -> Prepared | dict:
    """A plain eager PyTorch loop of `cfg` (R1: RMSProp, one (x, z) batch for both updates; the others:
    Adam, fresh batches), one seed, `steps` steps a call at `threads` threads (torch's default again after each
    call), on torch's GPU if it has one; {"skipped": why} where it cannot run."""
    torch, skipped = _torch_or_skip()
    if skipped or torch_unsupported(cfg):
        return skipped or {"skipped": torch_unsupported(cfg)}
    device, default_threads = "cuda" if torch.cuda.is_available() else "cpu", torch.get_num_threads()
    g, d = torch_models(torch, cfg, device)
    update, draw = torch_update(torch, cfg, hp, g, d), torch_batches(torch, cfg, device)
    run = _torch_prepared(torch, lambda: update(*draw(cfg.batch_size)), steps, device)

    def call():
        torch.set_num_threads(threads or default_threads)
        try:
            run()
        finally:
            torch.set_num_threads(default_threads)  # the next measurement gets torch's default again

    call()  # with the warm-up: allocator, optimizer state, kernels at these threads
    return Prepared(call, steps, {"torch": torch.__version__, "device": device,
                                  "threads": threads or default_threads, "steps_per_call": steps}, "steps_per_s")


def torch_rate(cfg: Config, hp, steps: int, min_seconds: float = 1.0, threads: int | None = None) -> dict:
    """`prepare_torch`'s loop timed once: {"steps_per_s", ...} or {"skipped": why}."""
    return timed(prepare_torch(cfg, hp, steps, threads), min_seconds)


def prepare_torch_ensemble(cfg: Config, hp, members: int, steps: int, compile: bool = False,
                           compile_limit_s: float = 150.0) -> Prepared | dict:
    """`members` seeds of `cfg` as one `torch.func` ensemble (`torch_ensemble`), each with its own batches,
    eager or with its gradient functions under `torch.compile` (the first call's seconds are `compile_s`;
    a compiler failure, or a first call over `compile_limit_s`, is {"skipped": why}), `steps` steps a call.
    Batch norm: batch statistics, no running averages (`torch_ensemble`)."""
    torch, skipped = _torch_or_skip()
    if skipped or torch_unsupported(cfg):
        return dict(skipped or {"skipped": torch_unsupported(cfg)}, members=members, compiled=compile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pairs = [torch_models(torch, cfg, device, seed) for seed in range(members)]
    if compile:
        torch._dynamo.reset()
    update = torch_ensemble(torch, cfg, hp, [g for g, _ in pairs], [d for _, d in pairs],
                            torch.compile if compile else lambda f: f)[0]
    draw = torch_batches(torch, cfg, device)
    step = lambda: update(*draw(members, cfg.batch_size))  # noqa: E731
    row = {"members": members, "compiled": compile, "device": device, "threads": torch.get_num_threads(),
           "steps_per_call": steps,
           **({"batch_norm": "batch statistics, no running averages (torch.func.replace_all_batch_norm_modules_)"}
              if cfg.architecture == "dcgan" else {})}
    try:
        if compile:
            start = time.perf_counter()
            with _time_limit(compile_limit_s):
                step()
            row["compile_s"] = time.perf_counter() - start
        return Prepared(_torch_prepared(torch, step, steps, device, warmup=3), steps * members, row)
    except Exception as e:  # noqa: BLE001 - a compiler failure is a result to record, not a crash
        if not compile:
            raise
        return dict(row, skipped=f"torch.compile failed: {type(e).__name__}: "
                                 f"{(str(e).strip().splitlines() or [''])[0][:300]}")


def torch_ensemble_rate(cfg: Config, hp, members: int, steps: int, min_seconds: float = 1.0,
                        compile: bool = False, compile_limit_s: float = 150.0) -> dict:
    """`prepare_torch_ensemble`'s ensemble timed once: {"seed_steps_per_s", ...} or {"skipped": why}."""
    return timed(prepare_torch_ensemble(cfg, hp, members, steps, compile, compile_limit_s), min_seconds)


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise TimeoutError in the block once `seconds` have passed (SIGALRM: the main thread only; elsewhere
    no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(*_):
        raise TimeoutError(f"took over {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _torch_prepared(torch, step: Callable[[], None], steps: int, device: str, warmup: int = 10) -> Callable:
    """After `warmup` calls of `step` (allocator, optimizer state, kernels): a call of `steps` steps that
    blocks until they are done."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()

    def loop():
        for _ in range(steps):
            step()
        sync()

    return loop


def torch_models(torch, cfg: Config, device: str = "cpu", seed: int = 0):
    """(G, D) of `cfg` as torch modules (channels first, torch's default), initialized as gan_jax's are:
    the MLPs Glorot-uniform, the DCGAN LeCun-normal (flax's default; untruncated here), biases zero."""
    torch.manual_seed(seed)
    nn, slope, latent = torch.nn, cfg.generator.negative_slope, cfg.latent_dim
    if cfg.architecture == "dcgan":
        return tuple(m.to(device) for m in _torch_dcgan(nn, cfg))
    image = cfg.data != "quadratic"
    dim = 784 if image else 2
    g = _torch_mlp(nn, [latent, *cfg.generator.hidden, dim], slope, nn.Tanh() if image else None)
    d_widths = [dim, *cfg.discriminator.hidden, *([cfg.discriminator.feature_dim] if cfg.discriminator.feature_dim
                                                  else []), 1]
    return g.to(device), _torch_mlp(nn, d_widths, slope).to(device)


def _torch_mlp(nn, widths: list[int], slope: float, output=None):
    """Dense layers of `widths` with leaky_relu between them; Glorot-uniform kernels, zero biases (as gan_jax)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        dense = nn.Linear(fan_in, fan_out)
        nn.init.xavier_uniform_(dense.weight)
        nn.init.zeros_(dense.bias)
        layers += [dense] if i == len(widths) - 2 else [dense, nn.LeakyReLU(slope)]
    return nn.Sequential(*layers, *([output] if output is not None else []))


def _torch_dcgan(nn, cfg: Config):
    """gan_jax's ConvGenerator and ConvDiscriminator in torch: G dense (no bias) to the first map, batch norm
    (flax's momentum 0.9 is torch's 0.1), relu, 4x4 stride-2 transposed convs (padding 1: 'SAME', 2x),
    batch norm and relu after all but the last, tanh; D 4x4 stride-2 convs (padding 1), leaky_relu, dense."""
    g_hidden, d_hidden, (height, width, channels) = cfg.generator.hidden, cfg.discriminator.hidden, cfg.image_shape
    k = 2 ** len(g_hidden)
    norm = lambda c: [nn.BatchNorm2d(c, momentum=0.1), nn.ReLU()]  # noqa: E731
    g = [nn.Linear(cfg.latent_dim, height // k * width // k * g_hidden[0], bias=False),
         nn.Unflatten(1, (g_hidden[0], height // k, width // k)), *norm(g_hidden[0])]
    for c_in, c_out in zip(g_hidden, g_hidden[1:]):
        g += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), *norm(c_out)]
    g += [nn.ConvTranspose2d(g_hidden[-1], channels, 4, 2, 1), nn.Tanh()]
    d, c_in = [], channels
    for c_out in d_hidden:
        d += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(cfg.discriminator.negative_slope)]
        c_in = c_out
    k = 2 ** len(d_hidden)
    d += [nn.Flatten(), nn.Linear(c_in * height // k * width // k, 1)]
    g, d = nn.Sequential(*g), nn.Sequential(*d)
    for layer in [*g, *d]:
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):  # LeCun normal; torch's is uniform
            w = layer.weight  # Linear [out, in]; Conv2d [out, in, 4, 4]; ConvTranspose2d [in, out, 4, 4]
            fan_in = w.shape[0 if isinstance(layer, nn.ConvTranspose2d) else 1] * w[0, 0].numel()
            nn.init.normal_(w, 0.0, fan_in ** -0.5)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return g, d


def torch_batches(torch, cfg: Config, device: str) -> Callable:
    """`draw(*lead)` -> (real, z for D's update, z for G's update), each of leading shape `lead` (a batch, or
    members x batch): real images by random index from `synthetic_images`, scaled to [-1, 1] (flat for the
    MLP, [channels, height, width] for the DCGAN); R1's curve; noise as `cfg.noise`, G's drawn afresh
    unless `cfg.share_batch` (R1)."""
    image = cfg.data != "quadratic"
    if image:
        height, width, channels = cfg.image_shape
        data = torch.from_numpy(synthetic_images(channels=channels)).to(device).reshape(-1, height, width, channels)
        data = data.permute(0, 3, 1, 2).contiguous() if cfg.architecture == "dcgan" else data.reshape(len(data), -1)

    def real(lead):
        if image:  # uint8 images by random index, scaled to [-1, 1]
            return data[torch.randint(len(data), lead, device=device)].float() * (2 / 255) - 1
        x = (torch.rand(lead, device=device) - 0.5) * 100  # R1's curve, standardized as gan_jax trains it
        return torch.stack([x / 28.87, (10 + x * x - 843.3) / 745.4], -1)

    def noise(lead):
        if cfg.noise == "normal":
            return torch.randn(*lead, cfg.latent_dim, device=device)
        return torch.rand(*lead, cfg.latent_dim, device=device) * 2 - 1

    def draw(*lead):
        z = noise(lead)
        return real(lead), z, z if cfg.share_batch else noise(lead)

    return draw


def _torch_optimizers(torch, cfg: Config, hp, g_params, d_params):
    """(G's, D's) torch optimizer: Adam, or RMSProp as optax's (eps 1e-10, outside the square root)."""
    if cfg.optimizer == "adam":
        opt = lambda params, lr: torch.optim.Adam(params, lr=lr, betas=(hp.beta1, hp.beta2))  # noqa: E731
    else:
        opt = lambda params, lr: torch.optim.RMSprop(params, lr=lr, alpha=hp.beta2, eps=1e-10)  # noqa: E731
    return opt(g_params, hp.lr_g), opt(d_params, hp.lr_d)


def _bce(torch, logits, label: float):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def r1_penalty(torch, logits, real):
    """E||grad_x D(x_real)||^2 / 2 (gan_jax's `penalties.r1_penalty`), from D's `logits` on `real` (which
    requires grad); differentiable, as D's loss needs."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return half_mean_sq_norm(grad)


def half_mean_sq_norm(grad):
    """The mean over examples of ||grad||^2 / 2: R1's penalty from the gradients of D at the real batch."""
    return grad.pow(2).flatten(1).sum(1).mean() / 2


def torch_update(torch, cfg: Config, hp, g, d) -> Callable:
    """`update(real, z_d, z_g)`: one eager training step of the modules `g`, `d` (as gan_jax's `alternating`):
    a D update on `real` and G(z_d) (G frozen; batch norm in training mode; with `cfg`'s R1 penalty,
    hp.gp_weight x `r1_penalty` on `real`), then a G update on G(z_g) through the updated D (D frozen);
    BCE-with-logits losses; then G's moving average (decay hp.ema_decay), as gan_jax keeps it every step."""
    g_params, d_params = list(g.parameters()), list(d.parameters())
    g_opt, d_opt = _torch_optimizers(torch, cfg, hp, g_params, d_params)
    g_ema = [p.detach().clone() for p in g_params]
    r1 = cfg.gradient_penalty == "r1"

    def update(real, z_d, z_g):
        with torch.no_grad():
            fake = g(z_d)
        real = real.detach().requires_grad_(r1)
        real_logits = d(real)
        d_loss = _bce(torch, real_logits, 1.0) + _bce(torch, d(fake), 0.0)
        if r1:
            d_loss = d_loss + hp.gp_weight * r1_penalty(torch, real_logits, real)
        d_opt.zero_grad()
        d_loss.backward(inputs=d_params)  # not into `real`'s gradient, which R1 needed only inside its penalty
        d_opt.step()
        d.requires_grad_(False)
        g_loss = _bce(torch, d(g(z_g)), 1.0)
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        d.requires_grad_(True)
        with torch.no_grad():
            torch._foreach_lerp_(g_ema, g_params, 1 - hp.ema_decay)

    return update


def torch_ensemble(torch, cfg: Config, hp, gs: list, ds: list, wrap: Callable = lambda f: f):
    """PyTorch's model-ensembling recipe (`torch.func`): the members' modules `gs`, `ds` stacked
    (`stack_module_state`), their forward passes `functional_call` on a copy without state, gradients by
    `vmap(grad(loss))` over members (R1's penalty: a `grad` inside it), one torch optimizer over the stacked
    tensors (Adam and RMSProp are elementwise, so this equals one optimizer per member), G's moving average
    over the stacked tensors. Returns (`update(real, z_d, z_g)` on inputs
    of leading axis members, as `torch_update` does per member; G's and D's stacked parameters). Batch
    norm under vmap: `torch.func.replace_all_batch_norm_modules_`, batch statistics and no running
    averages (what a training step's forward passes use; gan_jax also keeps the averages, for sampling)."""
    import copy

    from torch.func import functional_call, grad, replace_all_batch_norm_modules_, stack_module_state, vjp, vmap

    g_base, d_base = copy.deepcopy(gs[0]).to("meta"), copy.deepcopy(ds[0]).to("meta")
    replace_all_batch_norm_modules_(g_base)
    (g_params, _), (d_params, _) = stack_module_state(gs), stack_module_state(ds)
    generate = lambda p, z: functional_call(g_base, p, (z,))  # noqa: E731
    discriminate = lambda p, x: functional_call(d_base, p, (x,))  # noqa: E731

    def d_loss(p, real, fake):
        real_logits, pullback = vjp(lambda x: discriminate(p, x), real)  # one forward pass for loss and penalty
        loss = _bce(torch, real_logits, 1.0) + _bce(torch, discriminate(p, fake), 0.0)
        if cfg.gradient_penalty == "r1":
            loss = loss + hp.gp_weight * half_mean_sq_norm(pullback(torch.ones_like(real_logits))[0])
        return loss

    def g_loss(p, d_p, z):
        return _bce(torch, discriminate(d_p, generate(p, z)), 1.0)

    d_grads = wrap(lambda g_p, d_p, real, z: vmap(grad(d_loss))(d_p, real, vmap(generate)(g_p, z)))
    g_grads = wrap(vmap(grad(g_loss)))
    g_list = list(g_params.values())
    g_opt, d_opt = _torch_optimizers(torch, cfg, hp, g_list, list(d_params.values()))
    g_ema = [p.detach().clone() for p in g_list]

    def update(real, z_d, z_g):
        with torch.no_grad():  # torch.func.grad differentiates inside it; nothing else is recorded
            _descend(d_opt, d_params, d_grads(g_params, d_params, real, z_d))
            _descend(g_opt, g_params, g_grads(g_params, d_params, z_g))
            torch._foreach_lerp_(g_ema, g_list, 1 - hp.ema_decay)

    return update, g_params, d_params


def _descend(opt, params: dict, grads: dict) -> None:
    for name, p in params.items():
        p.grad = grads[name]
    opt.step()


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
