"""The shape of the package: a public API that resolves, no import cycle between gan_jax's modules, the
library's own modules never importing the facade, `import gan_jax` starting nothing, tasks reached through
one registry."""
import ast
import pathlib
import subprocess
import sys

import pytest

import gan_jax
from conftest import REPO
from gan_jax import tasks
from gan_jax.errors import ConfigError

PACKAGE = REPO / "gan_jax"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: pathlib.Path) -> set[str]:
    """Every gan_jax module a file imports, at any depth (TYPE_CHECKING blocks and function bodies too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gan_jax")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gan_jax"):
            # `from gan_jax import data` imports the submodule; the facade's own names would be gan_jax.<Name>
            found |= {f"{node.module}.{a.name}" for a in node.names} | ({node.module} - {"gan_jax"})
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def facade_uses() -> list[str]:
    """Library modules that import a name of the facade (gan_jax.GAN) rather than a module."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return [f"{module_name(p)}: {m}" for p in PACKAGE.rglob("*.py") for m in imports_of(p)
            if m.count(".") == 1 and m not in modules and module_name(p) != "gan_jax"]


def test_public_api_names_resolve():
    assert gan_jax.__all__ == sorted(gan_jax.__all__) and len(gan_jax.__all__) > 30
    for name in gan_jax.__all__:
        assert getattr(gan_jax, name) is not None, name
    with pytest.raises(AttributeError):
        gan_jax.no_such_name  # noqa: B018


def test_no_import_cycle_and_the_facade_is_imported_by_no_library_module():
    edges = graph()
    assert facade_uses() == []
    done, active = set(), []

    def visit(node):
        if node in active:
            pytest.fail("import cycle: " + " -> ".join(active[active.index(node):] + [node]))
        if node in done:
            return
        active.append(node)
        for dep in sorted(edges[node]):
            # a package's __init__ is a dependency of its submodules only through the interpreter, not a cycle
            if not node.startswith(dep + "."):
                visit(dep)
        active.pop()
        done.add(node)

    for node in sorted(edges):
        visit(node)


def test_the_layers_point_one_way():
    """core never imports the engine, tasks, search or reporting; the engine never imports tasks or search."""
    for name, deps in graph().items():
        if name.startswith("gan_jax.core"):
            assert not {d for d in deps if d.split(".")[1] in ("engine", "tasks", "search", "reporting")}, name
        if name.startswith("gan_jax.engine"):
            assert not {d for d in deps if d.split(".")[1] in ("tasks", "search")}, name


def test_importing_gan_jax_does_no_work():
    code = "import sys, gan_jax; print(sorted(m for m in sys.modules if m.startswith(('jax', 'gan_jax.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_entry_points_start_without_the_figure_and_statistics_libraries():
    """matplotlib and scipy.stats were half of `--help`'s start-up (5.5 s -> 2.7 s): imported where used."""
    code = ("import sys, experiments.toy_quadratic, experiments.mnist_gan, experiments.evaluate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_custom_scripts_import_only_the_public_api():
    for script in ("custom_gan.py", "custom_task.py"):
        source = (REPO / "experiments" / script).read_text()
        assert {m.split(".")[0] for m in imports_of(REPO / "experiments" / script)} <= {"gan_jax"}
        assert "from gan_jax" not in source and "import gan_jax as gj" in source, script


def test_task_registry():
    assert set(tasks.names()) >= {"toy", "mnist", "stacked_mnist", "images", "fashion_mnist"}
    assert tasks.get("toy").name == "toy" and "r1" in tasks.get("toy").presets
    assert tasks.get("experiments.custom_task:TASK").name == "bars"  # imported, then registered by name
    assert tasks.get("bars") is tasks.get("experiments.custom_task:TASK")
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        tasks.get("nope")
    with pytest.raises(ConfigError, match="cannot import"):
        tasks.get("experiments.no_such_module:TASK")
    with pytest.raises(ConfigError, match="no built-in task has"):
        tasks.register(tasks.get("toy"))


def test_every_task_declares_each_metric_once_with_a_direction():
    for name in tasks.names():
        declared = [m.name for m in tasks.get(name).metrics]
        assert declared and len(declared) == len(set(declared)), name
    assert tasks.metric("kid").mode == "min" and tasks.metric("high_quality").mode == "max"
    tasks.get("experiments.custom_task:TASK")  # registers it here, not only in whichever test ran first
    assert tasks.metric("bar_share").mode == "max"  # a registered task's own metric
    assert tasks.metric("no_such_metric") is None
