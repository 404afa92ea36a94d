"""Population search: PBT's exploit copies the learned state bitwise and keeps each member's key, explore
stays in bounds, no copy equals the plain sweep, sharded and resumed runs decide the same; successive
halving keeps exactly the top members at each rung."""
import json
import subprocess
import sys
import types

import chex
import jax
import numpy as np
import pytest

from conftest import REPO, run_main, xla_env
from pbt_run import cheap_evaluator
from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config, HParams
from gan_jax.core.gan import GAN
from gan_jax.core.loop import learned
from gan_jax.engine import experiment
from gan_jax.engine.members import grid, Member, member_keys, stack_hparams
from gan_jax.engine.sweep import Sweep
from gan_jax.search import population

CFG = Config(data="ring8", batch_size=32, log_every=10)


def test_exploit_copies_learned_state_bitwise_and_keeps_each_members_key():
    sweep = Sweep(GAN.from_config(CFG), 4)
    state, _ = sweep.run(sweep.init(member_keys(range(4))), stack_hparams([default_hparams("rmsprop")] * 4), 20)
    before = jax.device_get(state)
    after = jax.device_get(sweep.copy_members(state, [0, 3, 2, 3]))
    take = lambda tree, i: jax.tree.map(lambda a: a[i], tree)  # noqa: E731
    chex.assert_trees_all_equal(take(learned(after), 1), take(learned(before), 3))  # member 1 got member 3's
    chex.assert_trees_all_equal(take(learned(after), 2), take(learned(before), 2))
    np.testing.assert_array_equal(jax.random.key_data(after.key), jax.random.key_data(before.key))
    np.testing.assert_array_equal(after.step, before.step)


def test_decide_truncation_selection_and_explore_within_bounds():
    rng = np.random.default_rng(0)
    values = np.array([0.5, 0.9, np.nan, 0.1, 0.7, 0.8, 0.3, 0.6])  # nan: a broken evaluation, ranks last
    diverged = np.zeros(8, bool)
    diverged[4] = True  # a diverged member ranks last too
    hp = {k: np.full(8, v, np.float32) for k, v in default_hparams("adam", 1e-3, gp_weight=1.0).to_dict().items()}
    options = population.PBTOptions("high_quality", 100, truncation=0.25, explore=("lr_g", "gp_weight"),
                                    bounds={"lr_g": (5e-4, 1.5e-3)})
    sources, new = population.decide(values, diverged, hp, options, rng)
    assert set(np.flatnonzero(sources != np.arange(8))) == {2, 4}  # the worst quarter: nan and diverged
    assert set(sources[[2, 4]]) <= {1, 5}  # copied from the best quarter (0.9, 0.8)
    assert np.all((new["lr_g"] >= 5e-4) & (new["lr_g"] <= 1.5e-3))
    assert np.all((new["gp_weight"] >= 0) & (new["gp_weight"] <= 100))
    np.testing.assert_array_equal(new["beta1"], hp["beta1"])  # not explored: copied as it was
    kept = np.setdiff1d(np.arange(8), [2, 4])
    np.testing.assert_array_equal(new["lr_g"][kept], hp["lr_g"][kept])
    many = [population.decide(values, diverged, hp, options, np.random.default_rng(s))[1]["lr_g"][2] for s in range(200)]
    assert min(many) >= 5e-4 and max(many) <= 1.5e-3 and len(set(np.round(many, 12))) > 3  # perturbed and resampled
    tied = population.decide(np.zeros(8), np.zeros(8, bool), hp, options, rng)[0]
    np.testing.assert_array_equal(tied, np.arange(8))  # all equal: nobody is better, nobody copies


def run(tmp_path, name, truncation, steps=60, **options):
    members = grid(range(4), default_hparams("adam", 3e-4), lr=[1e-4, 1e-3])[:4] + \
        grid(range(4, 8), default_hparams("adam", 3e-4))[:4]
    cfg = CFG.replace(optimizer="adam")
    controller = population.PBT(population.PBTOptions("mean_gap", 20, mode="min", truncation=truncation,
                                                      explore=("lr_g",)),
                                members, tmp_path / f"{name}.jsonl") if truncation is not None else None
    gan = GAN.from_config(cfg)
    result = experiment.run(gan, members, tmp_path / name,
                            experiment.RunOptions(steps, snapshot_every=20, progress=False, **options),
                            evaluate=cheap_evaluator(gan), controller=controller)
    return result, controller


def test_pbt_without_copies_is_the_plain_sweep_bitwise(tmp_path):
    plain, _ = run(tmp_path, "plain", None)
    pbt, controller = run(tmp_path, "pbt0", 0.0)
    chex.assert_trees_all_equal(jax.device_get(pbt.state), jax.device_get(plain.state))
    assert controller.records == controller.decisions == [] and (tmp_path / "pbt0.jsonl").read_text() == ""
    assert json.dumps(pbt.summary["members"]) == json.dumps(plain.summary["members"])  # nan == nan as text


def test_pbt_resumed_run_equals_uninterrupted_decisions_included(tmp_path):
    whole, controller = run(tmp_path, "whole", 0.25)
    assert len(controller.records) == 2 * 2  # at steps 20 and 40, two of eight copy
    assert [(d["step"], d["copies"], d["ties"]) for d in controller.decisions] == [(20, 2, 0), (40, 2, 0)]
    part, _ = run(tmp_path, "part", 0.25, steps=40, checkpoint_every=20)
    resumed, again = run(tmp_path, "part", 0.25, steps=60, checkpoint_every=20, resume=True)
    chex.assert_trees_all_equal(jax.device_get(resumed.state), jax.device_get(whole.state))
    assert (tmp_path / "part.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()
    assert json.dumps(resumed.summary["members"]) == json.dumps(whole.summary["members"])
    np.testing.assert_array_equal(resumed.hparams.lr_g, whole.hparams.lr_g)  # explored values came back too
    assert population.pbt_summary(again, resumed) == population.pbt_summary(controller, whole)  # decisions too


def run_script(tmp_path, n_devices):
    """tests/pbt_run.py in a subprocess with n emulated devices."""
    out = str(tmp_path / f"pbt{n_devices}")
    proc = subprocess.run([sys.executable, "tests/pbt_run.py", out], cwd=REPO, env=xla_env(n_devices),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("devices")][0]
    with np.load(out + ".npz") as f:
        return int(line.split()[1]), json.loads(line.split(" ", 2)[2]), [f[k] for k in f.files]


def test_pbt_sharded_over_8_devices_equals_one_device_decisions_included(tmp_path):
    """One member per device against all on one (every test's in-process runs shard over 2)."""
    one = run_script(tmp_path, 1)
    assert one[0] == 1 and len(one[1]) == 4
    devices, decisions, leaves = run_script(tmp_path, 8)
    assert devices == 8 and decisions == one[1]
    for a, b in zip(one[2], leaves):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_successive_halving_keeps_exactly_the_top_members_at_each_rung():
    assert population.rung_ends(10, 2, 8) == [(10, 8), (20, 4), (40, 2), (80, 1)]
    np.testing.assert_array_equal(population.survivors(np.array([0.2, 0.9, np.nan, 0.5]), np.zeros(4, bool), 2, "max"),
                                  [1, 3])
    np.testing.assert_array_equal(population.survivors(np.array([0.2, 0.9, 0.1, 0.5]), np.array([0, 0, 1, 0], bool), 2,
                                                       "min"), [0, 3])
    members = [Member(s, HParams(lr_g=float(s))) for s in range(8)]
    scores = {s: v for s, v in zip(range(8), [3, 7, 1, 8, 5, 2, 6, 4])}  # hand-built: seed -> its metric, all rungs
    seen = []

    def fake_rung(rung, rung_members, end, state):
        seen.append((rung, end, [m.seed for m in rung_members], state))
        rows = [{"eval_high_quality": scores[m.seed] + rung / 10, "diverged_at": None} for m in rung_members]
        return types.SimpleNamespace(summary={"members": rows}, sweep=FakeSweep(), state=np.arange(len(rung_members)))

    class FakeSweep:
        def gather(self, state):
            return state

    _, decisions = population.successive_halving(fake_rung, members, 10, 2, "high_quality", None, None)
    assert [s[:3] for s in seen] == [(0, 10, list(range(8))), (1, 20, [3, 1, 6, 4]), (2, 40, [3, 1]), (3, 80, [3])]
    assert [d["kept_seeds"] for d in decisions] == [[3, 1, 6, 4], [3, 1], [3], [3]]
    np.testing.assert_array_equal(seen[1][3], [3, 1, 6, 4])  # the state the next rung starts from: the survivors'


def test_tune_cli_pbt_and_sh_write_their_records(tmp_path):
    toy_args = ["--", "--data", "ring8", "--batch-size", "32", "--snapshot-every", "20", "--log-every", "10", "--no-progress", "--no-figures"]
    pbt = run_main("experiments.tune", "--method", "pbt", "--metric", "kid", "--population", "4", "--ready", "20",
                   "--out", tmp_path / "pbt", *toy_args, "--steps", "40")
    assert pbt.returncode == 0, pbt.stderr
    logged = [json.loads(line) for line in (tmp_path / "pbt" / "population.jsonl").read_text().splitlines()]
    rows = [r for r in logged if r["kind"] == "copy"]
    assert len(rows) == 1 and all(r["step"] == 20 and r["value"] > r["source_value"] for r in rows)  # kid: lower wins
    assert [(r["step"], r["kind"], r["copies"], r["ties"], r["ranked"]) for r in logged[:1]] == \
        [(20, "decision", 1, 0, True)] and len(logged) == 2  # the decision, then its copy
    summary = json.loads((tmp_path / "pbt" / "summary.json").read_text())["population"]
    assert summary["ranked"] and summary["best_member"] is not None and "note" not in summary
    copied = {r["member"]: r for r in rows}
    for member, schedule in enumerate(summary["schedules"]):
        assert len(schedule) == (2 if member in copied else 1)
        if member in copied:
            assert schedule[1]["lr_g"] == pytest.approx(copied[member]["new"]["lr_g"])
    assert (tmp_path / "pbt" / "figures" / "population.png").stat().st_size > 0

    sh = run_main("experiments.tune", "--method", "sh", "--metric", "kid", "--population", "4", "--r", "20", "--eta", "4",
                  "--out", tmp_path / "sh", *toy_args)
    assert sh.returncode == 0, sh.stderr
    rungs = json.loads((tmp_path / "sh" / "summary.json").read_text())["rungs"]
    assert [(r["step"], r["members"], len(r["kept"])) for r in rungs] == [(20, 4, 1), (80, 1, 1)]
    for r in rungs:  # the kept are the lowest kid values of their rung
        assert sorted(r["values"])[:len(r["kept"])] == [r["values"][i] for i in r["kept"]]
    assert rungs[1]["kept_seeds"][0] in rungs[0]["kept_seeds"]
