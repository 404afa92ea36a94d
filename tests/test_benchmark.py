"""experiments.benchmark as a user runs it: tiny sizes, the JSON report it writes, and its flag errors."""
import json

import jax
import pytest

from conftest import run_main
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN


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


@pytest.mark.slow  # about 2 minutes: the CPU suite's every section at small sizes, subprocesses included
def test_quick_cpu_benchmark_reports_rates_state_bytes_and_the_cli_rate(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_main("experiments.benchmark", "--quick", "--members", "2", "--r2-members", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"jax", "devices", "n_devices", "cpu_count", "gpu"} <= set(report["platform"])
    r1_bytes = sum(x.nbytes for x in jax.tree.leaves(GAN.from_config(Config()).init(jax.random.key(0))))
    assert r1_bytes == r1_state_bytes_by_hand() == 7120
    for row in report["r1"]["fused"] + report["emulated_devices"]["runs"]:
        assert row["seed_steps_per_s"] > 0 and row["compile_s"] > 0 and row["state_bytes_per_member"] == r1_bytes
    assert [r["devices"] for r in report["emulated_devices"]["runs"]] == [8, 1]
    (r2_row,) = report["r2"]["fused"]
    assert r2_row["state_bytes_per_member"] == r2_state_bytes_by_hand()
    cli = report["r1"]["cli"]
    assert cli["members"] == 16 and cli["steps"] == 200 and cli["seed_steps_per_s"] > 0 and "x_benchmark" not in cli


@pytest.mark.slow  # about 70 s: a smoke test of the GPU suite's script at tiny sizes (a lent device runs it whole)
def test_tiny_gpu_suite_runs_every_code_path_and_writes_its_schema(tmp_path):
    """`--suite gpu --tiny` on the CPU: what a GPU slot will run, so it cannot rot before one is lent."""
    out = tmp_path / "gpu.json"
    proc = run_main("experiments.benchmark", "--suite", "gpu", "--tiny", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["suite"] == "gpu" and report["tiny"] is True
    assert [(r["model"], r["precision"], r["members"]) for r in report["rows"]] == [
        ("R1", "fp32", 2), ("R1", "bf16", 2), ("R2", "fp32", 2), ("DCGAN", "fp32", 2)]
    for row in report["rows"]:
        assert row["seed_steps_per_s"] > 0 and row["compile_s"] > 0 and row["state_bytes_per_member"] > 0
        assert row["peak_bytes"] is None  # the CPU reports no device memory statistics
    assert report["rows"][0]["state_bytes_per_member"] == r1_state_bytes_by_hand()
    fit = report["largest_fit"]["R1"]
    assert fit["members"] > 1000 and fit["members"] * fit["bytes_per_member"] <= fit["limit_bytes"]
    assert report["naive"]["R1"]["steps_per_s"] > 0 and set(report["goals"]) >= {
        "R2_64x300k_under_300s", "R1_1024x100k_under_120s"}
    torch = report["torch"]["R1"]
    assert torch.get("skipped") or torch["steps_per_s"] > 0
    assert "largest fit" in proc.stdout and "goal R1_1024x100k_under_120s" in proc.stdout


@pytest.mark.parametrize("flags", [["--members", "0"], ["--members", "4,x"], ["--repeats", "0"], ["--no-such-flag"]])
def test_bad_flag_exits_2(flags, tmp_path):
    proc = run_main("experiments.benchmark", *flags, "--out", tmp_path / "bench.json")
    assert proc.returncode == 2 and "error" in proc.stderr
    assert not (tmp_path / "bench.json").exists()
