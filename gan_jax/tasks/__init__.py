"""The task registry: every task by name (toy 2-D data, MNIST, Stacked MNIST, your own images,
Fashion-MNIST, and any a user registers), reached by entry points, searches and benchmarks alike.

    task = tasks.get("toy")                            # a built-in task
    tasks.register(MyTask())                           # your own, by its name
    tasks.get("experiments.custom_task:TASK")          # or imported from module:attribute
"""
from __future__ import annotations

import importlib

from gan_jax.errors import ConfigError

# Built-in tasks are imported when first asked for, so naming one costs nothing.
_BUILTIN = {"toy": "gan_jax.tasks.toy", "mnist": "gan_jax.tasks.mnist", "stacked_mnist": "gan_jax.tasks.stacked_mnist",
            "images": "gan_jax.tasks.images", "fashion_mnist": "gan_jax.tasks.fashion_mnist"}
_REGISTERED: dict = {}


def register(task):
    """Add `task` (a gan_jax.tasks.base.Task) under its name; returns it. A built-in name cannot be taken."""
    if not task.name or task.name in _BUILTIN:
        raise ConfigError(f"`task`: a registered task needs a name that no built-in task has, got {task.name!r}")
    _REGISTERED[task.name] = task
    return task


def names() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTERED})


def get(name: str):
    """The task called `name`, or the one at `module:attribute` (imported, and registered)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTIN:
        return importlib.import_module(_BUILTIN[name]).TASK
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            task = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"`task`: cannot import {name!r} ({e}); give module:attribute of a Task") from None
        _REGISTERED.setdefault(task.name, task)
        return task
    raise ConfigError(f"`task`: unknown task {name!r}; choose one of {names()}, or give module:attribute")


def metric(name: str):
    """The declared Metric called `name` in any built-in or registered task, or None."""
    for task_name in names():
        for m in get(task_name).metrics:
            if m.name == name:
                return m
    return None
