"""The README's library example runs as written (one compiled program of 4 members on a task, measured),
the README stays short, and its custom-experiment script runs, resumes and writes its run directory. The
docs pages' examples and every command of the README and the docs: tests/test_docs.py."""
import json
import math
import re

from conftest import REPO, run_main
from gan_jax.engine.rundir import read_metrics
from test_docs import python_blocks, run_blocks


def test_readme_is_short_and_keeps_the_test_command_ci_runs():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == 'python -m pip install -e ".[test]" && python -m pytest -q' and ci in readme.splitlines()
    assert re.search(r"^python -m pip install -e \. && python -m experiments\.toy_quadratic$", readme, re.M)


def check_readme_example(ns):
    members = ns["result"].summary["members"]
    assert [(m["seed"], round(m["lr_g"], 6)) for m in members] == [(0, 1e-3), (1, 1e-3), (0, 3e-4), (1, 3e-4)]
    assert all(math.isfinite(m["eval_curve_distance"]) for m in members)
    assert (ns["result"].run.path / "summary.json").is_file() and ns["result"].summary["steps"] == 100


def test_readme_python_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes runs/ below the working directory
    assert len(python_blocks(REPO / "README.md")) == 1  # the one library example; the rest is in docs/
    run_blocks(REPO / "README.md", {0: check_readme_example})
    assert (tmp_path / "runs" / "readme" / "metrics.jsonl").is_file()


def test_custom_experiment_script_runs_resumes_and_writes_its_run_directory(tmp_path):
    """experiments/custom_gan.py, the README's "write your own experiment": under 60 lines, 16 members (8
    seeds x 2 learning rates), evaluations, checkpoints, resume, figures, report."""
    source = (REPO / "experiments" / "custom_gan.py").read_text()
    assert len(source.splitlines()) < 60 and "gan_jax._" not in source and "._" not in source.replace("__", "")
    out = tmp_path / "spiral"
    first = run_main("experiments.custom_gan", "--out", out, "--steps", "20")  # ends with a checkpoint
    assert first.returncode == 0, first.stderr
    resumed = run_main("experiments.custom_gan", "--out", out, "--steps", "40", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint at step 20" in resumed.stdout
    rows = read_metrics(out / "metrics.jsonl")
    evals = [r for r in rows if "eval_nearest_real" in r]
    # as an uninterrupted 40-step run: evaluations at 0 and the end (the first run's end-of-run
    # evaluation at 20 is no snapshot of a 40-step run, so the resumed run drops it)
    assert sorted({r["step"] for r in evals}) == [0, 40] and len(evals) == 2 * 16
    assert {(r["seed"], r["lr_g"]) for r in evals} == {(s, lr) for s in range(8) for lr in (1e-4, 3e-4)}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["20", "40"]
    assert {"final_samples.png", "losses_by_setting.png"} <= {p.name for p in (out / "figures").iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40 and len(summary["members"]) == 16
    assert "| lr_g=0.0001, lr_d=0.0001 | 8 | 0 |" in (out / "report.md").read_text()
    assert "nearest_real" in resumed.stdout
