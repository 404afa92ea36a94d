"""After the run: load a run and sample any member (bitwise what samples.npz holds), score any samples file
with a task's metrics (a run's own file reproduces its final numbers; another library's array in [0, 1],
[-1, 1] or 0-255 scores the same), compare runs per setting with a test."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gan_jax as gj
from conftest import SHARED_MNIST, needs_mnist, run_main
from gan_jax.data import mnist
from gan_jax.metrics import features, mnist as mnist_eval, stats, toy as toy_metrics
from gan_jax.reporting.compare import ALPHA, p_text
from gan_jax.tasks import toy


# The k-NN metrics count samples inside balls: where a distance ties its ball's radius to float32 rounding,
# another compiled program (the run's evaluation inside its sweep, here one jit) may count it once more or less
# (seen on an AMD EPYC, not on an Intel Xeon): one count is that rounding's size
ONE_COUNT = {"precision": 1 / toy_metrics.FEATURE_SAMPLES, "recall": 1 / toy_metrics.FEATURE_SAMPLES,
             "coverage": 1 / toy_metrics.FEATURE_SAMPLES, "density": 1 / (features.DC_K * toy_metrics.FEATURE_SAMPLES)}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """4 members: seeds 0 and 1 at two learning rates, 40 steps, evaluated at 0, 20, 40."""
    out = tmp_path_factory.mktemp("runs") / "r1"
    members = gj.grid(range(2), gj.presets.get("r1").hparams, lr=[1e-3, 3e-3])
    toy.train_and_evaluate(gj.Config(batch_size=32, log_every=10), members, out,
                           gj.RunOptions(40, snapshot_every=20, progress=False), figures=False)
    return out


def test_load_gives_the_run_back_and_generate_equals_samples_npz(toy_run):
    run = gj.load(toy_run)
    assert run.step == 40 and run.seeds == [0, 1, 0, 1] and run.summary["steps"] == 40
    assert [float(m.hparams.lr_g) for m in run.members] == [1e-3, 1e-3, 3e-3, 3e-3]
    assert run.task is toy.TASK and len(run.logs()) == 4 * (4 + 3)  # 4 logged steps and 3 evaluations each
    made = toy._scorer.cache_info()
    scorer = toy.scorer("quadratic")  # made once per dataset in a process: here, by the run
    assert toy._scorer.cache_info().hits == made.hits + 1 and toy._scorer.cache_info().misses == made.misses
    scorer.provenance["features"]["space"] = "changed"  # a caller's copy: the next one is untouched
    assert toy.scorer("quadratic").provenance["features"]["space"] != "changed"
    stored = np.load(toy_run / "samples.npz")["samples"]
    for k in range(4):
        assert np.array_equal(run.encode(run.generate(k)), stored[k])
    kid = [m["eval_kid"] for m in run.summary["members"]]
    assert run.member(best="kid") == int(np.argmin(kid))  # KID: lower is better
    with pytest.raises(gj.ConfigError, match="not a member"):
        run.member(7)


def test_sample_writes_a_member_s_samples_without_training(toy_run, tmp_path):
    ran = run_main("experiments.sample", toy_run, "--member", "2", "--out", tmp_path / "m2.npz")
    assert ran.returncode == 0, ran.stderr
    drawn = np.load(tmp_path / "m2.npz")
    assert int(drawn["member"]) == 2 and np.array_equal(drawn["samples"], np.load(toy_run / "samples.npz")["samples"][2])
    assert run_main("experiments.sample", toy_run, "--best", "kid", "--out", tmp_path / "best.png").returncode == 0
    assert (tmp_path / "best.png").stat().st_size > 0
    bad = run_main("experiments.sample", toy_run, "--best", "nope", "--out", tmp_path / "x.npz")
    assert bad.returncode == 2 and "has no final 'nope'" in bad.stderr
    scored = run_main("experiments.evaluate", tmp_path / "m2.npz", "--task", "toy", "--out", tmp_path / "m2.json")
    assert scored.returncode == 0, scored.stderr  # sample's own output is a samples file too
    final = json.loads((toy_run / "summary.json").read_text())["members"][2]
    assert json.loads((tmp_path / "m2.json").read_text())["members"][0]["kid"] == pytest.approx(final["eval_kid"],
                                                                                               rel=1e-5)
    for n in (1200, 300):  # more than the run's evaluation scored is fine; fewer than KID's 1,000 cannot be scored
        assert run_main("experiments.sample", toy_run, "--member", "2", "--n", n, "--out", tmp_path / f"{n}.npz"
                        ).returncode == 0
    assert run_main("experiments.evaluate", tmp_path / "1200.npz", "--task", "toy", "--out", tmp_path / "1200.json"
                    ).returncode == 0
    assert json.loads((tmp_path / "1200.json").read_text())["provenance"]["samples"] == 1200  # what was scored
    few = run_main("experiments.evaluate", tmp_path / "300.npz", "--task", "toy")
    assert few.returncode == 2 and "300 samples per member, and this task's metrics need at least 1000" in few.stderr
    stacked = np.load(toy_run / "samples.npz")["samples"]  # [4 members, n, 2] as one bare array: one member's?
    np.save(tmp_path / "stacked.npy", stacked)
    wrong = run_main("experiments.evaluate", tmp_path / "stacked.npy", "--task", "toy")
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr


def test_evaluate_on_a_run_s_samples_reproduces_its_final_numbers(toy_run, tmp_path):
    ran = run_main("experiments.evaluate", toy_run / "samples.npz", "--task", "toy", "--out", tmp_path / "s.json")
    assert ran.returncode == 0, ran.stderr
    scores = json.loads((tmp_path / "s.json").read_text())
    final = json.loads((toy_run / "summary.json").read_text())["members"]
    assert len(scores["members"]) == 4 and scores["real_reference"]["kid"] < 0.1
    for mine, theirs in zip(scores["members"], final):
        for name, value in mine.items():
            assert value == pytest.approx(theirs[f"eval_{name}"], rel=1e-5, abs=ONE_COUNT.get(name, 1e-7)), name
    # two learning rates: each setting's interval over its own members, as summary.json's, never one over both
    groups = json.loads((toy_run / "summary.json").read_text())["by_setting"]
    assert scores["over_members"] == {} and [g["members"] for g in scores["by_setting"]] == [[0, 1], [2, 3]]
    for mine, theirs in zip(scores["by_setting"], groups):
        assert mine["setting"] == theirs["setting"] and mine["members"] == theirs["members"]
        for name, interval in mine["over_seeds"].items():
            own = stats.mean_ci95([scores["members"][i][name] for i in mine["members"]])
            assert interval == pytest.approx(own, rel=1e-6), name
    assert "lr 0.001: mean" in ran.stdout and "lr 0.003: mean" in ran.stdout


@needs_mnist
def test_another_library_s_images_score_the_same_in_any_range(tmp_path):
    """2,000 real MNIST digits as a PyTorch user would save them: [N, 28, 28] floats in [0, 1]; the same in
    [-1, 1] and as 0-255 floats score identically, and near the real-data ceiling."""
    test = mnist.load_idx(SHARED_MNIST, "test")
    (train, _), _ = mnist_eval.heldout_split(test.images, test.labels)
    unit = train[:2000].astype(np.float32) / 255
    scores = {}
    for name, array in (("unit", unit), ("tanh", unit * 2 - 1), ("uint8", unit * 255)):
        np.save(tmp_path / f"{name}.npy", array)
        ran = run_main("experiments.evaluate", tmp_path / f"{name}.npy", "--task", "mnist", "--data-dir", SHARED_MNIST,
                       "--out", tmp_path / f"{name}.json")
        assert ran.returncode == 0, ran.stderr
        assert f"values read as {gj.runs.RANGES[name]} (detected" in ran.stdout
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert scores["unit"]["members"] == scores["tanh"]["members"] == scores["uint8"]["members"]
    ceiling, got = scores["unit"]["real_reference"], scores["unit"]["members"][0]
    assert got["classifier_score"] == pytest.approx(ceiling["classifier_score"], rel=0.02)
    wrong = run_main("experiments.evaluate", tmp_path / "unit.npy", "--task", "toy")
    assert wrong.returncode == 2 and "width 784 are not this task's 2-D data" in wrong.stderr


def test_images_in_any_accepted_layout_read_alike_and_another_layout_is_refused(tmp_path):
    """[n, h, w, c], [n, h*w*c], PyTorch's channels-first [n, c, h, w] (and for one channel [n, h, w]) read as
    the same pixels; a layout of the right size but another shape, [n, 14, 56] for 28x28 digits, is refused."""
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), np.uint8)
    layouts = {"hwc": images, "flat": images.reshape(5, -1), "chw": np.moveaxis(images, -1, 1)}
    read = {}
    for name, array in layouts.items():
        np.save(tmp_path / f"{name}.npy", array)
        read[name], _, said = gj.runs.read_samples(tmp_path / f"{name}.npy", (8, 8, 3))
        assert ("channels first (moved last)" in said) == (name == "chw")
    assert np.array_equal(read["hwc"], read["flat"]) and np.array_equal(read["hwc"], read["chw"])
    digits = images[..., 0]
    np.save(tmp_path / "nchw.npy", digits[:, None]), np.save(tmp_path / "nhw.npy", digits)
    assert np.array_equal(gj.runs.read_samples(tmp_path / "nchw.npy", (8, 8, 1))[0],
                          gj.runs.read_samples(tmp_path / "nhw.npy", (8, 8, 1))[0])
    np.save(tmp_path / "wrong.npy", digits.reshape(5, 4, 16))
    with pytest.raises(gj.ConfigError, match=r"^`file`: .*wrong.npy holds an array of shape \(5, 4, 16\), whose "
                                             r"samples of shape \(4, 16\) are not \(8, 8, 1\) images; "):
        gj.runs.read_samples(tmp_path / "wrong.npy", (8, 8, 1))


@needs_mnist
def test_evaluate_names_the_task_that_scores_data_its_task_cannot(tmp_path):
    """Fashion-MNIST read by the mnist task has no evaluation there: the line names the task that scores it,
    not a training flag evaluate does not have; and --dataset offers only what the task can load."""
    np.save(tmp_path / "x.npy", np.zeros((10, 28, 28), np.uint8))
    wrong = run_main("experiments.evaluate", tmp_path / "x.npy", "--task", "mnist", "--dataset", "fashion_mnist",
                     "--data-dir", SHARED_MNIST)
    assert wrong.returncode == 2 and wrong.stderr.strip().splitlines()[-1].endswith(
        "error: --task mnist has no evaluation for fashion_mnist data; give --task fashion_mnist, the task that "
        "scores it")
    stacked = run_main("experiments.evaluate", tmp_path / "x.npy", "--task", "mnist", "--dataset", "stacked_mnist")
    assert stacked.returncode == 2 and \
        "invalid choice: 'stacked_mnist' (choose from 'mnist', 'fashion_mnist')" in stacked.stderr


def test_evaluate_offers_the_data_flags_and_refuses_a_training_flag(tmp_path):
    """Scoring samples trains nothing: --help lists the task's data flags, not its model's settings or its
    training-only flags, and a model flag copied from a training command is refused in one line."""
    helped = run_main("experiments.evaluate", "--task", "mnist", "--help").stdout
    assert "--data-dir" in helped and "--dataset" in helped
    assert not any(flag in helped for flag in ("--no-eval", "--g-hidden", "--loss", "--optimizer", "--batch-size"))
    assert "--full" not in run_main("experiments.evaluate", "--task", "toy", "--help").stdout
    refused = run_main("experiments.evaluate", tmp_path / "s.npz", "--task", "toy", "--g-hidden", "32")
    assert refused.returncode == 2 and "unrecognized arguments: --g-hidden 32" in refused.stderr


def test_compare_puts_runs_and_settings_side_by_side_with_a_test(toy_run, tmp_path):
    ran = run_main("experiments.compare", toy_run, toy_run, "--metric", "kid", "--out", tmp_path / "cmp")
    assert ran.returncode == 0, ran.stderr
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
    assert len(rows) == 4 and all(r["n"] == 2 for r in rows)  # two runs x two settings, never pooled
    final = {(m["lr_g"], m["seed"]): m["eval_kid"] for m in json.loads((toy_run / "summary.json").read_text())["members"]}
    for r in rows:
        assert r["mean"] == pytest.approx(np.mean([final[(r["setting"]["lr_g"], s)] for s in r["seeds"]]))
    best = [r for r in rows if r["best"]]
    assert len(best) == 1 and best[0]["mean"] == min(r["mean"] for r in rows)
    twin = [r for r in rows if not r["best"] and r["setting"] == best[0]["setting"]][0]
    assert twin["p"] == pytest.approx(1.0) and not twin["resolved"]  # the same run twice: no difference
    assert "Welch" in ran.stdout and (tmp_path / "cmp" / "kid.png").is_file()
    assert "note:" not in ran.stdout  # the same run twice: same steps, same protocol


def test_a_custom_run_loads_only_with_its_own_pieces(tmp_path):
    def ring(key, n):
        angle = 2 * jnp.pi * jax.random.uniform(key, (n,))
        return jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)

    gan = gj.GAN.from_config(gj.Config(batch_size=32, log_every=10), ring, 2)
    z = gan.sample_noise(gj.stream_key("ring"), 50)
    spread = gj.evaluator(z, lambda x: {"spread": jnp.std(x)})  # no direction declared
    gj.run(gan, gj.grid(range(2)), tmp_path / "ring", gj.RunOptions(20, progress=False), evaluate=spread)
    with pytest.raises(gj.ConfigError, match="custom pieces \\(sampler\\)"):
        gj.load(tmp_path / "ring")
    loaded = gj.load(tmp_path / "ring", gan=gan)
    assert loaded.generate(0, n=5).shape == (5, 2)
    assert np.array_equal(loaded.generate(1), np.load(tmp_path / "ring" / "samples.npz")["samples"][1])  # its z
    with pytest.raises(gj.ConfigError, match="say whether 'spread' is better high or low"):
        loaded.member(best="spread")
    renamed = dataclasses.replace(gan, sample_data=gj.named(ring, "elsewhere:ring"))  # the same code, renamed
    assert gj.load(tmp_path / "ring", gan=renamed).step == 20
    other = dataclasses.replace(gan, loss=gj.losses.LOSSES["hinge"])
    with pytest.raises(gj.ConfigError, match="its loss is hinge"):
        gj.load(tmp_path / "ring", gan=other)


def test_compare_prints_p_on_its_side_of_the_threshold():
    assert ALPHA == 0.05
    assert [p_text(p) for p in (0.04998, 0.05, 0.0512, 0.123456, 1e-7, float("nan"))] == \
        ["0.04998", "0.05", "0.0512", "0.123", "1e-07", "nan"]
