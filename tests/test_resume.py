"""Checkpoints through the experiment CLI: a resumed run, or one killed with SIGKILL and resumed, writes what
an uninterrupted run writes; a resume with a shape-changing config is refused before anything is written."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, run_main
from gan_jax.engine import logs
from gan_jax.engine.rundir import read_metrics

FLAGS = ["--seeds", "2", "--log-every", "10", "--snapshot-every", "40", "--checkpoint-every", "20", "--keep", "2",
         "--no-progress", "--no-figures"]


def toy(out, *flags):
    proc = run_main("experiments.toy_quadratic", *FLAGS, "--out", out, *flags)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow  # a duplicate: test_schedule's resumed run extends a CLI run (20 -> 60 steps) to the uninterrupted
# run's metrics, the SIGTERM test below resumes one to them too, and test_checkpoint keeps the last --keep
def test_resume_extends_a_run_to_what_an_uninterrupted_run_writes(tmp_path):
    toy(tmp_path / "whole", "--steps", "60")
    toy(tmp_path / "part", "--steps", "40")
    proc = toy(tmp_path / "part", "--steps", "60", "--resume")
    assert "resuming from the checkpoint at step 40" in proc.stdout
    assert read_metrics(tmp_path / "part" / "metrics.jsonl") == read_metrics(tmp_path / "whole" / "metrics.jsonl")
    assert sorted(p.name for p in (tmp_path / "part" / "checkpoints").iterdir()) == ["40", "60"]  # --keep 2


def test_resume_at_the_last_step_finishes_the_run_without_training(tmp_path):
    """A run killed after its final checkpoint (before its summary and samples) is finished by resuming it
    with the same --steps: nothing trained, the same numbers, speeds null (it divided by zero before)."""
    first = toy(tmp_path / "run", "--steps", "40")
    before = read_metrics(tmp_path / "run" / "metrics.jsonl")
    (tmp_path / "run" / "summary.json").unlink()
    proc = toy(tmp_path / "run", "--steps", "40", "--resume")
    assert "no steps trained here" in proc.stdout and "seed-steps/s" in first.stdout
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == before
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["seed_steps_per_s"] is None


@pytest.mark.slow  # a duplicate: the SIGTERM test below resumes a stopped run; test_checkpoint kills one mid-save
def test_sigkill_mid_run_then_resume_finishes_with_the_same_numbers(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "experiments.toy_quadratic", *FLAGS, "--steps", "200", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "20").is_dir() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # wherever it is: training, evaluating or saving the next checkpoint
    proc.wait()
    assert (out / "checkpoints" / "20").is_dir()
    toy(out, "--steps", "200", "--resume")
    toy(tmp_path / "whole", "--steps", "200")
    assert read_metrics(out / "metrics.jsonl") == read_metrics(tmp_path / "whole" / "metrics.jsonl")


def test_resume_with_a_shape_changing_config_is_refused(tmp_path):
    toy(tmp_path / "run", "--steps", "20")
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    proc = run_main("experiments.toy_quadratic", *FLAGS, "--steps", "40", "--g-hidden", "32,16", "--resume",
                    "--out", tmp_path / "run")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "generator.hidden" in lines[0] and "use the same config" in lines[0], proc.stderr
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before  # nothing lost or rewritten


def test_sigterm_finishes_the_chunk_checkpoints_and_resume_equals_uninterrupted(tmp_path):
    """A cluster's preemption: SIGTERM mid-run ends the run after its current chunk with a checkpoint, the
    summary so far and a line saying how to resume (exit 143); resuming gives the uninterrupted run's
    numbers, every member's metrics files included."""
    out = tmp_path / "preempted"
    cmd = [sys.executable, "-m", "experiments.toy_quadratic", *FLAGS, "--steps", "200", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "20").is_dir() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 143, stderr
    stopped = json.loads((out / "summary.json").read_text())["preempted"]
    assert stopped["signal"] == "SIGTERM" and 20 <= stopped["step"] < 200 and stopped["checkpointed"]
    assert str(stopped["step"]) in {p.name for p in (out / "checkpoints").iterdir()}
    assert f"stopped by SIGTERM at step {stopped['step']} (checkpointed); resume with: python -m " \
           "experiments.toy_quadratic" in stdout and stdout.rstrip().endswith("--resume")
    # what a script's gj.run says before it returns (the line above is the CLI's)
    assert f"gan_jax: {out}: stopped by SIGTERM at step {stopped['step']} of 200, checkpointed; " in stderr
    evaluated_at = json.loads((out / "summary.json").read_text())["evaluated_at"]  # the members' eval_ values' step
    assert evaluated_at <= stopped["step"] and f"its last evaluation was at step {evaluated_at}" in stderr
    assert int(np.load(out / "samples.npz")["step"]) == stopped["step"]  # the samples at the stop
    toy(out, "--steps", "200", "--resume")
    toy(tmp_path / "whole", "--steps", "200")
    assert read_metrics(out / "metrics.jsonl") == read_metrics(tmp_path / "whole" / "metrics.jsonl")
    for mine, theirs in zip(logs.load(out), logs.load(tmp_path / "whole")):
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)
