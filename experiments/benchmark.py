"""Throughput of gan_jax's fused sweep against naive JAX (R1) and PyTorch eager (R2), over members and devices.

    python -m experiments.benchmark              # default sizes: about 4 minutes on 2 idle CPU cores
    python -m experiments.benchmark --quick      # short lists, few steps: a smoke test, not a measurement
    python -m experiments.benchmark --members 1,1024 --r2-members 1,16 --out bench.json

R1 is the toy quadratic (16/16 MLPs, RMSProp, batch 256). "Naive JAX" is one seed trained by a Python loop
over a jitted single step. "Fused" is `gan_jax.sweep`: all members vmapped, the whole chunk of steps one
lax.scan, the member axis split over every device (on a CPU host, one device per core) and, for R1, also on
one device. R2 is experiments.mnist_gan's r2 preset (MLP 100-128-128-784 G, 784-128-128-1 D, Adam, batch 100)
on synthetic uint8 images (random pixels: the speed does not depend on them); its baseline is a plain PyTorch
eager loop of the same model, skipped with the reason printed when torch is not importable
(`pip install torch`). These run in one process, so their ratios compare runs measured side by side. Last,
R1 at one member count runs in two subprocesses with XLA_FLAGS=--xla_force_host_platform_device_count=8
and =1: the sharded path over emulated CPU devices against one device.

Rates are the best of --repeats timings. State bytes per member: every TrainState leaf's bytes (parameters,
optimizer slots and scalars, key, counters) divided by the member count.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import time

import jax
import numpy as np

from gan_jax import devices, presets
from gan_jax import sweep as sweep_lib
from gan_jax.config import Config
from gan_jax.data import mnist
from gan_jax.optim import default_hparams
from gan_jax.train import GAN

R1_NAME = "R1 toy quadratic (16/16 MLPs, RMSProp, batch 256)"
R2_NAME = "R2 MNIST MLP (G 100-128-128-784, D 784-128-128-1, Adam, batch 100), synthetic 10,000 x 28 x 28 uint8"
ACCEPTANCE = 2.5  # R2 seed-steps/s on the CPU against the PyTorch eager loop's steps/s
QUICK = dict(members=[1, 4], r2_members=[1, 4], seed_steps=2000, r2_seed_steps=200, min_steps=20,
             naive_steps=200, torch_steps=20, repeats=1, emulated_members=16)


def members_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"members must be comma-separated positive integers, got {text!r}")
    return values


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def best_rate(fn, work: int, repeats: int) -> float:
    """Best of `repeats` timings of fn() (which must block), as work units per second."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return work / min(times)


# -- gan_jax -------------------------------------------------------------------------------------------
def synthetic_images(n: int = 10_000) -> np.ndarray:
    """Random uint8 [n, 28, 28] images: MNIST's shape and type, which is all the speed depends on."""
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def r2_gan(images: np.ndarray) -> GAN:
    """The r2 preset on `images`, sampled by index on device as in a real run."""
    return GAN.from_config(presets.get("r2").config, mnist.image_sampler(images, "tanh"), images[0].size)


def naive(gan: GAN, steps: int, repeats: int) -> dict:
    hp = default_hparams(gan.cfg.optimizer).as_arrays()
    step = sweep_lib.jit_single_step(gan)
    state = jax.jit(gan.init)(jax.random.key(0))  # jitted: distinct buffers, safe to donate
    start = time.perf_counter()
    state, _ = step(state, hp)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start
    box = [state]

    def loop():
        s = box[0]
        for _ in range(steps):
            s, _ = step(s, hp)
        box[0] = jax.block_until_ready(s)

    return {"steps": steps, "compile_s": compile_s, "steps_per_s": best_rate(loop, steps, repeats)}


def fused(gan: GAN, members: int, layout, seed_steps: int, min_steps: int, repeats: int,
          member_block: int | None) -> dict:
    """`members` members for about `seed_steps` seed-steps (at least `min_steps` steps) per timing."""
    steps = max(min_steps, seed_steps // members)
    sweep = sweep_lib.Sweep(gan, members, layout, member_block)
    hp = sweep_lib.stack_hparams([default_hparams(gan.cfg.optimizer)] * members)
    box = [sweep.init(sweep_lib.member_keys(range(members)))]
    sweep.compile(steps)

    def run():
        state, metrics = sweep.run(box[0], hp, steps)
        box[0] = jax.block_until_ready(state)

    rate = best_rate(run, steps * members, repeats)
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(box[0])) // members
    return {"members": members, "devices": int(sweep.mesh.devices.size), "member_block": sweep.block,
            "steps": steps, "compile_s": sweep.compile_s, "seed_steps_per_s": rate,
            "state_bytes_per_member": state_bytes}


# -- PyTorch ---------------------------------------------------------------------------------------------
def torch_mismatch(cfg: Config) -> str | None:
    """Why `torch_r2`'s loop would not be the same model and training as `cfg`, or None."""
    g, d = cfg.generator, cfg.discriminator
    expected = {"noise": (cfg.noise, "uniform"), "loss": (cfg.loss, "non_saturating"),
                "optimizer": (cfg.optimizer, "adam"), "n_disc": (cfg.n_disc, 1), "n_gen": (cfg.n_gen, 1),
                "share_batch": (cfg.share_batch, False), "generator.activation": (g.activation, "leaky_relu"),
                "generator.output_activation": (g.output_activation, "tanh"),
                "discriminator.activation": (d.activation, "leaky_relu"),
                "discriminator.feature_dim": (d.feature_dim, None), "discriminator.dropout": (d.dropout, 0.0),
                "discriminator.negative_slope": (d.negative_slope, g.negative_slope)}
    wrong = [f"{name}={got!r}" for name, (got, want) in expected.items() if got != want]
    return f"the PyTorch loop does not implement {', '.join(wrong)}" if wrong else None


def torch_mlp(nn, widths: list[int], slope: float, output=None):
    """Dense layers of `widths` with leaky_relu between them; Glorot-uniform kernels, zero biases (as gan_jax)."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        dense = nn.Linear(fan_in, fan_out)
        nn.init.xavier_uniform_(dense.weight)
        nn.init.zeros_(dense.bias)
        layers += [dense] if i == len(widths) - 2 else [dense, nn.LeakyReLU(slope)]
    return nn.Sequential(*layers, *([output] if output is not None else []))


def torch_r2(cfg: Config, images: np.ndarray, steps: int, repeats: int) -> dict:
    """A plain eager PyTorch loop of `cfg` (the r2 preset), one seed, timed with torch's default thread count
    and, when that is not 1, with one thread (on a busy machine extra threads can wait on each other)."""
    try:
        import torch
    except ImportError as e:
        return {"skipped": f"torch is not importable ({e}); pip install torch"}
    if (reason := torch_mismatch(cfg)) is not None:
        return {"skipped": reason}
    default = torch.get_num_threads()
    runs = []
    for threads in dict.fromkeys([default, 1]):
        torch.set_num_threads(threads)
        rate = best_rate(torch_loop(torch, cfg, images, steps), steps, repeats)
        runs.append({"threads": threads, "steps_per_s": rate})
    torch.set_num_threads(default)
    return {"torch": torch.__version__, "default_threads": default, "steps": steps, "runs": runs,
            "steps_per_s": runs[0]["steps_per_s"], "best_steps_per_s": max(r["steps_per_s"] for r in runs)}


def torch_loop(torch, cfg: Config, images: np.ndarray, steps: int):
    """`steps` steps of a fresh model, warmed up: per step one D update on a batch drawn by random index from
    uint8 images scaled to [-1, 1] and on G(z), then one G update on fresh z; non-saturating BCE-with-logits
    losses, Adam. D's parameters are frozen (requires_grad off) during the G update."""
    nn, bce = torch.nn, torch.nn.functional.binary_cross_entropy_with_logits
    torch.manual_seed(0)
    slope, batch, latent = cfg.generator.negative_slope, cfg.batch_size, cfg.latent_dim
    g = torch_mlp(nn, [latent, *cfg.generator.hidden, images[0].size], slope, nn.Tanh())
    d = torch_mlp(nn, [images[0].size, *cfg.discriminator.hidden, 1], slope)
    hp = default_hparams("adam")
    g_opt = torch.optim.Adam(g.parameters(), lr=hp.lr_g, betas=(hp.beta1, hp.beta2))
    d_opt = torch.optim.Adam(d.parameters(), lr=hp.lr_d, betas=(hp.beta1, hp.beta2))
    data, ones, zeros = torch.from_numpy(images), torch.ones(batch, 1), torch.zeros(batch, 1)

    def step():
        real = data[torch.randint(len(data), (batch,))].reshape(batch, -1).float() * (2 / 255) - 1
        with torch.no_grad():
            fake = g(torch.rand(batch, latent) * 2 - 1)
        d_loss = bce(d(real), ones) + bce(d(fake), zeros)
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        d.requires_grad_(False)
        g_loss = bce(d(g(torch.rand(batch, latent) * 2 - 1)), ones)
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        d.requires_grad_(True)

    def loop():
        for _ in range(steps):
            step()

    for _ in range(10):  # warm-up: allocator, Adam state
        step()
    return loop


# -- emulated devices ------------------------------------------------------------------------------------
def emulated(args, n_devices: int) -> dict:
    """R1 fused at --emulated-members in a subprocess whose CPU is split into `n_devices` XLA devices."""
    flags = re.sub(r"--xla_force_host_platform_device_count=\S*", "", os.environ.get("XLA_FLAGS", ""))
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={n_devices}".strip())
    cmd = [sys.executable, "-m", "experiments.benchmark", "--worker", "--members", str(args.emulated_members),
           "--seed-steps", str(args.seed_steps), "--min-steps", str(args.min_steps), "--repeats", str(args.repeats)]
    if args.member_block is not None:
        cmd += ["--member-block", str(args.member_block)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=pathlib.Path(__file__).parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} with {n_devices} devices failed:\n{proc.stderr[-2000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["emulated_devices"] = n_devices
    return row


# -- report ----------------------------------------------------------------------------------------------
def platform_info() -> dict:
    import jaxlib

    devices = jax.devices()
    cpu_model = re.search(r"model name\s*:\s*(.*)", pathlib.Path("/proc/cpuinfo").read_text()) \
        if pathlib.Path("/proc/cpuinfo").exists() else None
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "python": platform.python_version(),
            "platform": devices[0].platform, "device_kind": devices[0].device_kind, "n_devices": len(devices),
            "devices": [str(d) for d in devices], "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model.group(1) if cpu_model else platform.processor() or platform.machine(),
            "gpu": sorted({d.device_kind for d in devices if d.platform == "gpu"}) or None,
            "load_avg_1m_start": os.getloadavg()[0]}


def print_fused(rows: list[dict], ratios: list[str]) -> None:
    """A table of fused rows; `ratios` names the x_<baseline> columns to show."""
    print(f"{'members':>8} {'devices':>7} {'block':>5} {'steps':>6} {'compile s':>9} {'seed-steps/s':>13} "
          + "".join(f"{'x ' + name.replace('_', ' '):>13}" for name in ratios) + f" {'state B/member':>14}")
    for r in rows:
        print(f"{r['members']:>8} {r['devices']:>7} {r['member_block']:>5} {r['steps']:>6} {r['compile_s']:>9.2f} "
              f"{r['seed_steps_per_s']:>13,.0f}" + "".join(f"{r['x_' + name]:>13.2f}" for name in ratios)
              + f" {r['state_bytes_per_member']:>14,}")


def acceptance(r2: dict) -> dict:
    """R2 seed-steps/s over the PyTorch loop's steps/s (torch's default threads, and its fastest thread
    count), for 1 member and for the fastest member count."""
    if "skipped" in r2["torch"]:
        return {"skipped": r2["torch"]["skipped"]}
    rows, out = r2["fused"], {"target": ACCEPTANCE}
    one = next((r for r in rows if r["members"] == 1), None)
    for name, row in (("one_seed", one), ("best_members", max(rows, key=lambda r: r["seed_steps_per_s"]))):
        if row is not None:
            out[name] = {"members": row["members"], "x_torch": row["x_torch"], "x_torch_best": row["x_torch_best"],
                         "met": row["x_torch"] >= ACCEPTANCE, "met_vs_torch_best": row["x_torch_best"] >= ACCEPTANCE}
    return out


def print_acceptance(acc: dict) -> None:
    if "skipped" in acc:
        print(f"R2 vs PyTorch: not measured ({acc['skipped']})")
        return
    verdict = {True: "met", False: "NOT met"}
    for name, label in (("one_seed", "1 seed"), ("best_members", "fastest member count")):
        if name in acc:
            r = acc[name]
            members = f"{r['members']} member{'s' if r['members'] != 1 else ''}"
            print(f"R2 target >= {ACCEPTANCE}x PyTorch eager, {label} ({members}): "
                  f"{r['x_torch']:.2f}x torch default threads -> {verdict[r['met']]}; "
                  f"{r['x_torch_best']:.2f}x torch's fastest thread count -> {verdict[r['met_vs_torch_best']]}")


# -- sections --------------------------------------------------------------------------------------------
def run_r1(args) -> dict:
    gan = GAN.from_config(Config())
    all_devices = jax.devices()
    base = naive(gan, args.naive_steps, args.repeats)
    print(f"\n{R1_NAME}\nnaive JAX, 1 seed: {base['steps_per_s']:,.0f} steps/s (compile {base['compile_s']:.2f} s)")
    layouts = [all_devices] + ([all_devices[:1]] if len(all_devices) > 1 else [])
    rows = []
    for members in args.members:
        for layout in layouts if members >= len(all_devices) else layouts[:1]:
            row = fused(gan, members, layout, args.seed_steps, args.min_steps, args.repeats, args.member_block)
            rows.append(dict(row, x_naive=row["seed_steps_per_s"] / base["steps_per_s"]))
    print_fused(rows, ["naive"])
    return {"config": R1_NAME, "naive": base, "fused": rows}


def run_r2(args) -> dict:
    images = synthetic_images()
    gan = r2_gan(images)
    ref = torch_r2(gan.cfg, images, args.torch_steps, args.repeats)
    base = naive(gan, args.torch_steps, args.repeats)
    print(f"\n{R2_NAME}")
    for run in ref.get("runs", []):
        default = " (torch's default)" if run["threads"] == ref["default_threads"] else ""
        print(f"PyTorch {ref['torch']} eager, {run['threads']} thread(s){default}, 1 seed: "
              f"{run['steps_per_s']:,.0f} steps/s")
    if "skipped" in ref:
        print(f"PyTorch eager: skipped ({ref['skipped']})")
    print(f"naive JAX, 1 seed: {base['steps_per_s']:,.0f} steps/s (compile {base['compile_s']:.2f} s)")
    rows = []
    for members in args.r2_members:
        row = fused(gan, members, jax.devices(), args.r2_seed_steps, args.min_steps, args.repeats, args.member_block)
        row["x_naive"] = row["seed_steps_per_s"] / base["steps_per_s"]
        if "skipped" not in ref:
            row["x_torch"] = row["seed_steps_per_s"] / ref["steps_per_s"]
            row["x_torch_best"] = row["seed_steps_per_s"] / ref["best_steps_per_s"]
        rows.append(row)
    print_fused(rows, ["naive"] + ([] if "skipped" in ref else ["torch", "torch_best"]))
    if "skipped" not in ref:
        print("x naive: over naive JAX; x torch: over PyTorch at its default threads; "
              "x torch best: over its fastest thread count")
    return {"config": R2_NAME, "torch": ref, "naive": base, "fused": rows}


def run_emulated(args) -> dict:
    runs = [emulated(args, n) for n in (8, 1)]
    ratio = runs[0]["seed_steps_per_s"] / runs[1]["seed_steps_per_s"]
    print(f"\nR1, {args.emulated_members} members, CPU split into emulated XLA devices (subprocesses):")
    for r in runs:
        print(f"  {r['emulated_devices']} device(s) (mesh {r['devices']}, block {r['member_block']}): "
              f"{r['seed_steps_per_s']:,.0f} seed-steps/s")
    print(f"  8 devices / 1 device: {ratio:.2f}x (on {os.cpu_count()} physical cores)")
    return {"members": args.emulated_members, "runs": runs, "ratio_8_over_1": ratio}


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"small sizes for a smoke test: {QUICK}")
    parser.add_argument("--members", type=members_list, default=[1, 4, 16, 64, 256, 1024], help="R1 member counts")
    parser.add_argument("--r2-members", type=members_list, default=[1, 4, 16, 64], help="R2 member counts")
    parser.add_argument("--seed-steps", type=positive_int, default=20_000, help="R1 seed-steps per fused timing")
    parser.add_argument("--r2-seed-steps", type=positive_int, default=1000, help="R2 seed-steps per fused timing")
    parser.add_argument("--min-steps", type=positive_int, default=20, help="fewest steps in a fused timing")
    parser.add_argument("--naive-steps", type=positive_int, default=2000, help="R1 steps in a naive-loop timing")
    parser.add_argument("--torch-steps", type=positive_int, default=200,
                        help="R2 steps in a PyTorch (and R2 naive JAX) timing")
    parser.add_argument("--emulated-members", type=positive_int, default=256,
                        help="R1 member count run on 8 and on 1 emulated CPU devices")
    parser.add_argument("--no-emulated", action="store_true", help="skip the emulated-devices subprocesses")
    parser.add_argument("--member-block", type=positive_int, default=None,
                        help="members vmapped together per device (default: the Sweep's: 16 on CPU, all on GPU)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timings per measurement; the best counts")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/benchmark.json"), help="JSON file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # emulated(): one R1 row as JSON
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(**QUICK)
    return parser.parse_args(argv)


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    args = parse(argv)
    if args.worker:
        row = fused(GAN.from_config(Config()), args.members[0], jax.devices(), args.seed_steps, args.min_steps,
                    args.repeats, args.member_block)
        print(json.dumps(row))
        return
    start = time.perf_counter()
    info = platform_info()
    print(f"jax {info['jax']}, {info['device_kind']} x{info['n_devices']} ({info['platform']}), "
          f"{info['cpu_count']} CPUs ({info['cpu_model']}), GPU: {', '.join(info['gpu'] or ['none'])}, "
          f"load average {info['load_avg_1m_start']:.1f}")
    report = {"platform": info, "args": {k: str(v) if isinstance(v, pathlib.Path) else v
                                         for k, v in vars(args).items()}}
    report["r1"] = run_r1(args)
    report["r2"] = run_r2(args)
    report["acceptance_r2_vs_torch"] = acceptance(report["r2"])
    report["emulated_devices"] = None if args.no_emulated else run_emulated(args)
    print()
    print_acceptance(report["acceptance_r2_vs_torch"])
    report["wall_s"], info["load_avg_1m_end"] = time.perf_counter() - start, os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} ({report['wall_s']:.0f} s; load average {info['load_avg_1m_end']:.1f} at the end)")


if __name__ == "__main__":
    main()
