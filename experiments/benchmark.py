"""Throughput of the fused, vmapped sweep against naive JAX, on the R1 toy config.

    python -m experiments.benchmark                      # members 1, 8, 64, 256; ~2 min on 2 CPU cores
    python -m experiments.benchmark --members 1,1024 --out bench.json

"Naive JAX" is one seed trained by a Python loop over a jitted single step. "Fused" is `gan_jax.sweep`:
all members vmapped, the whole chunk of steps one lax.scan, the member axis split over every device
(on a CPU host, one device per core) and, for comparison, on one device. All in one process, so the ratios
compare runs measured side by side.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

from gan_jax import sweep as sweep_lib

sweep_lib.use_cpu_cores_as_devices()  # before any JAX computation

import jax  # noqa: E402

from gan_jax.config import Config, default_hparams  # noqa: E402
from gan_jax.train import GAN  # noqa: E402


def members_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"members must be positive integers, got {text}")
    return values


def best_rate(fn, work: int, repeats: int) -> float:
    """Best of `repeats` timings of fn() (which must block), as work units per second."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return work / min(times)


def naive(gan: GAN, steps: int, repeats: int) -> dict:
    hp = default_hparams(gan.cfg.optimizer).as_arrays()
    step = sweep_lib.jit_single_step(gan)
    state = jax.jit(gan.init)(hp, jax.random.key(0))  # jitted: distinct buffers, safe to donate
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

    return {"compile_s": compile_s, "steps_per_s": best_rate(loop, steps, repeats)}


def fused(gan: GAN, members: int, devices, seed_steps: int, repeats: int, member_block: int | None) -> dict:
    steps = max(200, seed_steps // members // 10 * 10)
    sweep = sweep_lib.Sweep(gan, members, devices, member_block)
    hp = sweep_lib.stack_hparams([default_hparams(gan.cfg.optimizer)] * members)
    box = [sweep.init(hp, sweep_lib.member_keys(range(members)))]
    sweep.compile(box[0], hp, steps)

    def run():
        state, metrics = sweep.run(box[0], hp, steps)
        box[0] = jax.block_until_ready(state)

    rate = best_rate(run, steps * members, repeats)
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(box[0])) // members
    return {"members": members, "devices": sweep.mesh.devices.size, "member_block": sweep.block,
            "steps": steps, "compile_s": sweep.compile_s, "seed_steps_per_s": rate,
            "state_bytes_per_member": state_bytes}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--members", type=members_list, default=[1, 8, 64, 256], help="member counts")
    parser.add_argument("--seed-steps", type=int, default=50_000, help="seed-steps timed per fused run")
    parser.add_argument("--naive-steps", type=int, default=2000, help="steps timed in the naive loop")
    parser.add_argument("--member-block", type=int, default=None,
                        help="members vmapped together per device (default: the Sweep's: 16 on CPU, all on GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per measurement; the best counts")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/benchmark.json"), help="JSON file")
    args = parser.parse_args(argv)

    gan = GAN.from_config(Config())  # R1: 16/16 MLPs, RMSProp, batch 256
    devices = jax.devices()
    base = naive(gan, args.naive_steps, args.repeats)
    print(f"{devices[0].device_kind} x{len(devices)} ({devices[0].platform}); naive JAX, 1 seed: "
          f"{base['steps_per_s']:,.0f} steps/s")
    layouts = [devices] + ([devices[:1]] if len(devices) > 1 else [])
    rows = []
    print(f"{'members':>8} {'devices':>7} {'block':>5} {'compile s':>9} {'seed-steps/s':>13} {'x naive':>8}")
    for members in args.members:
        for layout in layouts if members >= len(devices) else layouts[:1]:
            row = fused(gan, members, layout, args.seed_steps, args.repeats, args.member_block)
            row["x_naive"] = row["seed_steps_per_s"] / base["steps_per_s"]
            rows.append(row)
            print(f"{row['members']:>8} {row['devices']:>7} {row['member_block']:>5} {row['compile_s']:>9.2f} "
                  f"{row['seed_steps_per_s']:>13,.0f} {row['x_naive']:>8.2f}")
    report = {"config": "R1 toy quadratic (experiments.toy_quadratic defaults)", "jax": jax.__version__,
              "platform": devices[0].platform, "device_kind": devices[0].device_kind, "n_devices": len(devices),
              "host": platform.processor() or platform.machine(), "naive": base, "fused": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
