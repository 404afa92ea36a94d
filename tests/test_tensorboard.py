"""TensorBoard: a run's event files under <run>/tensorboard/, read back with TensorBoard's own reader, hold
every value of metrics/ (each member's curves and evaluations, float32, at the same steps), the quantiles
over members, each member's hyperparameters as an HPARAMS session and the sample grids as PNGs; a run of
more than 64 members writes quantiles only; a resumed run shows what an uninterrupted one shows."""
import io
import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.util import tensor_util

from gan_jax import presets
from gan_jax.core.config import Config
from gan_jax.engine import experiment, logs, members
from gan_jax.reporting import tensorboard as tb
from gan_jax.tasks import toy

CFG = Config(batch_size=32, log_every=10)
KEEP_ALL = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0}


def read(folder):
    """{tag: (steps, float32 values)} of a TensorBoard run folder's scalars, and its accumulator."""
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance=KEEP_ALL).Reload()
    scalars = {}
    for tag in acc.Tags()["scalars"]:
        events = acc.Scalars(tag)
        scalars[tag] = (np.array([e.step for e in events]), np.array([e.value for e in events], np.float32))
    return scalars, acc


def session_hparams(acc) -> dict:
    info = hparams_metadata.parse_session_start_info_plugin_data(
        acc.SummaryMetadata(tb.SESSION_TAG).plugin_data.content)
    return {k: v.number_value if v.HasField("number_value") else v.string_value for k, v in info.hparams.items()}


def assert_matches_metrics(run):
    """Every scalar of <run>/tensorboard equals metrics/ (steps and float32 values), nothing else is there,
    the quantiles are numpy's over members, and each member's session holds its hyperparameters."""
    train, evals = logs.load(run)
    config = json.loads((run / "config.json").read_text())
    seeds = config["seeds"]
    folders = {p.relative_to(run / "tensorboard").as_posix() for p in (run / "tensorboard").rglob("*")
               if p.is_dir() and any(p.glob(tb.EVENT_FILES))}
    assert folders == {tb.member_folder(i, s) for i, s in enumerate(seeds)} | {f"quantiles/{q}" for q in tb.QUANTILES}
    expected_tags = {f"train/{k}" for k in train if k != "step"} | {f"eval/{k[5:]}" for k in evals if k != "step"}
    for i, seed in enumerate(seeds):
        scalars, acc = read(run / "tensorboard" / tb.member_folder(i, seed))
        assert set(scalars) == expected_tags
        for name, values in train.items():
            if name != "step":
                np.testing.assert_array_equal(scalars[f"train/{name}"][0], train["step"])
                np.testing.assert_array_equal(scalars[f"train/{name}"][1], values[i])
        for name, values in evals.items():
            if name != "step":
                np.testing.assert_array_equal(scalars[f"eval/{name[5:]}"][0], evals["step"])
                np.testing.assert_array_equal(scalars[f"eval/{name[5:]}"][1], values[i])
        assert session_hparams(acc) == {**config["hparams"][i], "seed": seed, "member": i}
    for q, percent in tb.QUANTILES.items():
        scalars, _ = read(run / "tensorboard" / "quantiles" / q)
        assert set(scalars) == expected_tags
        for data, prefix in ((train, "train/"), (evals, "eval/")):
            for name, values in data.items():
                if name != "step":
                    tag = prefix + name.removeprefix("eval_")
                    np.testing.assert_array_equal(scalars[tag][0], data["step"])
                    np.testing.assert_array_equal(scalars[tag][1],
                                                  np.percentile(values, percent, axis=0).astype(np.float32))


def toy_run(out, steps, **options):
    hp = presets.get("r1").hparams
    return toy.train_and_evaluate(CFG, members.grid(range(2), hp, lr=[1e-3, 2e-3]), out,
                                  experiment.RunOptions(steps, snapshot_every=20, progress=False, **options),
                                  figures=False)


def test_a_runs_event_files_hold_what_its_metrics_files_hold(tmp_path):
    run = tmp_path / "run"
    toy_run(run, 40)
    assert_matches_metrics(run)
    config = json.loads((run / "config.json").read_text())
    assert {h["lr_g"] for h in config["hparams"]} == {1e-3, 2e-3}  # the sessions differ in their settings


def test_a_resumed_run_shows_what_an_uninterrupted_run_shows(tmp_path):
    """Killed after its checkpoint at 20 (its events at 20 and later are then stale) and resumed: each
    folder keeps one event file, the steps once each, the values those of metrics/."""
    run = tmp_path / "run"
    toy_run(run, 40, checkpoint_every=20)
    shutil.rmtree(run / "checkpoints" / "40")
    toy_run(run, 40, checkpoint_every=20, resume=True)
    assert_matches_metrics(run)
    for folder in (run / "tensorboard").rglob("*"):
        if folder.is_dir() and any(folder.glob(tb.EVENT_FILES)):
            assert len(list(folder.glob(tb.EVENT_FILES))) == 1, folder


def test_more_than_64_members_write_quantiles_over_members_only(tmp_path):
    rng = np.random.default_rng(0)
    n, steps = 100, np.array([0, 10, 20])
    values = {name: rng.normal(size=(n, 3)).astype(np.float32) for name in ("d_loss", "g_loss")}
    values["d_loss"][7] = np.nan  # a diverged member: left out of the quantiles
    values["g_loss"][:, 2] = np.nan  # every member diverged: NaN
    evaluation = {"mmd": rng.random(n).astype(np.float32)}
    writer = tb.TensorBoard(tmp_path, range(n), [{"lr_g": 1e-3}] * n)
    writer.train(steps, values)
    writer.evaluation(30, evaluation)
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quantiles"]
    for q, percent in tb.QUANTILES.items():
        scalars, _ = read(tmp_path / "quantiles" / q)
        assert set(scalars) == {"train/d_loss", "train/g_loss", "eval/mmd"}
        for name, v in values.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN
                expected = np.nanpercentile(v, percent, axis=0).astype(np.float32)
            np.testing.assert_array_equal(scalars[f"train/{name}"][0], steps)
            np.testing.assert_array_equal(scalars[f"train/{name}"][1], expected)  # NaN where all are
        assert scalars["eval/mmd"][0].tolist() == [30]
        assert scalars["eval/mmd"][1][0] == np.float32(np.percentile(evaluation["mmd"], percent))


def decoded(acc, tag):
    """(steps, images [h, w, c] uint8) of an image tag, from the PNGs written."""
    events = acc.Tensors(tag)
    out = []
    for e in events:
        width, height, data = tensor_util.make_ndarray(e.tensor_proto)
        image = np.asarray(Image.open(io.BytesIO(data)))
        assert image.shape[:2] == (int(height), int(width))
        out.append(image if image.ndim == 3 else image[..., None])
    return [e.step for e in events], out


def test_sample_grids_round_trip_as_pngs(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.random((64, 6, 5)).astype(np.float32)  # floats in [0, 1]: 8 x 8
    colour = rng.integers(0, 256, (10, 4, 3, 3), dtype=np.uint8)  # uint8: 4 columns, 3 rows, 2 empty cells
    writer = tb.TensorBoard(tmp_path, [5, 6], [{}, {}])
    writer.images(0, "samples", gray, member=1)
    writer.images(20, "samples", gray[::-1], member=1)
    writer.images(20, "colour", colour)
    writer.close()
    steps, grids = decoded(read(tmp_path / "member_001_seed_6")[1], "samples")
    assert steps == [0, 20]
    for grid, images in zip(grids, (gray, gray[::-1])):
        assert grid.shape == (8 * 6, 8 * 5, 1)
        pixels = np.round(images * 255).astype(np.uint8)
        for k in range(64):
            r, c = divmod(k, 8)
            np.testing.assert_array_equal(grid[r * 6:(r + 1) * 6, c * 5:(c + 1) * 5, 0], pixels[k])
    _, (grid,) = decoded(read(tmp_path / "member_000_seed_5")[1], "colour")
    assert grid.shape == (3 * 4, 4 * 3, 3)
    for k in range(12):
        r, c = divmod(k, 4)
        np.testing.assert_array_equal(grid[r * 4:(r + 1) * 4, c * 3:(c + 1) * 3], colour[k] if k < 10 else 0)


def test_metric_log_writes_member_stacked_grids_and_nothing_on_other_processes(tmp_path):
    log = logs.MetricLog(tmp_path / "metrics", [3, 4, 5], [{}, {}, {}])
    images = np.random.default_rng(2).integers(0, 256, (3, 4, 2, 2), dtype=np.uint8)
    log.images(10, "samples", images)
    log.close()
    for i, seed in enumerate([3, 4, 5]):
        _, (grid,) = decoded(read(tmp_path / "tensorboard" / tb.member_folder(i, seed))[1], "samples")
        np.testing.assert_array_equal(grid[:2, :2, 0], images[i, 0])
    elsewhere = logs.MetricLog(None, [3], [{}])
    elsewhere.images(10, "samples", images[:1])
    assert elsewhere.tensorboard is None


def test_changed_hyperparameters_are_written_from_the_step_they_change(tmp_path):
    writer = tb.TensorBoard(tmp_path, [0, 1], [{"lr_g": 1e-3}, {"lr_g": 2e-3}])
    d_loss = {"d_loss": np.zeros((2, 2), np.float32)}
    writer.train([0, 10], d_loss, [{"lr_g": 1e-3}, {"lr_g": 2e-3}])
    writer.train([20, 30], d_loss, [{"lr_g": 1e-3}, {"lr_g": 4e-3}])  # member 1 exploited at step 20
    writer.close()
    assert "hparams/lr_g" not in read(tmp_path / "member_000_seed_0")[0]
    steps, values = read(tmp_path / "member_001_seed_1")[0]["hparams/lr_g"]
    assert steps.tolist() == [20] and values[0] == np.float32(4e-3)


def test_a_resume_after_a_kill_mid_write_keeps_what_reads_back(tmp_path):
    writer = tb.TensorBoard(tmp_path, [0], [{}])
    writer.train([0, 10, 20], {"d_loss": np.array([[1, 2, 3]], np.float32)})
    writer.close()
    (path,) = (tmp_path / "member_000_seed_0").glob(tb.EVENT_FILES)
    path.write_bytes(path.read_bytes()[:-5])  # the last record cut short
    writer = tb.TensorBoard(tmp_path, [0], [{}], resume_step=20)
    writer.train([20], {"d_loss": np.array([[4]], np.float32)})
    writer.close()
    scalars, acc = read(tmp_path / "member_000_seed_0")
    assert scalars["train/d_loss"][0].tolist() == [0, 10, 20] and scalars["train/d_loss"][1].tolist() == [1, 2, 4]
    assert session_hparams(acc) == {"seed": 0, "member": 0}
    assert read(tmp_path / "quantiles" / "median")[0]["train/d_loss"][1].tolist() == [1, 2, 4]


def test_a_new_run_in_the_same_directory_starts_afresh(tmp_path):
    for value in (1.0, 2.0):
        writer = tb.TensorBoard(tmp_path, [0], [{}])
        writer.train([0], {"d_loss": np.full((1, 1), value, np.float32)})
        writer.close()
    assert read(tmp_path / "member_000_seed_0")[0]["train/d_loss"][1].tolist() == [2.0]


@pytest.mark.parametrize("n", [1, 64])
def test_per_member_folders_up_to_64_members(tmp_path, n):
    writer = tb.TensorBoard(tmp_path, range(n), [{}] * n)
    writer.close()
    assert len(list(tmp_path.glob("member_*"))) == n
