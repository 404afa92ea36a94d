"""Where a fused step's time goes on this machine: XLA's ops, timed by jax.profiler, summed by kind.

    python -m experiments.op_profile --model DCGAN --members 1
    python -m experiments.op_profile --model R1 --members 256 --steps 100 --member-block 64

Trains `--members` members of the benchmark's model (`speed.model`: R1, R2, r2_wide_r1 or DCGAN, synthetic
images) as one Sweep program of `--steps` steps, traces one more call of it, and prints each kind of op
(matmuls, window copies, their gradients' sums, layout copies, activations, the rest) in ms per step, summed over
both threads of the 2-core CPU (so the total can exceed the wall time), then the ops that took longest. The
wall time printed is the traced call's per step: tracing slows small ops, so it is longer than a plain run's.
"""
from __future__ import annotations

import argparse
import collections
import glob
import re
import sys
import tempfile
import time

import jax

from experiments import speed
from experiments.benchmark import positive_int
from gan_jax.engine import devices
from gan_jax.engine.members import member_keys, stack_hparams
from gan_jax.engine.sweep import Sweep

CONTAINERS = ("ThunkExecutor", "while", "call", "conditional")  # events around other ops: not counted twice
KINDS = [("matmuls", r"^(ynn|xnn|dot|onednn)"), ("window copies (concatenate)", r"^concatenate"),
         ("pad / slice (convolution windows' gradients)", r"^(pad|slice|add_slice)"), ("layout copies", r"^(copy|bitcast)"),
         ("activations and their gradients (multiply, maximum)", r"^(multiply|maximum)")]
REST = "the rest (normalization, optimizer, sampling, ...)"


def op_times(trace_dir: str) -> collections.Counter:
    """Nanoseconds per XLA op name in the trace, over every thread that runs the compiled program's ops."""
    (path,) = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
    totals = collections.Counter()
    for plane in jax.profiler.ProfileData.from_file(path).planes:
        for line in plane.lines:
            if line.name.startswith("tf_XLAEigen"):
                for event in line.events:
                    if not event.name.startswith(CONTAINERS):
                        totals[event.name] += event.duration_ns
    return totals


def kind(op: str) -> str:
    return next((name for name, pattern in KINDS if re.match(pattern, op)), REST)


def main(argv=None):
    devices.use_cpu_cores_as_devices()
    parser = argparse.ArgumentParser(prog="python -m experiments.op_profile", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", choices=sorted(speed.MODELS), default="DCGAN",
                        help="the benchmark's model (its preset, on synthetic images)")
    parser.add_argument("--members", type=positive_int, default=1, help="members trained as one program")
    parser.add_argument("--steps", type=positive_int, default=10,
                        help="steps per call: a first call compiles and warms up, the second is traced")
    parser.add_argument("--member-block", type=positive_int, default=None,
                        help="members vmapped together per device (default: on a CPU the fastest block, measured "
                             "and cached; docs/speed.md, Member layout)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    gan, hp = speed.model(args.model)
    sweep = Sweep(gan, args.members, member_block=args.member_block)
    hps = stack_hparams([hp] * args.members)
    state = jax.block_until_ready(sweep.run(sweep.init(member_keys(range(args.members))), hps, args.steps)[0])
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            start = time.perf_counter()  # the call alone, not the tracer's start and the trace's writing
            jax.block_until_ready(sweep.run(state, hps, args.steps)[0])
            wall = (time.perf_counter() - start) / args.steps
        ops = op_times(trace_dir)
    per_step = {op: ns / 1e6 / args.steps for op, ns in ops.items()}
    total = sum(per_step.values())
    print(f"{args.model}, {args.members} member(s) on {sweep.mesh.devices.size} device(s), block {sweep.block}: "
          f"{total:.1f} ms of op time per step, {1e3 * wall:.1f} ms wall per step (traced)")
    by_kind = collections.Counter()
    for op, ms in per_step.items():
        by_kind[kind(op)] += ms
    for name, ms in by_kind.most_common():
        print(f"  {name:<52} {ms:8.2f} ms  {100 * ms / total:5.1f}%")
    print("longest ops (ms per step):", ", ".join(f"{op} [{kind(op)}] {ms:.2f}"
                                                 for op, ms in collections.Counter(per_step).most_common(8)))


if __name__ == "__main__":
    main()
