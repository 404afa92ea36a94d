import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from conftest import REPO, xla_env
from gan_jax.components.optim import default_hparams
from gan_jax.core.config import Config, GeneratorConfig
from gan_jax.core.gan import GAN
from gan_jax.engine.checkpoint import Checkpointer, CheckpointError
from gan_jax.engine.sweep import member_keys, stack_hparams, Sweep

CFG = Config(batch_size=32, log_every=10)
TMP = ".orbax-checkpoint-tmp"  # what orbax appends to a step's directory until the save is finalised


@pytest.fixture(scope="module")
def sweep():
    return Sweep(GAN.from_config(CFG), 2)


@pytest.fixture(scope="module")
def hp():
    return stack_hparams([default_hparams("rmsprop", lr) for lr in (1e-3, 2e-3)])


def fresh(sweep, hp):
    return sweep.init(member_keys([0, 1]))


def host(tree):
    """Every leaf as numpy, typed keys as their key data, for bitwise comparison."""
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in jax.tree.leaves(tree)]


def assert_bitwise(a, b):
    """`a` equals `b` (a pytree, or `host` of one) leaf by leaf, bit for bit."""
    if not isinstance(b, list):
        assert jax.tree.structure(a) == jax.tree.structure(b)
        b = host(b)
    assert len(host(a)) == len(b)
    for x, y in zip(host(a), b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def test_save_restore_is_bitwise_with_like_shardings(sweep, hp, tmp_path):
    state, _ = sweep.run(fresh(sweep, hp), hp, 10)
    ckpt = Checkpointer(tmp_path, keep=3, config=CFG.to_dict())
    ckpt.save(state, 10)
    like = fresh(sweep, hp)
    restored, step = ckpt.restore(like)
    assert step == 10 and ckpt.latest_step() == 10
    assert_bitwise(restored, state)
    assert restored.key.dtype == like.key.dtype  # a typed key again, same impl
    for r, l in zip(jax.tree.leaves(restored), jax.tree.leaves(like)):
        assert r.sharding == l.sharding
    assert int(restored.step[0]) == 10 and restored.diverged_at.tolist() == [-1, -1]
    ckpt.close()


def test_resumed_run_equals_uninterrupted(sweep, hp, tmp_path):
    ckpt = Checkpointer(tmp_path, keep=2, config=CFG.to_dict())
    state, _ = sweep.run(fresh(sweep, hp), hp, 20)
    ckpt.save(state, 20)
    straight, m_straight = sweep.run(state, hp, 20)
    resumed, step = Checkpointer(tmp_path, keep=2, config=CFG.to_dict()).restore(fresh(sweep, hp))
    resumed, m_resumed = sweep.run(resumed, hp, 20)
    assert step == 20
    assert_bitwise(resumed, straight)
    assert_bitwise(m_resumed, m_straight)


def test_keeps_last_k(sweep, hp, tmp_path):
    state = fresh(sweep, hp)
    ckpt = Checkpointer(tmp_path, keep=2, config=CFG.to_dict())
    for step in (10, 20, 30):
        ckpt.save(state, step)
    assert ckpt.steps() == [20, 30]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20", "30"]
    ckpt.save(state, 20)  # an abandoned future's checkpoint is replaced, not an error
    assert ckpt.steps() == [20, 30]


def two_checkpoints(sweep, hp, directory):
    """Checkpoints 10 and 20 of one run; returns the host copy of the state at 10."""
    ckpt = Checkpointer(directory, keep=5, config=CFG.to_dict())
    state, _ = sweep.run(fresh(sweep, hp), hp, 10)
    ckpt.save(state, 10)
    at10 = host(state)
    state, _ = sweep.run(state, hp, 10)
    ckpt.save(state, 20)
    return at10


# orbax's failed read leaves a callback on a closed asyncio loop behind: harmless noise
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_corrupt_latest_falls_back_with_a_message(sweep, hp, tmp_path):
    at10 = two_checkpoints(sweep, hp, tmp_path)
    # OCDBT keeps array data in d/ folders: the per-process ones, and the root one once it merges them
    data_files = [p for p in (tmp_path / "20" / "state").rglob("*") if p.parent.name == "d" and p.is_file()]
    assert data_files
    for path in data_files:  # as if the disk lost the array data after the checkpoint was finalised
        path.write_bytes(b"")
    ckpt = Checkpointer(tmp_path, keep=5, config=CFG.to_dict())
    with pytest.warns(UserWarning, match=r"checkpoint 20 in .* cannot be read .*skipping it"):
        assert ckpt.latest_step() == 10
    restored, step = ckpt.restore(fresh(sweep, hp))
    assert step == 10
    assert_bitwise(restored, at10)
    with pytest.raises(CheckpointError, match="checkpoint 20 .* cannot be read"):
        ckpt.restore(fresh(sweep, hp), step=20)


def test_unfinished_save_is_ignored_and_cleaned(sweep, hp, tmp_path):
    two_checkpoints(sweep, hp, tmp_path)
    # What a save killed before its final rename leaves (seen with a real SIGKILL, test below).
    tmp = tmp_path / f"30{TMP}"
    (tmp / f"state{TMP}").mkdir(parents=True)
    (tmp / "_CHECKPOINT_METADATA").write_text("{}")
    ckpt = Checkpointer(tmp_path, keep=5, config=CFG.to_dict())
    assert ckpt.steps() == [10, 20] and ckpt.latest_step() == 20
    ckpt.save(fresh(sweep, hp), 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "20", "30"]


KILLED_MID_SAVE = textwrap.dedent("""
    import sys, time
    import orbax.checkpoint._src.path.atomicity as atomicity
    from gan_jax.engine.checkpoint import Checkpointer
    from gan_jax.core.config import Config
    from gan_jax.engine.sweep import Sweep, member_keys
    from gan_jax.core.gan import GAN
    cfg = Config(batch_size=32, log_every=10)
    state = Sweep(GAN.from_config(cfg), 2).init(member_keys([0, 1]))
    ckpt = Checkpointer(sys.argv[1], keep=3, config=cfg.to_dict())
    ckpt.save(state, 10)
    async def stall(self):  # the arrays are written; stop just before the rename that finalises the save
        print("MID-SAVE", flush=True)
        time.sleep(600)
    atomicity.AtomicRenameTemporaryPath.finalize = stall
    ckpt.save(state, 20)
""")


def test_sigkill_mid_save_resumes_from_last_complete(sweep, hp, tmp_path):
    env = xla_env(2)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_MID_SAVE, str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "MID-SAVE"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["10", f"20{TMP}"]
    assert any(p.name.endswith(TMP) for p in (tmp_path / f"20{TMP}").iterdir())  # unfinished items
    ckpt = Checkpointer(tmp_path, keep=3, config=CFG.to_dict())
    assert ckpt.latest_step() == 10
    restored, step = ckpt.restore(fresh(sweep, hp))  # saved over 2 devices, restored onto this mesh
    assert step == 10
    assert_bitwise(restored, fresh(sweep, hp))
    ckpt.save(restored, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "20"]


def test_changed_shapes_are_refused(sweep, hp, tmp_path):
    Checkpointer(tmp_path, keep=2, config=CFG.to_dict()).save(fresh(sweep, hp), 10)
    wider = CFG.replace(generator=GeneratorConfig(hidden=(32, 16)))
    like = Sweep(GAN.from_config(wider), 2).init(member_keys([0, 1]))
    with pytest.raises(CheckpointError, match=r"generator\.hidden: \[16, 16\] there vs \[32, 16\] now.*"
                                              r"use the same config, or a new `out` directory"):
        Checkpointer(tmp_path, keep=2, config=wider.to_dict()).restore(like)
    # The shapes themselves are checked too, naming the array, even where the config check lets it through.
    lenient = Checkpointer(tmp_path, keep=2, config=wider.to_dict(), may_change=("generator.hidden",))
    with pytest.raises(CheckpointError, match=r"shapes differ at g_params\.Dense_0\.bias: "
                                              r"float32\(2, 16\) there vs float32\(2, 32\) now; use the same"):
        lenient.restore(like)


def test_nothing_to_restore(sweep, hp, tmp_path):
    ckpt = Checkpointer(tmp_path / "checkpoints", keep=2, config=CFG.to_dict())
    assert ckpt.latest_step() is None
    with pytest.raises(CheckpointError, match="no complete checkpoint to resume from"):
        ckpt.restore(fresh(sweep, hp))
