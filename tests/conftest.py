"""Shared test settings and helpers.

Every test sees exactly 2 CPU devices, whatever order the files are collected in: the count is pinned
here, before JAX starts its backend (a test that needs another count runs a subprocess with its own
XLA_FLAGS). The member layout follows the rule, not a timed probe (gan_jax.engine.layout), except where a
test asks for the probe. Compiled programs are cached on disk for the session, so the many tests that compile the
same small programs compile them once. XLA compiles them with LLVM's optimizations off and with its older
elementwise emitters (--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false, unless
GAN_JAX_TEST_XLA_OPT=default): the same XLA programs, compiled in about half the time, their float32 rounding
possibly another; what the tests compare across programs is compared to float32 rounding, what they compare
bitwise runs the same step's program on both sides (docs/index.md, Tests).
"""
import contextlib
import importlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple


def pytest_sessionfinish(session):
    if OWN_CACHE:  # the tests' compiled programs: nothing outside this session reads them
        shutil.rmtree(OWN_CACHE, ignore_errors=True)


def xla_env(n_devices: int = 2, **extra) -> dict:
    """os.environ for a subprocess with `n_devices` CPU devices (and any other XLA flags this one has)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    return {**os.environ, "XLA_FLAGS": " ".join(flags + [f"--xla_force_host_platform_device_count={n_devices}"]),
            "JAX_PLATFORMS": "cpu", **extra}


OPT_OFF = [] if os.environ.get("GAN_JAX_TEST_XLA_OPT") == "default" else [
    "--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"]
os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f and f not in OPT_OFF]
    + ["--xla_force_host_platform_device_count=2"] + OPT_OFF)
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["GAN_JAX_PROBE_LAYOUT"] = "0"  # the rule's member block, no timed probe (but in tests/test_layout.py)
# one compilation cache for the session, made by the first process (xdist's workers inherit it) and removed by it
OWN_CACHE = None if "JAX_COMPILATION_CACHE_DIR" in os.environ else tempfile.mkdtemp(prefix="gan_jax_test_cache_")
if OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = OWN_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import pytest  # noqa: E402

from gan_jax.core.config import Config  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-test"
needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


# XLA's default optimization, for the few programs that train long enough to cost more to run than to compile
OPTIMIZED = {"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True} if OPT_OFF else None


def trained(gan, state, hp, steps: int):
    """`gan.run(state, hp, steps)` compiled with OPTIMIZED: R2's 1,000 steps ran 13.4 s at the tests' level 0
    and 3.6 s at the default (compiled in 2.8 s and 4.8 s)."""
    import jax

    return jax.jit(gan.run, static_argnums=2).lower(state, hp, steps).compile(OPTIMIZED)(state, hp)


def run_module(*args, timeout=300, env=None) -> Ran:
    """`python -m <module> <args>` in a subprocess (for what needs a process of its own: signals,
    other device counts, several processes)."""
    proc = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def run_main(module: str, *args) -> Ran:
    """An entry point's `main(args)` in this process, as a user runs it (exit status, stdout, stderr),
    without a new interpreter and JAX start-up per call."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            importlib.import_module(module).main([str(a) for a in args])
        except SystemExit as e:  # as the interpreter ends: None is 0, an int its status, anything else printed, 1
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture
def tiny_cfg() -> Config:
    """R1's model on small batches: fast enough to run hundreds of steps in a test."""
    return Config(batch_size=64, log_every=10)
