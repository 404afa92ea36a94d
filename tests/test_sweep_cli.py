"""experiments.sweep: grid syntax, bad grid input, member -> (seed, hyperparameters) mapping, static groups,
and the report."""
import json

import pytest

from conftest import run_main
from experiments import sweep as sweep_cli
from gan_jax.core.config import HParams
from gan_jax.engine.members import grid
from gan_jax.engine.rundir import read_metrics


def parsed(*argv):
    return sweep_cli.parse(list(argv))


def test_help_documents_the_grid_syntax():
    out = run_main("experiments.sweep", "--help").stdout
    assert "comma-separated" in out and "--seeds 16 --lr 1e-4,3e-4,1e-3" in out
    for flag in ("--lr", "--lr-g", "--lr-d", "--beta1", "--beta2", "--real-label", "--gp-weight", "--batch-size",
                 "--loss", "--optimizer", "--experiment", "--seeds"):
        assert flag in out, flag


@pytest.mark.parametrize("flags, fragment", [
    (["--lr", ""], "empty value"),
    (["--lr", "1e-4,,3e-4"], "empty value"),
    (["--lr", "1e-4,fast"], "bad value"),
    (["--lr", "1e-4,-3e-4"], "must be finite and in (0, inf), got -3e-4"),
    (["--seeds", "0,1,1"], "duplicate value"),
    (["--real-label", "0.9,0.9"], "duplicate value"),
    (["--loss", "non_saturating,wgan"], "is not one of"),
    (["--real-label", "1.5"], "--real-label"),
    (["--gp-weight", "1", "--", "--gradient-penalty", "none"], "--gradient-penalty"),
    (["--beta1", "1.2", "--", "--optimizer", "adam"], "beta1"),
])
def test_bad_grid_input_exits_2_with_one_line_before_writing(tmp_path, flags, fragment):
    out = tmp_path / "sweep"
    proc = run_main("experiments.sweep", "--out", out, *flags)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert not out.exists()


def test_grid_is_seeds_times_settings_with_common_seeds():
    _, args, rest = parsed("--seeds", "3", "--seed", "5", "--lr", "1e-4,1e-3", "--real-label", "1,0.9",
                           "--", "--steps", "20")
    assert args.seeds == [5, 6, 7] and rest == ["--steps", "20"]
    assert sweep_cli.traced_lists(args) == {"lr": [1e-4, 1e-3], "real_label": [1.0, 0.9]}
    members = grid(args.seeds, HParams(), **sweep_cli.traced_lists(args))  # settings slowest, seeds fastest
    assert [(m.seed, m.hparams.lr_g, m.hparams.lr_d, m.hparams.real_label) for m in members] == [
        (seed, lr, lr, label) for lr in (1e-4, 1e-3) for label in (1.0, 0.9) for seed in (5, 6, 7)]
    assert sweep_cli.groups(args) == [{}]  # no static list: one compiled group
    _, args, _ = parsed("--batch-size", "64,128", "--loss", "hinge,least_squares")
    assert [sweep_cli.group_name(g) for g in sweep_cli.groups(args)] == [
        "batch_size=64-loss=hinge", "batch_size=64-loss=least_squares",
        "batch_size=128-loss=hinge", "batch_size=128-loss=least_squares"]


def test_sweep_runs_one_group_and_logs_each_members_seed_and_hparams(tmp_path):
    out = tmp_path / "sweep"
    proc = run_main("experiments.sweep", "--seeds", "0,7", "--lr", "1e-3,3e-3", "--real-label", "1,0.9",
                    "--out", out, "--", "--steps", "40", "--log-every", "10", "--snapshot-every", "20",
                    "--no-progress", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    assert "group all: 8 members (4 settings x 2 seeds), one compiled program" in proc.stdout
    config = json.loads((out / "all" / "config.json").read_text())
    expected = [(seed, lr, label) for lr in (1e-3, 3e-3) for label in (1.0, 0.9) for seed in (0, 7)]
    got = [(seed, hp["lr_g"], hp["real_label"]) for seed, hp in zip(config["seeds"], config["hparams"])]
    assert got == expected and all(hp["lr_d"] == hp["lr_g"] for hp in config["hparams"])
    rows = [r for r in read_metrics(out / "all" / "metrics.jsonl") if "d_loss" in r]
    assert {(r["member"], r["seed"], r["lr_g"], r["real_label"]) for r in rows} == {
        (i, *m) for i, m in enumerate(expected)}
    # a member's numbers do not depend on the run it was in: every row of seed 7 at (3e-3, 0.9), training and
    # evaluation, equals a plain run of that seed and setting alone, but for the member index, to float32
    # rounding (8 vmapped members and 1 round a logged mean or norm in its last bit at times); evaluation
    # latents come from a named stream, not from the first seed
    single = tmp_path / "single"
    proc = run_main("experiments.toy_quadratic", "--seeds", "1", "--seed", "7", "--lr", "3e-3", "--real-label",
                    "0.9", "--steps", "40", "--log-every", "10", "--snapshot-every", "20", "--out", single,
                    "--no-progress", "--no-figures")
    assert proc.returncode == 0, proc.stderr
    without_member = lambda rows: [{k: v for k, v in r.items() if k != "member"} for r in rows]  # noqa: E731
    mine = [r for r in read_metrics(out / "all" / "metrics.jsonl") if r["member"] == expected.index((7, 3e-3, 0.9))]
    theirs = read_metrics(single / "metrics.jsonl")
    assert len(mine) == len(theirs) == 4 + 3 and any("eval_curve_distance" in r for r in theirs)  # 4 logged, 3 evals
    for a, b in zip(without_member(mine), without_member(theirs)):
        assert a.keys() == b.keys() and a == pytest.approx(b, rel=1e-6, abs=1e-7)
    report = (out / "report.md").read_text()
    assert report.count("\n| lr_g=") == 4 and "| 2 | 0 |" in report  # 4 settings, 2 seeds each, none diverged
    assert {p.name for p in (out / "figures").iterdir()} == {"losses_by_setting.png", "metrics_vs_hparams.png"}
