"""The member layout: which blocks are timed, the fastest chosen and cached, a resumed run keeping its own,
and every candidate block giving the numbers of the reference layout (one vmap of every member)."""
import dataclasses
import json

import chex
import jax
import numpy as np
import pytest

from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.engine import experiment, layout
from gan_jax.engine.members import grid
from gan_jax.engine.sweep import member_keys, stack_hparams, Sweep
from gan_jax.errors import ConfigError


@pytest.fixture
def probing(tmp_path, monkeypatch):  # the probe on (conftest turns it off), with a cache of this test's own
    monkeypatch.setenv(layout.PROBE_ENV, "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(layout, "PROBE_SECONDS", 0.05)  # each timing shorter: what is chosen, not how well, is tested
    return tmp_path / "cache" / "gan_jax" / "layouts.json"


def test_candidates_are_the_power_of_two_divisors_and_the_whole():
    assert layout.candidates(1) == [1]
    assert layout.candidates(4) == [1, 2, 4]
    assert layout.candidates(6) == [1, 2, 6]
    assert layout.candidates(12) == [1, 2, 4, 12]
    assert layout.candidates(128) == [1, 2, 4, 8, 16, 32, 64]  # 128 itself is past MAX_CANDIDATE


def test_the_fastest_block_is_chosen_then_read_from_the_cache(probing):
    rates = {1: 100.0, 2: 180.0, 4: 176.0, 8: 120.0}
    chosen = layout.probe(8, rates.__getitem__, "key")
    assert chosen == layout.Layout(2, "probe", rates)  # the fastest, though 4 is within 3% of it
    assert json.loads(probing.read_text())["key"]["block"] == 2

    def never(block):
        raise AssertionError("measured again")

    assert layout.probe(8, never, "key") == layout.Layout(2, "cache", rates)
    entries = json.loads(probing.read_text())
    entries["key"]["block"] = 4  # the stored choice is the one used, not re-derived from the rates
    probing.write_text(json.dumps(entries))
    assert layout.probe(8, never, "key") == layout.Layout(4, "cache", rates)
    assert layout.probe(3, lambda b: {1: 5.0, 3: 1.0}[b], "key").block == 1  # 4 does not divide 3: measured
    entries["key"]["block"] = 16  # not among its own rates: a corrupt entry
    probing.write_text(json.dumps(entries))
    assert layout.probe(8, {1: 1.0, 2: 3.0, 4: 2.0, 8: 1.0}.__getitem__, "key").block == 2  # measured again
    probing.write_text("{not json")
    assert layout.probe(8, {1: 1.0, 2: 3.0, 4: 2.0, 8: 1.0}.__getitem__, "key").block == 2  # unreadable: measured


def test_candidates_are_timed_in_rounds_then_the_faster_half_ranked_by_median(probing):
    """Each candidate once per round, in turn; after PROBE_CUT_AFTER rounds the faster half by median (rounded
    up, at least two) go on. One timing in a quick spell (block 1's 400 in round 1) or a slow one (block 4's 50
    in round 2, block 2's 60 in round 5) moves no median: 2 is chosen over 1, which the best timing would have
    chosen."""
    steady = {1: 100.0, 2: 150.0, 4: 140.0, 8: 120.0}
    spells = {(1, 1): 400.0, (2, 4): 50.0, (5, 2): 60.0}  # (round, block) -> the rate a spell gave
    calls = []

    def measure(block):
        calls.append(block)
        rnd = sum(1 for c in calls if c == block)
        return spells.get((rnd, block), steady[block])

    chosen = layout.probe(8, measure, "key")
    assert layout.PROBE_ROUNDS == 6 and layout.PROBE_CUT_AFTER == 3
    assert calls == [1, 2, 4, 8] * 3 + [2, 4] * 3  # 2 and 4 go on: medians 150 and 140 against 120 and 100
    assert chosen.block == 2 and chosen.rates == steady  # medians: 1 and 8 timed 3 times, 2 and 4 six
    best_timing = {b: max(spells.get((r, b), rate) for r in range(1, 7)) for b, rate in steady.items()}
    assert max(best_timing, key=best_timing.get) == 1  # the old rule's choice


@pytest.mark.parametrize("local, finalists", [(4, 2), (64, 4)])  # 3 candidates keep 2; 7 keep 4
def test_the_cut_keeps_the_faster_half_rounded_up(probing, local, finalists):
    calls = []
    layout.probe(local, lambda b: calls.append(b) or float(b % 5), f"key{local}")
    after_cut = calls[len(layout.candidates(local)) * layout.PROBE_CUT_AFTER:]
    assert len(set(after_cut)) == finalists and len(after_cut) == finalists * 3


def train(sweep, steps=10):  # one logged window: the probe times the same program for block 4
    hp = stack_hparams([default_hparams("rmsprop", lr) for lr in (1e-3, 2e-3, 5e-4, 1e-3) * 2])
    state, metrics = sweep.run(sweep.init(member_keys(range(8))), hp, steps)
    return jax.device_get((state.g_params, state.d_params, state.g_opt_state, state.g_ema, metrics))


def test_every_candidate_block_trains_the_reference_numbers_and_the_probe_picks_one(probing):
    """8 members on 2 devices: blocks 1, 2 and 4 (every candidate) against one vmap of all 4 per device; the
    probed Sweep times each candidate and then trains exactly as the Sweep given its choice."""
    gan = GAN.from_config(Config(batch_size=64, log_every=10))
    reference = train(Sweep(gan, 8, member_block=4))
    for block in layout.candidates(4)[:-1]:
        for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(train(Sweep(gan, 8, member_block=block)))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    probed = Sweep(gan, 8)
    state = train(probed)
    assert probed.layout.chosen_by == "probe" and set(probed.layout.rates) == {1, 2, 4} and probed.probe_s > 0
    chex.assert_trees_all_equal(state, train(Sweep(gan, 8, member_block=probed.block)))
    assert Sweep(gan, 8).layout.chosen_by == "cache"
    assert Sweep(gan, 8, member_block=3).layout == layout.Layout(2, "given 3, the largest block <= it that divides 4")


def test_a_candidate_is_timed_on_all_the_sweeps_members_in_blocks_of_its_size():
    """The probe times what the run will run: all 8 members in blocks of 2, not one block of 2 per device
    (whose call's fixed cost had weighed more on small blocks), kept for the next round; one state, from the
    sweep's own init, goes on from call to call and from block to block (10 steps a call: the logged window)."""
    sweep = Sweep(GAN.from_config(Config(batch_size=64, log_every=10)), 8)
    assert sweep._measure(2) > 0
    trial = sweep._trials[2]
    assert (trial.n_members, trial.block, trial.mesh.devices.size) == (8, 2, 2)
    steps = int(sweep._trial_state[0].step[0])
    assert steps >= 20 and steps % 10 == 0  # warm-up call, then timed calls
    sweep._measure(2)
    sweep._measure(4)
    assert sweep._trials[2] is trial  # compiled once per block, for both rounds
    assert int(sweep._trial_state[0].step[0]) >= steps + 10 + 2 * 10  # a timed call; block 4's warm-up and one


def test_a_run_records_its_layout_and_a_resumed_run_keeps_it(probing, tmp_path):
    gan = GAN.from_config(Config(batch_size=32, log_every=10))
    members = grid(range(8), default_hparams("rmsprop"))
    options = experiment.RunOptions(20, snapshot_every=10, checkpoint_every=10, progress=False, member_block=1)
    first = experiment.run(gan, members, tmp_path / "run", options)
    assert first.summary["layout"] == {"member_block": 1, "chosen_by": "given", "probe_seed_steps_per_s": {},
                                       "probe_s": 0}
    assert "member block 1 (given)" in experiment.throughput_line(first.summary)
    again = experiment.RunOptions(30, snapshot_every=10, checkpoint_every=10, progress=False, resume=True)
    with pytest.raises(ConfigError, match="trained in blocks of 1") as refused:  # another block: other numbers
        experiment.run(gan, members, tmp_path / "run", dataclasses.replace(again, member_block=2))
    assert "\n" not in str(refused.value) and not (tmp_path / "run" / "checkpoints" / "30").exists()
    resumed = experiment.run(gan, members, tmp_path / "run", again)
    assert resumed.summary["layout"]["member_block"] == 1 and resumed.summary["layout"]["chosen_by"] == "recorded"
    assert not probing.exists()  # nothing was timed
