"""The README's library examples run as written (presets on a task, a new sampler, model, loss and metric
plugged into a sweep), and its custom-experiment script runs, resumes and writes its run directory."""
import json
import re

import flax.linen as nn

from conftest import REPO, run_main
from gan_jax.components.models import Discriminator, Generator
from gan_jax.engine.rundir import read_metrics


def test_readme_python_examples_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write runs/ below the working directory
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert len(blocks) >= 6
    # the README's placeholders for the user's own flax modules
    namespace = {"MyGenerator": lambda: Generator((16, 16), 2),
                 "MyDiscriminator": lambda: Discriminator((16, 16), 2)}
    for block in blocks:
        exec(block, namespace)
    assert namespace["metrics"]["d_loss"].shape == (16, 200)  # as its comment says
    assert isinstance(namespace["gan"].generator, nn.Module)
    assert namespace["result"].evals["eval_mean_radius"].shape == (2, 2)
    assert (tmp_path / "runs" / "readme-r1" / "figures" / "samples.gif").is_file()
    assert abs(namespace["decayed"].summary["members"][0]["lr_g"] - 1e-4) < 1e-9  # the schedule's value
    [copy] = namespace["controller"].records  # PBT: at step 100 the worst of 4 copied a better member
    assert copy["step"] == 100 and copy["source_value"] < copy["value"]


def test_custom_experiment_script_runs_resumes_and_writes_its_run_directory(tmp_path):
    """experiments/custom_gan.py, the README's "write your own experiment": under 60 lines, 16 members (8
    seeds x 2 learning rates), evaluations, checkpoints, resume, figures, report."""
    source = (REPO / "experiments" / "custom_gan.py").read_text()
    assert len(source.splitlines()) < 60 and "gan_jax._" not in source and "._" not in source.replace("__", "")
    out = tmp_path / "spiral"
    first = run_main("experiments.custom_gan", "--out", out, "--steps", "100")  # ends with a checkpoint
    assert first.returncode == 0, first.stderr
    resumed = run_main("experiments.custom_gan", "--out", out, "--steps", "200", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from the checkpoint at step 100" in resumed.stdout
    rows = read_metrics(out / "metrics.jsonl")
    evals = [r for r in rows if "eval_nearest_real" in r]
    # as an uninterrupted 200-step run: evaluations at 0 and the end (the first run's end-of-run
    # evaluation at 100 is no snapshot of a 200-step run, so the resumed run drops it)
    assert sorted({r["step"] for r in evals}) == [0, 200] and len(evals) == 2 * 16
    assert {(r["seed"], r["lr_g"]) for r in evals} == {(s, lr) for s in range(8) for lr in (1e-4, 3e-4)}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["100", "200"]
    assert {"final_samples.png", "losses_by_setting.png"} <= {p.name for p in (out / "figures").iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 200 and len(summary["members"]) == 16
    assert "| lr_g=0.0001, lr_d=0.0001 | 8 | 0 |" in (out / "report.md").read_text()
    assert "nearest_real" in resumed.stdout
