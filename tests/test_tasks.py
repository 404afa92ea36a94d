"""Tasks through the generic entry point: your own images (a folder of PNGs of 8x8x3 images trains a DCGAN
and is scored; the .npz of the same images loads to the same data), a task defined outside the package
trained and searched by its own metric, one line for bad task input."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_main
from gan_jax.metrics import images as image_metrics
from gan_jax.tasks import images as images_task

SHORT = ["--seeds", "2", "--steps", "10", "--log-every", "10", "--snapshot-every", "10", "--no-progress",
         "--no-figures", "--batch-size", "16"]


def quadrant_images(n_per_class=15, size=8):
    """Colour images whose class (0-3) is which quadrant is bright, grouped by class."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, (4 * n_per_class, size, size, 3)).astype(np.uint8)
    labels = np.repeat(np.arange(4), n_per_class)
    half = size // 2
    for i, c in enumerate(labels):
        r, k = divmod(int(c), 2)
        images[i, r * half:(r + 1) * half, k * half:(k + 1) * half] += 180
    return images, labels


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    images, labels = quadrant_images()
    np.savez(root / "quadrants.npz", images=images, labels=labels)
    for i, (image, label) in enumerate(zip(images, labels)):  # the same images, in the same (sorted) order
        (root / "pngs" / f"class{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "pngs" / f"class{label}" / f"{i:03d}.png")
    return root


def test_a_png_folder_of_8x8x3_images_trains_a_dcgan_and_an_npz_of_them_is_the_same_data(image_files, tmp_path):
    """A folder of PNGs trains a DCGAN (its depth follows the shape: one stride-2 layer for 8x8, where the
    dcgan preset has two) and is evaluated; the .npz of the same
    images loads to the same split, labels and sha256, so it trains and scores the same."""
    from_npz, from_pngs = (images_task.load(image_files / name) for name in ("quadrants.npz", "pngs"))
    np.testing.assert_array_equal(from_npz.train.images, from_pngs.train.images)
    np.testing.assert_array_equal(from_npz.train.labels, from_pngs.train.labels)
    np.testing.assert_array_equal(from_npz.reference, from_pngs.reference)
    assert from_npz.sha256 == from_pngs.sha256 and from_npz.shape == from_pngs.shape == (8, 8, 3)
    ran = run_main("experiments.train", "--task", "images", "--data", image_files / "pngs", "--preset", "dcgan", *SHORT,
                   "--out", tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    assert "randomly initialised network" in ran.stdout and "experiments.train_classifier --data" in ran.stdout
    run = json.loads((tmp_path / "run" / "summary.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert config["image_shape"] == [8, 8, 3] and config["architecture"] == "dcgan"
    assert config["generator"]["hidden"] == [32] and config["discriminator"]["hidden"] == [32]  # 4x4 -> 8x8
    assert {"frechet_distance", "kid", "precision", "recall", "density", "coverage"} <= set(run["real_reference"])
    assert run["provenance"]["features_seed"] == image_metrics.RANDOM_FEATURES_SEED
    assert run["real_reference"]["frechet_distance"] < run["over_seeds"]["eval_frechet_distance"]["mean"]
    samples = np.load(tmp_path / "run" / "samples.npz")["samples"]
    assert samples.shape == (2, 12, 8 * 8 * 3) and samples.dtype == np.uint8  # one per reference image
    scored = run_main("experiments.evaluate", tmp_path / "run" / "samples.npz", "--task", "images", "--data",
                      image_files / "pngs", "--out", tmp_path / "scores.json")
    assert scored.returncode == 0, scored.stderr
    assert "randomly initialised network" in scored.stdout  # said, as the run said it
    for mine, theirs in zip(json.loads((tmp_path / "scores.json").read_text())["members"], run["members"]):
        assert mine["frechet_distance"] == pytest.approx(theirs["eval_frechet_distance"], rel=1e-4)


def test_a_trained_classifier_beside_the_data_is_used(image_files, tmp_path):
    data = images_task.load(image_files / "quadrants.npz")
    assert data.classifier is None and data.num_classes == 4 and len(data.reference) == 12
    params = image_metrics.init_params(__import__("jax").random.key(0), data.shape, 4)
    path = image_metrics.classifier_path(image_files / "quadrants.npz")
    image_metrics.save_classifier(params, path, data.shape, 0.5, 12, data.sha256)
    try:
        found = images_task.load(image_files / "quadrants.npz")
        assert found.classifier == path
        assert images_task.feature_networks(found)[2:] == ("classifier", None)
    finally:
        path.unlink()
        image_metrics.sidecar_path(path).unlink()


def test_bad_task_input_is_one_line(image_files, tmp_path):
    for args, says in [(["--task", "images"], "--data: give an .npz"),
                       (["--task", "images", "--data", tmp_path / "none.npz"], "none.npz"),
                       (["--task", "images", "--data", tmp_path, "--preset", "cgan"], "holds no .png files"),
                       (["--task", "nope"], "unknown task 'nope'")]:
        ran = run_main("experiments.train", *args, *SHORT, "--out", tmp_path / "run")
        assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1 and says in ran.stderr, ran.stderr
    np.savez(tmp_path / "plain.npz", images=quadrant_images()[0])
    ran = run_main("experiments.train", "--task", "images", "--data", tmp_path / "plain.npz", "--preset", "cgan",
                   *SHORT, "--out", tmp_path / "run")
    assert ran.returncode == 2 and "is conditional" in ran.stderr and "has no labels" in ran.stderr


def test_a_task_of_your_own_trains_and_is_searched_by_its_own_metric(tmp_path):
    """experiments/custom_task.py: its data, a metric with its direction, an update rule."""
    assert len((__import__("conftest").REPO / "experiments" / "custom_task.py").read_text().splitlines()) <= 80
    task = ["--task", "experiments.custom_task:TASK"]
    ran = run_main("experiments.train", *task, *SHORT, "--out", tmp_path / "train")
    assert ran.returncode == 0, ran.stderr
    assert "bar_share over seeds" in ran.stdout
    config = json.loads((tmp_path / "train" / "config.json").read_text())
    assert config["task"] == "bars" and config["metrics"] == {"bar_share": "max"}
    assert config["pieces"]["update_rule"]["name"] == "experiments.custom_task:g_first"
    tuned = run_main("experiments.tune", *task, "--metric", "bar_share", "--population", "2", "--ready", "10",
                     "--out", tmp_path / "tune", "--", *SHORT[2:])
    assert tuned.returncode == 0, tuned.stderr
    typo = run_main("experiments.tune", *task, "--metric", "bar", "--out", tmp_path / "typo", "--", *SHORT[2:])
    assert typo.returncode == 2 and "declares no metric 'bar'; its metrics are ['bar_share']" in typo.stderr
    summary = json.loads((tmp_path / "tune" / "summary.json").read_text())
    assert summary["population"]["options"]["metric"] == "bar_share" and len(summary["members"]) == 2


def test_a_flat_data_task_of_your_own_with_its_own_data_name(tmp_path, monkeypatch):
    """A task whose data is neither a toy dataset nor images: sized from the task's own GAN."""
    import gan_jax as gj
    from gan_jax import tasks

    class Roll(gj.Task):
        name, presets, metrics = "roll_test", ("r1",), ()

        def configure(self, cfg, args, data):
            return cfg.replace(data="roll")

        def make_gan(self, cfg, data):
            roll = lambda key, n: __import__("jax").random.normal(key, (n, 3))  # noqa: E731
            return gj.GAN.from_config(cfg, gj.named(roll, "roll"), 3)

    monkeypatch.setitem(tasks._REGISTERED, "roll_test", Roll())
    ran = run_main("experiments.train", "--task", "roll_test", *SHORT, "--out", tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["pieces"]["sampler"]["name"] == "roll"
