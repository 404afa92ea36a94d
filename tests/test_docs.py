"""The docs run as written: every ```python block of every docs/*.md page runs, in order within its page,
in one namespace per page, in a fresh working directory (with checks after the blocks whose results the
page states), and every `python -m experiments.<name> ...` command in the README and the docs is one its
module's parser accepts. `tests/test_readme.py` runs the README's own blocks with these helpers."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import math
import pathlib
import re
import shlex
from typing import Callable

import pytest

from conftest import REPO

DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]


# -- python blocks ---------------------------------------------------------------------------------------
def python_blocks(path: pathlib.Path) -> list[str]:
    """The page's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.S | re.M)


def run_blocks(path: pathlib.Path, checks: dict[int, Callable[[dict], None]] | None = None) -> dict:
    """Exec the page's python blocks in order in one namespace (as one script, `__main__`), in the current
    working directory; after block i, `checks[i](namespace)`. Returns the namespace."""
    namespace: dict = {"__name__": "__main__"}
    blocks = python_blocks(path)
    assert not set(checks or {}) - set(range(len(blocks))), f"{path.name} has {len(blocks)} python blocks"
    for i, block in enumerate(blocks):
        exec(compile(block, f"{path.relative_to(REPO)}, python block {i + 1}", "exec"), namespace)
        if checks and i in checks:
            checks[i](namespace)
    return namespace


def config_json(result) -> dict:
    return json.loads((result.run.path / "config.json").read_text())


def check_library(ns: dict) -> None:
    assert ns["metrics"]["d_loss"].shape == (4, 10)  # as its comment says


def check_library_task(ns: dict) -> None:
    assert ns["result"].summary["over_seeds"]["eval_curve_distance"]["n"] == 4
    assert list(ns["result"].eval_steps) == [0, 100, 200] and "curve_distance" in ns["result"].summary["real_reference"]


def check_library_schedule(ns: dict) -> None:
    assert abs(ns["decayed"].summary["members"][0]["lr_g"] - 1e-4) < 1e-9  # the schedule's value


def check_library_model(ns: dict) -> None:
    import flax.linen as nn
    gan = ns["gan"]
    assert isinstance(gan.generator, nn.Module) and type(gan.generator).__name__ == "MyGenerator"
    assert set(ns["state"].d_params) == {"Dense_0", "Dense_1"}  # the new discriminator's own layers


def check_circle(ns: dict) -> None:
    result = ns["result"]
    assert ns["gj"].tasks.get("circle") is ns["TASK"]
    assert (result.run.path / "samples.npz").is_file() and result.summary["steps"] == 100
    sampler = config_json(result)["pieces"]["sampler"]
    assert sampler["name"] == "__main__:circle" and len(sampler["sha256"]) == 64


def check_metric(ns: dict) -> None:
    assert ns["result"].evals["eval_nearest_real"].shape == (4, 2)  # as its comment says
    assert ns["NEAREST_REAL"].mode == "min"
    assert "sha256" in config_json(ns["result"])["pieces"]["metrics"]


def check_own_images(ns: dict) -> None:
    config, groups = config_json(ns["result"]), ns["result"].summary["by_setting"]
    assert config["config"]["data"] == "image_sampler[500x8x8x1]" and len(config["pieces"]["sampler"]["sha256"]) == 64
    assert config["metrics"] == {"brightness_gap": "min"}
    assert [g["setting"]["lr_g"] for g in groups] == [1e-3, 2e-4] and all(g["seeds"] == [0, 1] for g in groups)
    assert all(0 <= g["over_seeds"]["eval_brightness_gap"]["mean"] <= 2 for g in groups)


def check_loss(ns: dict) -> None:
    loss = ns["gan"].pieces()["loss"]
    assert loss["name"] == "lsgan_pm1" and len(loss["sha256"]) == 64
    assert int(ns["state"].step) == 3 and math.isfinite(float(ns["metrics"]["d_loss"]))


def check_rule(ns: dict) -> None:
    rule = ns["gan"].pieces()["update_rule"]
    assert rule["name"] == "__main__:g_first" and len(rule["sha256"]) == 64
    assert int(ns["state"].step) == 3 and math.isfinite(float(ns["metrics"]["g_loss"]))


def check_images(ns: dict) -> None:
    data = ns["data"]
    assert (data.shape, len(data.train.images), len(data.reference), data.num_classes) == ((16, 16, 1), 80, 20, 2)
    assert ns["dcgan_widths"](data.shape) == ((64, 32), (32, 64))


def check_pbt(ns: dict) -> None:
    [copy] = ns["controller"].records  # at step 100 the worst of 4 copied a better member (lower curve distance)
    assert copy["step"] == 100 and copy["source_value"] < copy["value"]


def check_after_the_run(ns: dict) -> None:
    run = ns["run"]
    assert run.step == 60 and run.seeds == [0, 1, 0, 1] and ns["np"].array_equal(ns["samples"], ns["stored"])
    assert ns["samples"].shape == (2500, 2)


# what each page's blocks are said to do: page -> {block index: check}
CHECKS = {
    "after_the_run.md": {0: check_after_the_run},
    "library.md": {0: check_library, 1: check_library_task, 2: check_library_schedule, 3: check_library_model},
    "extending.md": {0: check_circle, 1: check_metric, 2: check_own_images, 3: check_loss, 4: check_rule},
    "experiments.md": {0: check_images},
    "sweeps_and_search.md": {0: check_pbt},
}


@pytest.mark.parametrize("page", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_docs_python_blocks_run_in_order(page, tmp_path, monkeypatch):
    from gan_jax import tasks
    monkeypatch.chdir(tmp_path)  # the examples write runs/ below the working directory
    monkeypatch.setattr(tasks, "_REGISTERED", dict(tasks._REGISTERED))  # tasks a page registers stay its own
    run_blocks(page, CHECKS.get(page.name))


def test_every_page_with_checks_exists_and_the_index_lists_every_page():
    assert set(CHECKS) <= {p.name for p in DOCS}
    index = (REPO / "docs" / "index.md").read_text()
    assert all(f"]({p.name})" in index for p in DOCS if p.name != "index.md")
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200 and "](docs/index.md)" in readme


# -- commands --------------------------------------------------------------------------------------------
# placeholders the pages use in commands, and a value each parser accepts in their place
PLACEHOLDERS = {"$i": "0", "N": "1000", "P": "r2", "NAME": "toy", "my_file:TASK": "experiments.custom_task:TASK"}


def commands(path: pathlib.Path) -> list[str]:
    """Every `python -m experiments.<name> ...` command of a page: in its ```bash blocks (continuation
    lines joined, comments and other commands of a `&&` chain dropped) and in its inline code."""
    text = path.read_text()
    found = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*", "", line)
            found += [m.split("&&")[0].strip() for m in re.findall(r"python -m experiments\..*", line)]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)
              if " ".join(span.split()).startswith("python -m experiments.")]
    return found


class Parsed(Exception):
    """Raised by a parser once it has accepted its arguments: nothing after parsing runs."""


def parse_only(module_name: str, argv: list[str], monkeypatch) -> None:
    """Run the module's own parsing of `argv` and stop right after its parser accepts the flags (before any
    data is loaded, directory checked or device started). A sweep's or search's flags after `--` are
    parsed as its task's experiment parses them."""
    module = importlib.import_module(module_name)
    from gan_jax import commands as experiment_command

    def parse_args(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    original = argparse.ArgumentParser.parse_args
    if module_name in ("experiments.sweep", "experiments.tune"):
        _, args, rest = module.parse(argv)  # parsing only: it writes nothing
        monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
        experiment_command.parse(rest, module_name.split(".")[1], args.task)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    if module_name == "experiments.train":
        experiment_command.parse(argv, "train")
    elif hasattr(module, "parse"):
        module.parse(argv)
    else:
        module.main(argv)  # parses its flags first


ALL_COMMANDS = [(page, command) for page in PAGES for command in commands(page)]


def test_the_pages_name_commands():
    assert len(ALL_COMMANDS) > 60
    assert {c.split()[2] for _, c in ALL_COMMANDS} >= {
        "experiments.train", "experiments.toy_quadratic", "experiments.mnist_gan", "experiments.sweep",
        "experiments.tune", "experiments.benchmark_suite", "experiments.benchmark", "experiments.train_classifier",
        "experiments.custom_gan"}


@pytest.mark.parametrize("page, command", ALL_COMMANDS,
                         ids=[f"{p.name}:{i}" for i, (p, _) in enumerate(ALL_COMMANDS)])
def test_every_command_is_accepted_by_its_parser(page, command, monkeypatch):
    from gan_jax import tasks
    monkeypatch.setattr(tasks, "_REGISTERED", dict(tasks._REGISTERED))  # a module:attribute task is registered
    words = [PLACEHOLDERS.get(w, w) for w in shlex.split(command) if w != "..."]
    module_name, argv = words[2], words[3:]
    assert importlib.util.find_spec(module_name) is not None, f"{page.name}: no module {module_name}: {command}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parse_only(module_name, argv, monkeypatch)
        except Parsed:
            return
        except SystemExit as e:
            assert e.code == 0, f"{page.name}: `{command}` refused: {err.getvalue().strip()}"
            return  # --help
    pytest.fail(f"{page.name}: `{command}` was never parsed")


# -- links -----------------------------------------------------------------------------------------------
def anchors(path: pathlib.Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation but - and _ dropped, spaces as -."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_every_link_between_the_pages_resolves():
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#:]*?\.md)?(?:#([^)]+))?\)", page.read_text()):
            path = (page.parent / target).resolve() if target else page
            assert path.is_file(), f"{page.name}: link to missing {target}"
            assert not anchor or anchor in anchors(path), f"{page.name}: no heading #{anchor} in {path.name}"


def test_every_gj_name_the_pages_use_is_public():
    import gan_jax
    used = {name for page in PAGES for name in re.findall(r"\bgj\.(\w+)", page.read_text())}
    missing = used - set(gan_jax.__all__) - {"__all__"}
    assert used and not missing, sorted(missing)
