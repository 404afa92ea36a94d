"""Hyperparameter schedules: the factors in force at each step, a scheduled run equal to the same run
stopped and continued by hand with the new values, and a resumed scheduled run equal to the uninterrupted one."""
import chex
import jax
import numpy as np
import pytest

from conftest import run_main
from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config
from gan_jax.core.gan import GAN
from gan_jax.engine import experiment
from gan_jax.engine.members import grid
from gan_jax.engine.schedule import Schedule
from gan_jax.errors import ConfigError

CFG = Config(data="ring8", batch_size=32, log_every=10)
HP = default_hparams("adam", 1e-3, beta1=0.5)


def test_a_factor_holds_from_its_step_until_a_later_change_names_it_again():
    schedule = Schedule.parse(["30:lr_g*0.5", "10:lr_g*0.1,lr_d*0.2"])  # sorted by step
    assert schedule.steps == [10, 30]
    assert schedule.factors(9) == {}
    assert schedule.factors(10) == {"lr_g": 0.1, "lr_d": 0.2}
    assert schedule.factors(35) == {"lr_g": 0.5, "lr_d": 0.2}
    start = jax.tree.map(lambda v: np.array([v, 2 * v], np.float32), HP)  # two members
    at_30 = schedule.apply(start, 30)
    np.testing.assert_array_equal(at_30.lr_g, np.float32([1e-3, 2e-3]) * np.float32(0.5))  # of the start, not compounded
    np.testing.assert_array_equal(at_30.lr_d, np.float32([1e-3, 2e-3]) * np.float32(0.2))
    np.testing.assert_array_equal(at_30.beta1, start.beta1)


@pytest.mark.parametrize("texts, message", [
    (["10:lr_q*0.5"], "'lr_q' is not a traced hyperparameter"),
    (["10:lr_g=0.5"], "is not STEP:NAME*FACTOR"),
    (["15:lr_g*0.5"], "multiple of `log_every` 10"),
    (["10:lr_g*0"], "must be positive"),
    (["10:lr_g*0.5", "10:lr_d*0.5"], "two changes at one step"),
])
def test_a_bad_schedule_is_refused_naming_the_problem(texts, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("(", r"\(")):
        Schedule.parse(texts).check(log_every=10)


def test_a_scheduled_run_equals_the_run_stopped_and_continued_with_the_new_values(tmp_path):
    gan = GAN.from_config(CFG)
    members = grid(range(2), HP, lr_g=[1e-3, 2e-3])  # 4 members: the factor scales each member's own value
    schedule = Schedule.parse(["20:lr_g*0.25,beta1*1.5"])
    whole = experiment.run(gan, members, tmp_path / "whole", experiment.RunOptions(40, progress=False,
                                                                                     schedule=schedule))
    first = experiment.run(gan, members, tmp_path / "first", experiment.RunOptions(20, progress=False))
    changed = [m._replace(hparams=m.hparams.replace(lr_g=np.float32(m.hparams.lr_g) * np.float32(0.25),
                                                    beta1=np.float32(m.hparams.beta1) * np.float32(1.5)))
               for m in members]
    second = experiment.run(gan, changed, tmp_path / "second", experiment.RunOptions(40, progress=False),
                            initial_state=jax.device_get(first.sweep.gather(first.state)))
    chex.assert_trees_all_equal(jax.device_get(whole.sweep.gather(whole.state)),
                                jax.device_get(second.sweep.gather(second.state)))
    np.testing.assert_allclose([m["lr_g"] for m in whole.summary["members"]], [2.5e-4, 2.5e-4, 5e-4, 5e-4], rtol=1e-6)
    assert [m["beta1"] for m in whole.summary["members"]] == [0.75] * 4


def test_a_resumed_scheduled_run_equals_the_uninterrupted_one(tmp_path):
    """Stopped at 20 before the change at 30, resumed to 60: the change happens, as it did uninterrupted."""
    flags = ["--seeds", "2", "--batch-size", "32", "--log-every", "10", "--snapshot-every", "20",
             "--checkpoint-every", "20", "--schedule", "30:lr_g*0.1,lr_d*0.5", "--no-figures", "--no-progress"]
    for out, steps, resume in (("whole", 60, []), ("part", 20, []), ("part", 60, ["--resume"])):
        proc = run_main("experiments.toy_quadratic", *flags, "--steps", steps, "--out", tmp_path / out, *resume)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "part" / "metrics.jsonl").read_text() == (tmp_path / "whole" / "metrics.jsonl").read_text()
    rows = [line for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines() if '"step": 50' in line]
    assert rows and all('"lr_g": 0.0001' in row for row in rows), rows[:1]  # rows carry the scheduled values
