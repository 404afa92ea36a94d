"""The experiment entry points as a user runs them: flags, errors, and the run-directory contract."""
import json

import pytest

from conftest import run_main
from gan_jax.engine import logs
from gan_jax.engine.rundir import read_metrics

R1_FIGURES = {"real_data.png", "losses.png", "samples_grid.png", "samples.gif", "final_samples_per_seed.png",
              "features_d_update.png", "features_g_update.png", "eval_metrics.png"}


def test_help_lists_every_setting_with_default():
    out = run_main("experiments.toy_quadratic", "--help").stdout
    for flag in ("--seeds", "--seed", "--steps", "--batch-size", "--lr", "--lr-g", "--lr-d", "--loss",
                 "--optimizer", "--log-every", "--out", "--full", "--n-disc", "--n-gen", "--real-label",
                 "--snapshot-every", "--data", "--raw-data", "--beta1", "--beta2", "--g-hidden", "--d-hidden",
                 "--feature-dim", "--activation", "--latent-dim", "--ema-decay", "--gp-weight"):
        assert flag in out, flag
    assert "(default: 10000)" in out and "(default: rmsprop)" in out and "(default: 256)" in out


@pytest.mark.parametrize("flags, setting", [
    (["--loss", "wgan"], "--loss"),
    (["--optimizer", "lbfgs"], "--optimizer"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr-g", "0"], "--lr-g"),
    (["--batch-size", "0"], "--batch-size"),
    (["--steps", "-5"], "--steps"),
    (["--seeds", "0"], "--seeds"),
    (["--beta1", "1.5", "--optimizer", "adam"], "--beta1"),
    (["--real-label", "0.9", "--loss", "hinge"], "--real-label"),
    (["--snapshot-every", "15"], "--snapshot-every"),
    (["--g-hidden", "16,0"], "--g-hidden"),
    (["--d-hidden", "a,b"], "--d-hidden"),
    (["--ema-decay", "1"], "--ema-decay"),
    (["--schedule", "100:lr_q*0.5"], "--schedule"),
    (["--schedule", "100:lr_g*2", "--optimizer", "adam", "--beta1", "0.9", "--schedule", "200:beta1*1.2"], "beta1"),
    (["--seeds", "100000000"], "--seeds"),  # 712 GB of state: refused before a member is built
    (["--batch-size", "1000000000"], "--batch-size"),  # the compiled step's temporaries: refused before allocating
])
def test_bad_input_exits_2_with_one_line_before_writing(tmp_path, flags, setting):
    out = tmp_path / "run"
    proc = run_main("experiments.toy_quadratic", *flags, "--out", out)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and setting in lines[0], proc.stderr
    assert not out.exists()


def test_out_below_a_file_exits_2_with_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    proc = run_main("experiments.toy_quadratic", "--out", tmp_path / "file" / "run", "--steps", "10")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "is a file, not a directory" in lines[0], proc.stderr
    assert (tmp_path / "file").read_text() == "not a directory" and sorted(tmp_path.iterdir()) == [tmp_path / "file"]


def test_refuses_to_overwrite_a_run(tmp_path):
    (tmp_path / "keep.txt").write_text("earlier work")
    proc = run_main("experiments.toy_quadratic", "--out", tmp_path, "--steps", "10")
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


def test_toy_quadratic_writes_the_run_directory_contract(tmp_path):
    out = tmp_path / "run"
    proc = run_main("experiments.toy_quadratic", "--seeds", "2", "--seed", "5", "--steps", "300",
                    "--snapshot-every", "100", "--log-every", "50", "--lr-d", "2e-3", "--out", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert R1_FIGURES <= {p.name for p in (out / "figures").iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == 300 and config["seeds"] == [5, 6]
    all_rows = read_metrics(out / "metrics.jsonl")
    rows = [r for r in all_rows if "d_loss" in r]
    eval_rows = [r for r in all_rows if "eval_curve_distance" in r]
    assert len(rows) == 2 * 6  # 2 members x steps 0, 50, ..., 250
    assert sorted({r["step"] for r in eval_rows}) == [0, 100, 200, 300] and len(eval_rows) == 8
    assert {(r["member"], r["seed"]) for r in rows} == {(0, 5), (1, 6)}
    assert sorted({r["step"] for r in rows}) == [0, 50, 100, 150, 200, 250]
    assert all(r["lr_d"] == pytest.approx(2e-3) and r["lr_g"] == pytest.approx(1e-3) for r in rows)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("wall_s", "compile_s", "steps_per_s", "seed_steps_per_s", "members"):
        assert key in summary
    assert summary["seed_steps_per_s"] == pytest.approx(2 * summary["steps_per_s"])
    assert [m["seed"] for m in summary["members"]] == [5, 6]
    assert summary["diverged"] == [] and summary["members"][0]["diverged_at"] is None
    last = [r for r in rows if r["step"] == 250 and r["member"] == 1][0]
    assert summary["members"][1]["d_loss"] == pytest.approx(last["d_loss"])
    last_eval = [r for r in eval_rows if r["step"] == 300 and r["member"] == 1][0]
    for name in ("eval_curve_distance", "eval_x_ks", "eval_mmd"):
        assert summary["members"][1][name] == pytest.approx(last_eval[name])
        assert summary["over_seeds"][name]["n"] == 2
    first_eval = [r for r in eval_rows if r["step"] == 0 and r["member"] == 1][0]
    assert last_eval["eval_curve_distance"] < first_eval["eval_curve_distance"]  # it learned something


def test_a_diverging_run_is_reported(tmp_path):
    out = tmp_path / "run"
    proc = run_main("experiments.toy_quadratic", "--seeds", "2", "--steps", "100", "--snapshot-every", "50",
                    "--lr-g", "1e30", "--out", out, "--no-progress", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [d["seed"] for d in summary["diverged"]] == [0, 1]
    assert "diverged (frozen as they were at the step given): member 0 (seed 0) at step" in proc.stdout


@pytest.mark.slow  # a duplicate: test_sweep_cli compares every row of a member of an 8-member sweep with its run alone
def test_a_members_numbers_do_not_depend_on_the_run_it_was_in(tmp_path):
    """Seed 2 in a 4-member run and alone: every metrics.jsonl row the same (training and evaluation),
    but for the member index, to float32 rounding (4 vmapped members and 1 round a logged mean or norm in its
    last bit at times). Evaluation latents come from a named stream, not from the first seed."""
    flags = ["--steps", "40", "--log-every", "10", "--snapshot-every", "20", "--no-progress", "--no-figures"]
    assert run_main("experiments.toy_quadratic", "--seeds", "4", "--out", tmp_path / "four", *flags).returncode == 0
    assert run_main("experiments.toy_quadratic", "--seeds", "1", "--seed", "2", "--out", tmp_path / "one",
                    *flags).returncode == 0
    without_member = lambda rows: [{k: v for k, v in r.items() if k != "member"} for r in rows]  # noqa: E731
    in_four = [r for r in read_metrics(tmp_path / "four" / "metrics.jsonl") if r["seed"] == 2]
    alone = read_metrics(tmp_path / "one" / "metrics.jsonl")
    assert len(alone) == 4 + 3 and any("eval_curve_distance" in r for r in alone)  # 4 logged, 3 evaluations
    assert len(in_four) == len(alone)
    for mine, theirs in zip(without_member(in_four), without_member(alone)):
        assert mine.keys() == theirs.keys() and mine == pytest.approx(theirs, rel=1e-6, abs=1e-7)


def test_a_large_population_streams_its_metrics_to_files_only(tmp_path, monkeypatch):
    """Above JSONL_MAX_MEMBERS members no metrics.jsonl: every member's values go to the compressed
    per-chunk files, and memory keeps curves of at most SAMPLED_MEMBERS members (summary and figures still
    cover everyone). The thresholds (64) are lowered to 4 here, so 6 members are a large population."""
    monkeypatch.setattr(logs, "JSONL_MAX_MEMBERS", 4)
    monkeypatch.setattr(logs, "SAMPLED_MEMBERS", 4)
    out = tmp_path / "run"
    proc = run_main("experiments.toy_quadratic", "--seeds", "6", "--steps", "20", "--log-every", "10",
                    "--snapshot-every", "10", "--out", out, "--no-progress", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "metrics.jsonl").exists()
    train, evals = logs.load(out)
    assert train["d_loss"].shape == (6, 2) and list(train["step"]) == [0, 10] and list(evals["step"]) == [0, 10, 20]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["members"]) == 6 and summary["over_seeds"]["eval_curve_distance"]["n"] == 6
    assert [m["d_loss"] for m in summary["members"]] == pytest.approx(train["d_loss"][:, -1].tolist())


def test_cpu_chunks_are_bounded_and_still_end_on_every_snapshot(tmp_path, monkeypatch):
    """XLA:CPU's host memory grows with a program's step count, so a long snapshot interval runs as
    bounded chunks that divide it: the evaluations and the trained state are as with one chunk."""
    import chex
    import jax
    from gan_jax.engine import experiment
    from gan_jax.core.config import Config
    from gan_jax.engine.members import grid
    from gan_jax.components.optim import default_hparams
    from gan_jax.core.gan import GAN

    assert [experiment.bounded_chunk(e, 10, 1000) for e in (500, 1000, 4000, 2300)] == [500, 1000, 1000, 460]
    assert experiment.bounded_chunk(2300, 100, 1000) == 100 and experiment.bounded_chunk(3000, 1500, 1000) == 1500
    gan = GAN.from_config(Config(batch_size=16, log_every=10))
    members = grid(range(2), default_hparams("rmsprop"))
    options = experiment.RunOptions(60, snapshot_every=60, progress=False)
    whole = experiment.run(gan, members, tmp_path / "whole", options)
    monkeypatch.setattr(experiment, "MAX_CPU_CHUNK_STEPS", 20)
    chunked = experiment.run(gan, members, tmp_path / "chunked", options)
    assert set(whole.sweep.compiled) == {60} and set(chunked.sweep.compiled) == {20}
    chex.assert_trees_all_equal(jax.device_get(chunked.state), jax.device_get(whole.state))
    rows = lambda run: sorted((tmp_path / run / "metrics.jsonl").read_text().splitlines())  # noqa: E731 (chunk order)
    assert rows("chunked") == rows("whole")
