"""After the run: statistics never pool two settings (summary.json's `by_setting`, `over_seeds`, the figures'
labels), and a population search says what it did: a str log path, every tie counted and an all-tie run
said to be unranked, bounds inside each hyperparameter's valid range, explored values valid in float32, and
a member whose gradients overflow flagged "stuck"."""
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from conftest import run_main
import gan_jax as gj
from gan_jax import runs, tasks
from gan_jax.components.optim import default_hparams
from gan_jax.core import loop, updates
from gan_jax.core.config import Config, HParams
from gan_jax.core.gan import GAN
from gan_jax.engine import experiment, logs
from gan_jax.engine.members import grid, Member
from gan_jax.errors import ConfigError
from gan_jax.metrics import metric
from gan_jax.reporting import plotting, report
from gan_jax.search import population
from gan_jax.tasks import base, toy


# -- A: statistics by setting -------------------------------------------------------------------------------
def fake_log(seeds, hparams, latest):
    return types.SimpleNamespace(seeds=seeds, hparams=hparams, latest={k: np.asarray(v) for k, v in latest.items()})


FAKE_SWEEP = types.SimpleNamespace(mesh=types.SimpleNamespace(devices=np.zeros(2)))
T3 = scipy.stats.t.ppf(0.975, 3)  # 3.182446...


def test_summary_groups_members_by_setting_with_hand_computed_statistics():
    """2 settings x 4 seeds: two groups of n = 4, nothing pooled; the CI is t(0.975, 3) s / sqrt(4)."""
    hp = [{"lr_g": lr, "lr_d": lr, "beta1": 0.5} for lr in (1e-3, 1e-4) for _ in range(4)]
    values = [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 13.0, 13.0]
    log = fake_log([0, 1, 2, 3] * 2, hp, {"eval_x": values, "d_loss": np.zeros(8)})
    s = experiment.summarize(log, {}, FAKE_SWEEP, 20, np.full(8, -1))
    assert [g["setting"] for g in s["by_setting"]] == [{"lr_g": 1e-3, "lr_d": 1e-3}, {"lr_g": 1e-4, "lr_d": 1e-4}]
    assert [g["seeds"] for g in s["by_setting"]] == [[0, 1, 2, 3]] * 2
    assert [g["members"] for g in s["by_setting"]] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    first, second = (g["over_seeds"]["eval_x"] for g in s["by_setting"])
    assert first == pytest.approx({"mean": 2.5, "ci95": T3 * np.sqrt(5 / 3) / 2, "n": 4})  # s^2 = 5/3
    assert second == pytest.approx({"mean": 11.5, "ci95": T3 * np.sqrt(3) / 2, "n": 4})  # s^2 = 3
    assert set(first) == {"mean", "ci95", "n"} and "d_loss" not in s["by_setting"][0]["over_seeds"]
    assert s["over_seeds"] == {} and "lr_g, lr_d" in s["over_seeds_note"]  # never the pooled 7.0 over 8
    json.dumps(s)  # plain JSON


def test_one_setting_keeps_over_seeds_as_it_was_and_a_schedule_keeps_the_groups():
    hp = [{"lr_g": 1e-3, "lr_d": 1e-3}] * 3
    s = experiment.summarize(fake_log([4, 5, 6], hp, {"eval_x": [1.0, np.nan, 3.0]}), {}, FAKE_SWEEP, 20,
                             np.full(3, -1))
    assert s["over_seeds"] == {"eval_x": {"mean": 2.0, "ci95": pytest.approx(scipy.stats.t.ppf(0.975, 1) * np.sqrt(2)
                                                                               / np.sqrt(2)), "n": 2}}
    assert s["by_setting"] == [{"setting": {}, "members": [0, 1, 2], "seeds": [4, 5, 6], "over_seeds": s["over_seeds"]}]
    assert "over_seeds_note" not in s
    # a schedule scales every member's values alike: the groups are those of the starting values, named by them
    start = [{"lr_g": lr} for lr in (1e-3, 1e-3, 2e-3, 2e-3)]
    now = [{"lr_g": np.float32(lr) * np.float32(0.1)} for lr in (1e-3, 1e-3, 2e-3, 2e-3)]
    log = fake_log([0, 1, 0, 1], now, {"eval_x": [1.0, 3.0, 5.0, 9.0]})
    for initial in (None, start):
        s = experiment.summarize(log, {}, FAKE_SWEEP, 20, np.full(4, -1), initial)
        assert [(g["members"], g["over_seeds"]["eval_x"]["mean"]) for g in s["by_setting"]] == [([0, 1], 2.0), ([2, 3], 7.0)]
    assert [g["setting"] for g in s["by_setting"]] == [{"lr_g": 1e-3}, {"lr_g": 2e-3}]
    assert [m["lr_g"] for m in s["members"]] == pytest.approx([1e-4, 1e-4, 2e-4, 2e-4], rel=1e-6)  # as they ended


def test_a_4_seed_by_2_rate_toy_run_has_two_groups_whose_means_are_the_members(tmp_path):
    r1 = gj.presets.get("r1")
    members = grid(range(4), r1.hparams, lr=[1e-3, 1e-4])
    result = toy.train_and_evaluate(r1.config.replace(batch_size=32, log_every=10), members, tmp_path / "run",
                                    experiment.RunOptions(steps=20, progress=False), figures=False)
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    _, evals = logs.load(tmp_path / "run")
    groups = on_disk["by_setting"]
    assert [g["setting"] for g in groups] == [{"lr_g": 1e-3, "lr_d": 1e-3}, {"lr_g": 1e-4, "lr_d": 1e-4}]
    assert [g["seeds"] for g in groups] == [[0, 1, 2, 3]] * 2 and on_disk["over_seeds"] == {}
    names = [k for k in evals if k.startswith("eval_")]
    assert "eval_curve_distance" in names
    for g, rows in zip(groups, (slice(0, 4), slice(4, 8))):
        for name in names:
            final = evals[name][rows, -1].astype(np.float64)  # every member's last evaluation, from the files
            assert g["over_seeds"][name]["n"] == 4
            assert g["over_seeds"][name]["mean"] == pytest.approx(np.mean(final), rel=1e-6, abs=1e-9)
            assert g["over_seeds"][name]["ci95"] == pytest.approx(T3 * np.std(final, ddof=1) / 2, rel=1e-5, abs=1e-9)
            assert g["over_seeds"][name]["mean"] == pytest.approx(np.mean([m[name] for m in on_disk["members"][rows]]))
    # the console (base.Task.summary_lines reads over_seeds) shows no number pooled over the 8 members
    assert "(n=8)" not in "\n".join(toy.summary_lines(result))

    # the figures say what they average: one mean per setting, "mean over 4 seeds, lr 0.001"
    captured = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plotting, "_save", lambda fig, path: captured.append(fig) or path)
        groups = plotting.setting_groups(result.summary, result.history_members)
        plotting.metric_bands(result.eval_steps, {k[5:]: v for k, v in result.evals.items()}, tmp_path / "m.png",
                              {k[5:]: v for k, v in result.eval_stats.items()}, groups=groups)
        plotting.loss_curves(result.steps, result.history["d_loss"], result.history["g_loss"], tmp_path / "l.png",
                             result.seeds, groups=groups)
        plotting.metric_bands(result.eval_steps, {k[5:]: v for k, v in result.evals.items()}, tmp_path / "p.png",
                              {k[5:]: v for k, v in result.eval_stats.items()})  # not told: "members"
    legend = lambda fig: [t.get_text() for t in fig.axes[0].get_legend().get_texts()]  # noqa: E731
    assert legend(captured[0]) == ["mean over 4 seeds, lr 0.001", "mean over 4 seeds, lr 0.0001"]
    assert legend(captured[1]) == ["median over 4 seeds, lr 0.001", "median over 4 seeds, lr 0.0001"]
    assert legend(captured[2])[0] == "mean over 8 members"
    mean = captured[0].axes[0].get_lines()[4].get_ydata()  # after the 4 members' faint lines
    np.testing.assert_allclose(mean, np.mean(next(iter(result.evals.values()))[:4], axis=0), rtol=1e-6)

    # the sweep report: one row per setting, the same numbers
    rows = report.setting_rows({}, result, [])
    assert [(r["setting"], r["seeds"]) for r in rows] == [({"lr_g": 1e-3, "lr_d": 1e-3}, 4), ({"lr_g": 1e-4, "lr_d": 1e-4}, 4)]
    for r, g in zip(rows, on_disk["by_setting"]):
        assert r["metrics"]["eval_curve_distance"]["mean"] == pytest.approx(g["over_seeds"]["eval_curve_distance"]["mean"])


def test_figures_of_one_setting_say_seeds_and_a_pbt_population_says_pooled(tmp_path):
    captured = []
    steps, values = np.arange(3), {"x": np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]])}
    one = {"n_members": 2, "by_setting": [{"setting": {}, "members": [0, 1], "seeds": [7, 8], "over_seeds": {}}]}
    pbt = {"n_members": 2, "by_setting": [{**one["by_setting"][0], "pooled": "pbt"}]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plotting, "_save", lambda fig, path: captured.append(fig) or path)
        plotting.metric_bands(steps, values, tmp_path / "a.png", groups=plotting.setting_groups(one))
        plotting.metric_bands(steps, values, tmp_path / "b.png", groups=plotting.setting_groups(pbt))
    labels = [[t.get_text() for t in fig.axes[0].get_legend().get_texts()] for fig in captured]
    assert labels == [["mean over 2 seeds", "95% CI"], ["mean over 2 members, PBT population", "95% CI"]]
    np.testing.assert_allclose(captured[0].axes[0].get_lines()[2].get_ydata(), [1.0, 2.0, 3.0])
    assert plotting.setting_label({"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5}) == "lr 0.0001, beta1 0.5"
    assert plotting.setting_label({"lr_g": 1e-4, "lr_d": 2e-4}) == "lr_g 0.0001, lr_d 0.0002"


# -- B: a search that says what it did ----------------------------------------------------------------------
CFG = Config(data="ring8", batch_size=32, log_every=10)


def flat(sweep, state):
    """An evaluation whose only metric is the same for every member: 0."""
    return {"flat": jnp.zeros_like(state.step, jnp.float32)}


def test_pbt_takes_a_str_log_path_and_reports_a_population_where_every_decision_ties(tmp_path):
    members = grid(range(4), default_hparams("rmsprop", 1e-3))
    log_path = str(tmp_path / "logs" / "x.jsonl")  # a str, in a folder not made yet
    options = population.PBTOptions("flat", 10, mode="max", truncation=0.25, explore=("lr_g",))
    controller = population.PBT(options, members, log_path)
    result = experiment.run(GAN.from_config(CFG), members, tmp_path / "run",
                            experiment.RunOptions(30, snapshot_every=10, progress=False), evaluate=flat,
                            controller=controller)
    rows = [json.loads(line) for line in (tmp_path / "logs" / "x.jsonl").read_text().splitlines()]
    assert [(r["step"], r["kind"], r["ranked"], r["copies"], r["ties"]) for r in rows] == \
        [(10, "decision", False, 0, 1), (20, "decision", False, 0, 1)]  # 4 x 0.25: one would-be copy, tied
    assert rows[0]["values"] == [0.0] * 4 and controller.records == []
    summary = population.pbt_summary(controller, result)
    assert summary["ranked"] is False and summary["best_member"] is None and summary["lineage"] == []
    assert (summary["copies"], summary["decisions"], summary["ranked_decisions"], summary["ties"]) == (0, 2, 0, 2)
    assert "no decision could rank the members" in summary["note"] and "flat 0" in summary["note"]
    assert "no member is best" in summary["note"]
    line = population.pbt_line(summary, result.summary["members"])
    assert "\n" not in line and "best member" not in line and "no decision could rank" in line
    pooled = population.pooled_statistics(result.summary)
    assert pooled["over_seeds"]["eval_flat"] == {"mean": 0.0, "ci95": 0.0, "n": 4}
    assert pooled["by_setting"][0]["pooled"] == "pbt" and "by design" in pooled["over_seeds_note"]
    population.plot_pbt(controller, None, 30, tmp_path / "population.png")  # no best member: still drawn


def test_pbt_refuses_a_log_path_it_cannot_write_before_anything_is_written(tmp_path):
    (tmp_path / "a_file").write_text("")
    members = grid(range(2), default_hparams("rmsprop", 1e-3))
    options = population.PBTOptions("flat", 10, mode="max")
    for bad, says in ((tmp_path / "a_file" / "x.jsonl", "is a file, not a folder"), (tmp_path, "is a folder")):
        with pytest.raises(ConfigError, match=says) as e:
            population.PBT(options, members, str(bad))
        assert "\n" not in str(e.value) and str(e.value).startswith("`log_path`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert population.PBT(options, members, None).log_path is None
    assert population.PBT(options, members, tmp_path / "y.jsonl").log_path == tmp_path / "y.jsonl"


class FlatTask(toy.ToyTask):
    """The toy task, evaluated by one metric that is 0 for every member at every evaluation."""

    name = "flat_toy"
    metrics = (metric.higher("flat", "0 for everyone"),)

    def evaluation(self, gan, data_=None):
        return base.Evaluation(flat, self.metrics, {"flat": 0.0})


def test_tune_says_in_one_line_that_no_decision_could_rank_anyone(tmp_path, monkeypatch):
    monkeypatch.setitem(tasks._REGISTERED, "flat_toy", FlatTask())
    ran = run_main("experiments.tune", "--task", "flat_toy", "--metric", "flat", "--population", "4", "--ready", "10",
                   "--out", tmp_path / "pbt", "--", "--preset", "ring8", "--batch-size", "32", "--log-every", "10",
                   "--snapshot-every", "10", "--steps", "30", "--no-progress", "--no-figures")
    assert ran.returncode == 0, ran.stderr
    lines = [line for line in ran.stdout.splitlines() if line.startswith("PBT:")]
    assert len(lines) == 1 and "no decision could rank the members" in lines[0], ran.stdout
    assert "best member" not in lines[0] and "2 all tied" in lines[0]
    summary = json.loads((tmp_path / "pbt" / "summary.json").read_text())
    assert summary["population"]["ranked"] is False and summary["population"]["best_member"] is None
    assert "no decision could rank" in summary["population"]["note"]
    assert summary["over_seeds"]["eval_flat"]["n"] == 4 and "by design" in summary["over_seeds_note"]  # pooled, said so
    assert "flat over seeds" in ran.stdout


@pytest.mark.parametrize("bounds, name, valid, fix", [("beta1=0:1", "beta1", "[0, 1)", "beta1=0:0.999"),
                                                      ("ema_decay=0:1", "ema_decay", "[0, 1)", "ema_decay=0:0.999"),
                                                      ("lr_g=0:1e-2", "lr_g", "(0, inf)", "lr_g=1e-05:0.01")])
def test_tune_refuses_bounds_outside_a_valid_range_in_one_line(tmp_path, bounds, name, valid, fix):
    ran = run_main("experiments.tune", "--metric", "kid", "--explore", f"lr_d,{name}", "--bounds", bounds,
                   "--out", tmp_path / "t", "--", "--preset", "ring8", "--steps", "20", "--snapshot-every", "10",
                   "--log-every", "10", "--no-progress", "--no-figures")
    assert ran.returncode == 2 and ran.stdout == ""
    assert len(ran.stderr.strip().splitlines()) == 1, ran.stderr
    assert f"{name}'s valid range {valid} excludes" in ran.stderr and fix in ran.stderr, ran.stderr
    assert not (tmp_path / "t").exists()


def test_explored_values_stay_inside_open_ranges_in_float32():
    spec = HParams.specs()["beta1"]
    assert np.float32(0.99999999) == 1.0 and spec.contains(0.99999999)  # valid in float64, not in float32
    hp = {k: np.full(4, v, np.float32) for k, v in default_hparams("adam", 1e-3, beta1=0.9).to_dict().items()}
    options = population.PBTOptions("high_quality", 10, explore=("beta1",), resample=0.0,
                                    bounds={"beta1": (0.5, 0.99999999)})
    below_one = np.nextafter(np.float32(1), np.float32(0))  # 0.99999994, the largest float32 below 1
    seen = set()
    for seed in range(20):
        _, new = population.decide(np.array([0.0, 1.0, 2.0, 3.0]), np.zeros(4, bool), hp, options,
                                   np.random.default_rng(seed))
        assert new["beta1"].dtype == np.float32 and np.all(new["beta1"] < 1) and spec.contains(new["beta1"]).all()
        seen.add(float(new["beta1"][0]))
    assert len(seen) == 2 and float(below_one) in seen  # x1.25 clipped to the range: below 1 in float32
    assert min(seen) == pytest.approx(0.72, abs=1e-6)  # x0.8
    # an open low end: lr_g's 0; 1e-46 is 0 in float32, stepped up to the smallest positive float32
    lr = population._clip(1e-47, 1e-46, 1e-2, HParams.specs()["lr_g"])
    assert lr == float(np.nextafter(np.float32(0), np.float32(1))) and np.float32(lr) > 0
    assert population._clip(0.7, 0.5, 0.99999999, spec) == float(np.float32(0.7))  # inside: float32 of itself
    # random search's start is clipped the same way
    start = population.initial_population(range(8), HParams(), ("beta1",), {"beta1": (0.999999991, 0.999999999)}, True)
    assert all(np.float32(m.hparams.beta1) < 1 for m in start)


def gradient_overflow_from_step_15(gan, state, hp, log=True):
    """The shipped rule, but G's gradient norm is logged as inf from step 15 on (losses and parameters stay
    finite): what RMSProp at lr 1e8 does to G, by hand."""
    step = state.step
    state, metrics = updates.alternating(gan, state, hp, log)
    return state, {**metrics, "g_grad_norm": jnp.where(step >= 15, jnp.inf, metrics["g_grad_norm"])}


def test_a_member_whose_gradient_norm_is_not_finite_is_flagged_stuck():
    gan = GAN.from_config(CFG, update_rule=gradient_overflow_from_step_15)
    run = jax.jit(gan.run, static_argnums=2)
    hp = default_hparams("rmsprop", 1e-3).as_arrays()
    start = gan.init(jax.random.key(0))
    state, logged = run(start, hp, 40)  # windows start at 0, 10, 20, 30: the norm is logged inf at 20 first
    assert np.isinf(logged["g_grad_norm"][2]) and np.isfinite(logged["g_loss"]).all()
    assert int(state.diverged_at) == 20 + loop.STUCK and loop.flag(state.diverged_at) == (20, "stuck")
    frozen, _ = run(start, hp, 20)
    for a, b in zip(jax.tree.leaves(loop.learned(state)), jax.tree.leaves(loop.learned(frozen))):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # frozen as the window began, like a diverged member
    assert int(state.step) == 40
    assert loop.flag(-1) == (None, None) and loop.flag(12) == (12, "diverged")


def test_summary_gives_each_flagged_member_its_reason(tmp_path):
    """RMSProp at lr 1e8: D's first update sends G's gradients past float32 (norm inf), and RMSProp then
    divides by an infinite second moment: G stops, losses and parameters finite. lr 1e30 goes non-finite."""
    members = [Member(0, default_hparams("rmsprop", 1e-3)), Member(1, default_hparams("rmsprop", 1e8)),
               Member(2, default_hparams("rmsprop", 1e30))]
    result = experiment.run(GAN.from_config(CFG), members, tmp_path / "run",
                            experiment.RunOptions(20, progress=False))
    diverged = json.loads((tmp_path / "run" / "summary.json").read_text())["diverged"]
    assert [(d["member"], d["reason"]) for d in diverged] == [(1, "stuck"), (2, "diverged")], diverged
    assert diverged[0]["step"] == 0 and result.summary["members"][1]["diverged_at"] == 0
    assert result.summary["members"][0]["diverged_at"] is None
    params = jax.tree.leaves(jax.tree.map(lambda a: a[1], result.sweep.gather(result.state.g_params)))
    assert all(np.isfinite(np.asarray(p)).all() for p in params)


def test_a_report_of_a_script_s_sweep_has_a_row_per_setting_and_refuses_a_group_that_is_not_a_dict(tmp_path):
    r1 = gj.presets.get("r1")
    result = gj.run(gj.GAN.from_config(r1.config.replace(batch_size=32)), gj.grid(range(2), r1.hparams, lr=[1e-3, 1e-4]),
                    tmp_path / "run", gj.RunOptions(10, progress=False))
    for results, varied, said in [([("all", result)], ["lr"], r"^`results`: a group is a dict .* not a str; pass"),
                                  ([(result, {})], ["lr"], r"not a Result; pass \[\(\{\}, result\)\] for one run"),
                                  (result, ["lr"], r"^`results`: a list of \(group, result\) pairs, not a Result"),
                                  ([result], ["lr"], r"pairs, but item 0 is a Result; pass \[\(\{\}, result\)\]"),
                                  ([({}, result)], "lr", r"^`varied`: .* e\.g\. \['lr'\], not the str 'lr'$"),
                                  ([({}, result)], ["learning_rate"], r"^`varied`: .*; got \['learning_rate'\]$")]:
        with pytest.raises(ConfigError, match=said) as e:
            report.write(tmp_path / "bad", results, varied=varied)
        assert len(str(e.value)) < 400  # one line, not the Result's arrays
    assert not (tmp_path / "bad").exists()  # refused before anything is written
    refused = run_main("experiments.evaluate", tmp_path / "run" / "samples.npz", "--task", "toy")  # G's own units
    assert refused.returncode == 2 and "from a run without a task (a script's gj.run)" in refused.stderr
    text = report.write(tmp_path / "good", [({}, result)], varied=["lr"]).read_text()
    rows = [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| lr_g=")]
    assert rows == [["| lr_g=0.001, lr_d=0.001", "2"], ["| lr_g=0.0001, lr_d=0.0001", "2"]]  # "lr" sets both


def test_evaluate_says_when_a_run_s_samples_are_from_after_its_last_evaluation(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task": "toy", "config": {}}))
    (tmp_path / "summary.json").write_text(json.dumps({"evaluated_at": 0}))
    np.savez(tmp_path / "samples.npz", samples=np.zeros((1, 3, 2)), member=np.arange(1), step=np.asarray(1000))
    assert runs.samples_origin(tmp_path / "samples.npz", runs.samples_run(tmp_path / "samples.npz"), "toy") == (
        "samples.npz holds the samples at step 1000, and summary.json's evaluations are from step 0 (the run "
        "stopped between evaluations): these scores are step 1000's")
    (tmp_path / "summary.json").write_text(json.dumps({"evaluated_at": 1000}))
    assert runs.samples_origin(tmp_path / "samples.npz", runs.samples_run(tmp_path / "samples.npz"), "toy") is None


def test_evaluate_refuses_a_run_s_samples_scored_as_another_task_or_against_other_data(tmp_path):
    """A quadratic run's samples scored with --data ring8 had read coverage 0 against the ring, silently."""
    (tmp_path / "config.json").write_text(json.dumps({"task": "toy", "config": {"data": "quadratic"}}))
    np.savez(tmp_path / "samples.npz", samples=np.zeros((1, 3, 2)), member=np.arange(1), step=np.asarray(0))
    run = runs.samples_run(tmp_path / "samples.npz")
    assert runs.samples_origin(tmp_path / "samples.npz", run, "toy", "quadratic") is None
    with pytest.raises(ConfigError, match=r"^`--task`: .* is from a run of the toy task, not mnist; give --task toy"):
        runs.samples_origin(tmp_path / "samples.npz", run, "mnist", "mnist")
    with pytest.raises(ConfigError, match=r"^data flags: .* is from a run on quadratic, and these flags give ring8; "):
        runs.samples_origin(tmp_path / "samples.npz", run, "toy", "ring8")
    refused = run_main("experiments.evaluate", tmp_path / "samples.npz", "--task", "toy", "--data", "ring8")
    assert refused.returncode == 2 and "is from a run on quadratic, and these flags give ring8" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_the_console_says_when_a_stopped_run_s_metrics_are_from_an_earlier_evaluation():
    summary = {"seed_steps_per_s": 10.0, "n_members": 2, "steps": 1000, "devices": 1, "compile_s": 1.0, "wall_s": 2.0,
               "preempted": {"signal": "SIGTERM", "step": 1000, "checkpointed": True}, "evaluated_at": 0, "diverged": [],
               "over_seeds": {"eval_kid": {"mean": 0.5, "ci95": 0.1, "n": 2}}}
    result = types.SimpleNamespace(summary=summary, run=types.SimpleNamespace(path="runs/x"))
    said = "the metrics below are from the last evaluation, at step 0, not the stop's step 1000"
    assert said in base.Task.summary_lines(toy.TASK, result)[1]  # the lines every task's console starts from
    summary["members"] = [{"seed": 0, "d_loss": 1.0, "g_loss": 1.0, "d_real": 0.5, "d_fake": 0.5, "eval_kid": 0.5}]
    assert said in toy.TASK.summary_lines(result)[1]  # the toy's own lines: before its seeds' numbers, once
    assert sum(said in line for line in toy.TASK.summary_lines(result)) == 1
    summary["evaluated_at"] = 1000  # evaluated where it stopped: nothing to say
    assert not any("last evaluation" in line for line in base.Task.summary_lines(toy.TASK, result))
