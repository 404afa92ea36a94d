"""experiments.benchmark as a user runs it: tiny sizes, the JSON report it writes, and its flag errors; its
PyTorch peers: the DCGAN's parameters, and the torch.func ensemble against separate eager models."""
import copy
import importlib.util
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_main
from experiments import speed
from gan_jax import presets
from gan_jax.components import models, penalties
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN

HAS_TORCH = importlib.util.find_spec("torch") is not None


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


def dcgan_params_by_hand() -> tuple[int, int]:
    """The dcgan preset's (G, D) parameters: G dense 100 -> 7x7x64 (no bias), batch norm's scale and bias,
    transposed conv 4x4 64 -> 32 (no bias), batch norm, transposed conv 4x4 32 -> 1 with bias; D convs 4x4
    1 -> 32 and 32 -> 64 with biases, dense 7x7x64 -> 1. Batch norm's running averages are state, not
    parameters, in both libraries."""
    g = 100 * 3136 + 2 * 64 + 4 * 4 * 64 * 32 + 2 * 32 + 4 * 4 * 32 * 1 + 1
    d = 4 * 4 * 1 * 32 + 32 + 4 * 4 * 32 * 64 + 64 + 3136 * 1 + 1
    return g, d


def test_torch_dcgan_has_the_dcgan_presets_parameters():
    torch = pytest.importorskip("torch")
    gan, _ = speed.model("DCGAN")
    state = jax.eval_shape(gan.init, jax.random.key(0))
    jax_counts = tuple(sum(x.size for x in jax.tree.leaves(p)) for p in (state.g_params, state.d_params))
    g, d = speed.torch_models(torch, gan.cfg)
    torch_counts = tuple(sum(p.numel() for p in m.parameters()) for m in (g, d))
    assert jax_counts == torch_counts == dcgan_params_by_hand() == (347_073, 36_513)
    real, z, _ = speed.torch_batches(torch, gan.cfg, "cpu")(3)
    assert real.shape == (3, 1, 28, 28) and g(z).shape == (3, 1, 28, 28) and d(real).shape == (3, 1)


def test_torch_r1_penalty_equals_gan_jaxs_on_the_same_discriminator():
    """r2_wide_r1's D (784-512-256-1) in torch and in flax with the same weights (torch's Linear weight is the
    flax kernel transposed; biases made non-zero): the torch loop's R1 penalty equals gan_jax's, and its
    gradient reaches D's weights (create_graph), as D's loss needs."""
    torch = pytest.importorskip("torch")
    cfg = presets.get("r2_wide_r1").config
    _, d = speed.torch_models(torch, cfg)
    linears = [m for m in d if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer in linears:
            layer.bias.normal_(0, 0.1)
    flax_d = models.make_models(cfg, 784)[1]
    as_jax = lambda t: jnp.asarray(t.detach().numpy())  # noqa: E731
    params = {name: {"kernel": as_jax(layer.weight).T, "bias": as_jax(layer.bias)}
              for name, layer in zip(["Dense_0", "Dense_1", "logit"], linears)}
    real = np.random.default_rng(0).uniform(-1, 1, (16, 784)).astype(np.float32)
    d_logits = lambda x: flax_d.apply({"params": params}, x)[0]  # noqa: E731
    expected = penalties.r1_penalty(d_logits, None, jnp.asarray(real), None, None)
    x = torch.from_numpy(real).requires_grad_(True)
    mine = speed.r1_penalty(torch, d(x), x)
    np.testing.assert_allclose(mine.item(), float(expected), rtol=1e-5)
    assert float(expected) > 1e-3  # not a vanishing case
    mine.backward()
    assert all(layer.weight.grad.abs().sum() > 0 for layer in linears)


# RMSProp, one shared batch; Adam, batch norm, convs; R1's penalty inside the vmapped gradient, whose 1.1 million
# parameters may hold a gradient that cancels to about eps (below): up to 1 in 10,000 of them off
@pytest.mark.parametrize("preset, off_share", [("r1", 0), ("dcgan", 0), ("r2_wide_r1", 1e-4)])
def test_torch_func_ensemble_steps_each_member_as_its_own_eager_model(preset, off_share):
    """Two members (different weights, different batches) stepped once as one torch.func ensemble equal two
    eager models stepped once. Every parameter moves by about lr (Adam: lr * g / (|g| + eps); RMSProp:
    lr / sqrt(0.1)), so a member fed another's batch, batch norm with the wrong statistics or a missing
    penalty is off by ~lr in many parameters. A gradient that cancels to about eps is the exception: float32
    rounding moves its step by a fraction of lr (seen: 1 of r2_wide_r1's 1.1 million parameters, by lr / 20),
    so for r2_wide_r1 up to 1 in 10,000 parameters may differ by more than lr / 50; for the others none."""
    torch = pytest.importorskip("torch")
    cfg, hp = presets.get(preset).config, presets.get(preset).hparams
    pairs = [speed.torch_models(torch, cfg, "cpu", seed) for seed in (0, 1)]
    eager = copy.deepcopy(pairs)
    update, g_params, d_params = speed.torch_ensemble(torch, cfg, hp, [g for g, _ in pairs], [d for _, d in pairs])
    torch.manual_seed(1)
    real, z_d, z_g = speed.torch_batches(torch, cfg, "cpu")(2, 16)
    before = {k: v.clone() for k, v in g_params.items()}
    update(real, z_d, z_g)
    off, total, worst = 0, 0, 0.0
    for i, (g, d) in enumerate(eager):
        speed.torch_update(torch, cfg, hp, g, d)(real[i], z_d[i], z_g[i])
        for stacked, module in ((g_params, g), (d_params, d)):
            for name, p in module.named_parameters():
                diff = (stacked[name][i] - p).detach().abs()
                off, worst = off + int((diff > min(hp.lr_d, hp.lr_g) / 50).sum()), max(worst, float(diff.max()))
                total += p.numel()
    assert off <= off_share * total, f"{off} of {total} parameters differ by more than lr / 50"
    assert worst <= 10 * max(hp.lr_d, hp.lr_g)  # no parameter far off: a step is at most about 3 lr
    moved = torch.cat([(g_params[k] - before[k]).abs().flatten() for k in before])
    assert (moved > 0.9 * hp.lr_g).float().mean() > 0.99  # all but gradients that cancelled to about eps
    assert not torch.allclose(g_params["0.weight"][0], g_params["0.weight"][1])  # two members, not one twice


@pytest.mark.slow  # about 2 minutes (126 s on 2026-12-06): the CPU suite's every section at small sizes, subprocesses
def test_quick_cpu_benchmark_reports_rates_state_bytes_and_the_cli_rate(tmp_path):
    out = tmp_path / "bench.json"
    proc = run_main("experiments.benchmark", "--quick", "--members", "2", "--r2-members", "2", "--dcgan-members", "2",
                    "--r2-wide-members", "1,2",
                    "--out", out)
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
    check_peers_and_peak(report)
    assert "DCGAN: PyTorch eager" in proc.stdout and "% peak" in proc.stdout


def check_peers_and_peak(report: dict) -> None:
    """The quick CPU suite's DCGAN and r2_wide_r1 rows, PyTorch peers, FLOPs and measured peak (members 2
    everywhere, and 1 too for r2_wide_r1: its 2-member row's x_fewer)."""
    peak = report["peak"]
    assert peak["gflops"] == max(peak["gflops_by"].values()) > 1 and peak["n"] == 2048
    for key, gflop in (("r1", (1e-4, 0.01)), ("r2", (0.2, 0.3)), ("r2_wide_r1", (0.5, 2.5)), ("dcgan", (1.0, 10.0))):
        section = report[key]
        flops = section["flops_per_seed_step"]
        assert gflop[0] < flops / 1e9 < gflop[1]  # R2 0.258 GFLOP (docs/speed.md), the DCGAN about 3
        counts = list(dict.fromkeys(row["members"] for row in section["fused"]))  # R1: on all devices and one
        compiled = section["torch_compiled"]
        assert [e["members"] for e in section["torch_ensemble"]] == counts
        assert compiled["members"] == 2 and compiled["compiled"] is True
        if HAS_TORCH:
            assert all(e["seed_steps_per_s"] > 0 for e in section["torch_ensemble"])
            assert compiled.get("skipped", "").startswith("torch.compile") or compiled["seed_steps_per_s"] > 0
        for row in section["fused"]:
            assert len(row["rounds"]) == 2 and row["seed_steps_per_s"] == max(row["rounds"])  # --quick: 2 rounds
            assert row["noise"] == pytest.approx(1 - min(row["rounds"]) / max(row["rounds"]))
            assert row["gflops_per_s"] == pytest.approx(row["seed_steps_per_s"] * flops / 1e9)
            assert row["pct_peak"] == pytest.approx(100 * row["gflops_per_s"] / peak["gflops"])
            assert not HAS_TORCH or row["x_torch"] > 0 and row["x_torch_ensemble"] > 0
    (row,) = report["dcgan"]["fused"]
    assert row["members"] == 2 and row["seed_steps_per_s"] > 0 and row["compile_s"] > 0 and "x_fewer" not in row
    assert HAS_TORCH != ("skipped" in report["dcgan"]["torch"])
    xla = report["dcgan"]["xla_convolutions"]  # XLA's own convolutions, timed in the same rounds
    assert (row["convolutions"], xla["convolutions"]) == ("windows", "xla")
    assert xla["members"] == 2 and len(xla["rounds"]) == 2 and xla["x_windows"] == pytest.approx(
        xla["seed_steps_per_s"] / row["seed_steps_per_s"])
    one, two = report["r2_wide_r1"]["fused"]
    assert (one["members"], two["members"]) == (1, 2) and "x_fewer" not in one
    assert two["x_fewer"] == pytest.approx(two["seed_steps_per_s"] / one["seed_steps_per_s"])


def test_measurements_are_timed_in_turn_round_after_round_and_keep_their_fastest(monkeypatch):
    """speed.in_rounds: round 1 of every measurement, then round 2 (a slow spell falls on all alike); each
    row's rate is its fastest round, `noise` its rounds' spread; a skipped one passes through in its place."""
    log, clock = [], [0.0]
    seconds = {"a": [2.0, 1.0], "b": [4.0, 5.0]}  # per call, round by round: a is faster in round 2

    def call(name):
        log.append(name)
        clock[0] += seconds[name][sum(n == name for n in log) - 1]

    monkeypatch.setattr(speed.time, "perf_counter", lambda: clock[0])
    a = speed.Prepared(lambda: call("a"), 10, {"name": "a"})
    b = speed.Prepared(lambda: call("b"), 20, {"name": "b"}, "steps_per_s")
    rows = speed.in_rounds([a, {"skipped": "no torch"}, b], rounds=2, min_seconds=0.0)
    assert log == ["a", "b", "a", "b"]
    assert rows[1] == {"skipped": "no torch"}
    assert rows[0] == {"name": "a", "seed_steps_per_s": 10.0, "rounds": [5.0, 10.0], "noise": 0.5}
    assert rows[2] == {"name": "b", "steps_per_s": 5.0, "rounds": [5.0, 4.0], "noise": pytest.approx(0.2)}


@pytest.mark.parametrize("rounds, falls", [([95.0, 85.5], True), ([101.0, 90.0], False), ([95.0, 89.0], False)])
def test_a_row_falls_only_when_its_ratios_to_the_best_at_fewer_members_are_below_1_beyond_their_spread(rounds, falls):
    """benchmark.annotate: x_fewer over the fastest row at fewer members (not the nearest count), best round over
    best round; x_fewer_rounds the same ratio within each round; `falls` when those ratios are below 1 beyond
    their spread (0.95 twice: no spread; 0.95 and 0.99: two rounds cannot tell that from noise)."""
    from experiments import benchmark

    rows = [dict(members=1, devices=1, seed_steps_per_s=80.0, rounds=[80.0, 70.0]),
            dict(members=2, devices=2, seed_steps_per_s=100.0, rounds=[100.0, 90.0]),
            dict(members=4, devices=2, seed_steps_per_s=max(rounds), rounds=rounds)]
    section = {"fused": rows, "torch_ensemble": [], "torch_compiled": {"skipped": "-", "members": 4}}
    benchmark.annotate(section, {"steps_per_s": 50.0, "rounds": [50.0, 45.0]}, {"gflops": 100.0}, 2e9)
    assert "x_fewer" not in rows[0] and rows[1]["x_fewer"] == 1.25 and rows[1]["falls"] is False
    assert rows[2]["x_fewer"] == max(rounds) / 100 and rows[2]["falls"] is falls
    assert rows[2]["x_fewer_rounds"] == [rounds[0] / 100, rounds[1] / 90]
    assert rows[2]["x_torch"] == max(rounds) / 50 and rows[2]["x_torch_rounds"] == [rounds[0] / 50, rounds[1] / 45]
    assert rows[2]["gflops_per_s"] == max(rounds) * 2
    assert rows[2]["pct_peak"] == pytest.approx(max(rounds) * 2) and section["flops_per_seed_step"] == 2e9


def test_falls_is_scipys_one_sided_t_test_of_the_log_ratios_at_5_percent():
    """benchmark.falls against scipy.stats.ttest_1samp (alternative "less") on random ratios around 1, as
    measured rounds give: the same verdict on every draw; one round cannot be judged."""
    import scipy.stats

    from experiments import benchmark

    rng = np.random.default_rng(0)
    verdicts = []
    for _ in range(200):
        ratios = list(np.exp(rng.normal(rng.choice([-0.1, 0.0]), rng.choice([0.01, 0.05]), size=rng.integers(2, 6))))
        expected = scipy.stats.ttest_1samp(np.log(ratios), 0.0, alternative="less").pvalue < 0.05
        assert benchmark.falls(ratios) is bool(expected), ratios
        verdicts.append(expected)
    assert 10 < sum(verdicts) < 190  # both verdicts were tested
    assert benchmark.falls([0.5]) is None


@pytest.mark.slow  # about 70 s: a smoke test of the GPU suite's script at tiny sizes (a lent device runs it whole)
def test_tiny_gpu_suite_runs_every_code_path_and_writes_its_schema(tmp_path):
    """`--suite gpu --tiny` on the CPU: what a GPU slot will run, so it cannot rot before one is lent."""
    out = tmp_path / "gpu.json"
    proc = run_main("experiments.benchmark", "--suite", "gpu", "--tiny", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["suite"] == "gpu" and report["tiny"] is True
    assert [(r["model"], r["precision"], r["members"], r.get("convolutions")) for r in report["rows"]] == [
        ("R1", "fp32", 2, None), ("R1", "bf16", 2, None), ("R2", "fp32", 2, None), ("r2_wide_r1", "fp32", 2, None),
        ("DCGAN", "fp32", 2, "windows"), ("DCGAN", "fp32", 2, "xla")]
    for row in report["rows"]:
        assert row["seed_steps_per_s"] > 0 and row["compile_s"] > 0 and row["state_bytes_per_member"] > 0
        assert row["peak_bytes"] is None  # the CPU reports no device memory statistics
    assert report["rows"][0]["state_bytes_per_member"] == r1_state_bytes_by_hand()
    fit = report["largest_fit"]["R1"]
    assert fit["members"] > 1000 and fit["members"] * fit["bytes_per_member"] <= fit["limit_bytes"]
    assert report["naive"]["R1"]["steps_per_s"] > 0 and set(report["goals"]) >= {
        "R2_64x300k_under_300s", "R1_1024x100k_under_120s"}
    for name in ("R1", "R2", "r2_wide_r1", "DCGAN"):  # PyTorch eager, the torch.func ensemble (eager only, when tiny)
        torch = report["torch"][name]
        assert torch.get("skipped") or torch["steps_per_s"] > 0
        (ensemble,) = report["torch_ensemble"][name]
        assert ensemble["members"] == 2 and not ensemble["compiled"]
        assert ensemble.get("skipped") or ensemble["seed_steps_per_s"] > 0
    assert "largest fit" in proc.stdout and "goal R1_1024x100k_under_120s" in proc.stdout
    assert "DCGAN: PyTorch eager" in proc.stdout and "torch.func ensemble, 2 members" in proc.stdout


def test_the_whole_gpu_suite_runs_its_rows_ratios_and_goals_on_fake_measurements(monkeypatch, capsys):
    """The full-size GPU suite's logic, in a second, with each measurement faked (a member count's rate is
    1,000 x its members; PyTorch eager 10 steps/s; an ensemble 100 x its members): which rows it times, in
    which order, their ratios to the ensembles, and the goals computed by hand from those rates. The slow
    `--tiny` test runs the real measurements, but not this path's sizes."""
    from experiments import benchmark

    def model(name, precision="fp32", convolutions="windows"):
        cfg = types.SimpleNamespace(architecture="dcgan" if name == "DCGAN" else "mlp")
        return types.SimpleNamespace(cfg=cfg, name=name, precision=precision, convolutions=convolutions), None

    def fused(gan, hp, n, steps, min_seconds):
        return {"members": n, "seed_steps_per_s": 1000.0 * n, "devices": 1, "member_block": n, "compile_s": 1.0,
                "state_bytes_per_member": 8, "peak_bytes": None, "timed": (gan.name, gan.precision, gan.convolutions)}

    monkeypatch.setattr(speed, "model", model)
    monkeypatch.setattr(speed, "fused", fused)
    monkeypatch.setattr(speed, "torch_rate", lambda cfg, hp, steps, s: {"steps_per_s": 10.0, "device": "cuda:0"})
    monkeypatch.setattr(speed, "torch_ensemble_rate", lambda cfg, hp, n, steps, s, compile: {
        "members": n, "compiled": compile, "seed_steps_per_s": 100.0 * n})
    monkeypatch.setattr(speed, "largest_fit", lambda gan, n: {"members": 10 * n, "bytes_per_member": 8.0,
                                                              "limit": "device", "limit_bytes": 1e9})
    monkeypatch.setattr(speed, "naive", lambda gan, hp, steps, s: {"steps_per_s": 5.0})
    report = benchmark.gpu_suite(tiny=False, min_seconds=0.0)
    expected = [("R1", "fp32", n) for n in (1024, 8192, 65536)] + [("R1", "bf16", 8192)] \
        + [("R2", "fp32", n) for n in (64, 512, 4096)] + [("R2", "bf16", 512)] \
        + [("r2_wide_r1", "fp32", n) for n in (64, 512)] + [("r2_wide_r1", "bf16", 512)] \
        + [("DCGAN", "fp32", 64, "windows"), ("DCGAN", "fp32", 256, "windows"), ("DCGAN", "fp32", 64, "xla"),
           ("DCGAN", "bf16", 256, "windows")]
    assert [(r["model"], r["precision"], r["members"], *([r["convolutions"]] if "convolutions" in r else []))
            for r in report["rows"]] == expected
    assert all(r["timed"] == (r["model"], r["precision"], r.get("convolutions", "windows")) for r in report["rows"])
    with_peers = {(r["model"], r["members"], r.get("convolutions")): (r["x_torch_ensemble"], r["x_torch_compiled"])
                  for r in report["rows"] if "x_torch_ensemble" in r}
    assert with_peers == {("R1", 1024, None): (10, 10), ("R2", 64, None): (10, 10), ("r2_wide_r1", 64, None): (10, 10),
                          ("DCGAN", 64, "windows"): (10, 10), ("DCGAN", 64, "xla"): (10, 10)}  # fp32 rows only
    assert report["largest_fit"]["DCGAN"]["members"] == 2560 and set(report["naive"]) == {"R1", "R2", "r2_wide_r1"}
    assert report["goals"] == {  # 64 x 300,000 / 64,000 s; 1,024 x 100,000 / 1,024,000 s; 65,536,000 / 10
        "R2_64x300k_under_300s": {"seconds": 300.0, "met": False},
        "R1_1024x100k_under_120s": {"seconds": 100.0, "met": True},
        "R1_1000x_torch": {"x_torch": 6_553_600.0, "torch_device": "cuda:0", "met": True}}
    benchmark.print_gpu(report)
    printed = capsys.readouterr().out
    assert "DCGAN 64 members fp32 (xla): 64,000 seed-steps/s" in printed and "goal R1_1000x_torch" in printed


@pytest.mark.parametrize("flags", [["--members", "0"], ["--members", "4,x"], ["--repeats", "0"], ["--no-such-flag"]])
def test_bad_flag_exits_2(flags, tmp_path):
    proc = run_main("experiments.benchmark", *flags, "--out", tmp_path / "bench.json")
    assert proc.returncode == 2 and "error" in proc.stderr
    assert not (tmp_path / "bench.json").exists()


def test_profile_sums_each_kind_of_op_and_the_shares_add_up():
    """experiments.op_profile on 2 R1 members: every line's ms add up to the printed op time, the shares to
    100%, and R1's MLP has matmuls and activations but no convolution windows to copy."""
    proc = run_main("experiments.op_profile", "--model", "R1", "--members", "2", "--steps", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    head, *lines, longest = proc.stdout.strip().splitlines()
    total = float(head.split(": ")[1].split(" ms of op time")[0])
    kinds = {line[:54].strip(): (float(line.split()[-3]), float(line.split()[-1].rstrip("%"))) for line in lines}
    assert {"matmuls", "activations and their gradients (multiply, maximum)"} <= set(kinds)
    assert "window copies (concatenate)" not in kinds and longest.startswith("longest ops (ms per step):")
    assert sum(ms for ms, _ in kinds.values()) == pytest.approx(total, abs=0.01 * len(kinds) + 0.05)
    assert sum(share for _, share in kinds.values()) == pytest.approx(100, abs=0.1 * len(kinds))
    assert total > 0 and kinds["matmuls"][0] > 0
