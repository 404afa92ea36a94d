"""experiments.benchmark as a user runs it: tiny sizes, the JSON report it writes, and its flag errors."""
import json
import subprocess
import sys

import jax
import pytest

from conftest import REPO, run_main
from gan_jax.config import Config
from gan_jax.optim import default_hparams
from gan_jax.train import GAN


def dense(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def r1_state_bytes_by_hand() -> int:
    """R1: G 2-16-16-2 and D 2-16-16-2(features)-1, float32; RMSProp keeps one slot (nu) per parameter and
    nothing else (no hyperparameter lives in the state); G's moving average is a second copy of G; the
    member's key is 2 x uint32, step and diverged_at int32."""
    g_params = dense(2, 16) + dense(16, 16) + dense(16, 2)
    params = g_params + dense(2, 16) + dense(16, 16) + dense(16, 2) + dense(2, 1)
    assert params == 711
    return 4 * (2 * params + g_params) + 8 + 4 + 4


def r2_state_bytes_by_hand() -> int:
    """R2: G 100-128-128-784 and D 784-128-128-1; Adam keeps two slots (mu, nu) per parameter and, per
    optimizer, an int32 count; G's moving average is a second copy of G."""
    g_params = dense(100, 128) + dense(128, 128) + dense(128, 784)
    params = g_params + dense(784, 128) + dense(128, 128) + dense(128, 1)
    return 4 * (3 * params + g_params + 2) + 8 + 4 + 4


def run_benchmark(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "experiments.benchmark", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow  # ~1 minute of subprocesses (JAX, then torch, then 8 emulated devices); run with -m slow
def test_tiny_benchmark_reports_rates_and_state_bytes(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_benchmark("--quick", "--members", "1", "--r2-members", "1", "--seed-steps", "20", "--min-steps", "2",
                         "--r2-seed-steps", "2", "--naive-steps", "5", "--torch-steps", "2", "--emulated-members", "8",
                         "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"jax", "devices", "n_devices", "cpu_count", "gpu"} <= set(report["platform"])

    state = GAN.from_config(Config()).init(jax.random.key(0))
    r1_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    assert r1_bytes == r1_state_bytes_by_hand() == 7120

    assert report["r1"]["naive"]["steps_per_s"] > 0 and report["r2"]["naive"]["steps_per_s"] > 0
    emulated = report["emulated_devices"]
    assert [r["emulated_devices"] for r in emulated["runs"]] == [8, 1]
    assert [r["devices"] for r in emulated["runs"]] == [8, 1]  # 8 members split over all 8 emulated devices
    assert emulated["ratio_8_over_1"] > 0
    for row in report["r1"]["fused"] + emulated["runs"]:
        assert row["seed_steps_per_s"] > 0 and row["compile_s"] > 0
        assert row["state_bytes_per_member"] == r1_bytes
    (r2_row,) = report["r2"]["fused"]
    assert r2_row["members"] == 1 and r2_row["seed_steps_per_s"] > 0
    assert r2_row["state_bytes_per_member"] == r2_state_bytes_by_hand()

    torch_row = report["r2"]["torch"]
    if "skipped" in torch_row:  # torch is optional: the row says why it is missing
        assert torch_row["skipped"] and "skipped" in report["acceptance_r2_vs_torch"]
    else:
        assert torch_row["steps_per_s"] > 0 and torch_row["default_threads"] >= 1
        assert r2_row["x_torch"] == pytest.approx(r2_row["seed_steps_per_s"] / torch_row["steps_per_s"])
        assert report["acceptance_r2_vs_torch"]["one_seed"]["members"] == 1


@pytest.mark.parametrize("flags", [["--members", "0"], ["--members", "4,x"], ["--repeats", "0"], ["--no-such-flag"]])
def test_bad_flag_exits_2(flags, tmp_path):
    proc = run_main("experiments.benchmark", *flags, "--out", tmp_path / "bench.json")
    assert proc.returncode == 2 and "error" in proc.stderr
    assert not (tmp_path / "bench.json").exists()
