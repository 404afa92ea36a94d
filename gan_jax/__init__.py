"""gan_jax: pure-functional GANs in JAX, many seeds and settings trained as one compiled program.

    import gan_jax as gj
    preset = gj.presets.get("r1")
    gan = gj.GAN.from_config(preset.config)
    result = gj.run(gan, gj.grid(range(8), preset.hparams), "runs/r1", gj.RunOptions(steps=2000))

Every name a script needs is here (`__all__`). Names are resolved on first use, so `import gan_jax` itself
imports nothing else (no JAX start-up), and the library's own modules never import this facade.
"""
from __future__ import annotations

import importlib

# public name -> "module" (a submodule) or "module:attribute"
_EXPORTS = {
    # the GAN and its settings
    "GAN": "gan_jax.core.gan:GAN", "TrainState": "gan_jax.core.gan:TrainState",
    "make_train": "gan_jax.core.gan:make_train", "Config": "gan_jax.core.config:Config",
    "GeneratorConfig": "gan_jax.core.config:GeneratorConfig",
    "DiscriminatorConfig": "gan_jax.core.config:DiscriminatorConfig", "HParams": "gan_jax.core.config:HParams",
    "stream_key": "gan_jax.core.streams:stream_key", "updates": "gan_jax.core.updates",
    # components
    "GANLoss": "gan_jax.components.losses:GANLoss", "Penalty": "gan_jax.components.penalties:Penalty",
    "losses": "gan_jax.components.losses", "penalties": "gan_jax.components.penalties",
    "models": "gan_jax.components.models", "default_hparams": "gan_jax.components.optim:default_hparams",
    # members and runs
    "Member": "gan_jax.engine.members:Member", "grid": "gan_jax.engine.members:grid",
    "stack_hparams": "gan_jax.engine.members:stack_hparams", "member_keys": "gan_jax.engine.members:member_keys",
    "Sweep": "gan_jax.engine.sweep:Sweep", "run": "gan_jax.engine.experiment:run",
    "RunOptions": "gan_jax.engine.experiment:RunOptions", "Result": "gan_jax.engine.experiment:Result",
    "evaluator": "gan_jax.engine.experiment:evaluator", "Schedule": "gan_jax.engine.schedule:Schedule",
    "use_cpu_cores_as_devices": "gan_jax.engine.devices:use_cpu_cores_as_devices",
    # tasks, presets, metrics
    "Task": "gan_jax.tasks.base:Task", "Evaluation": "gan_jax.tasks.base:Evaluation",
    "Scorer": "gan_jax.tasks.base:Scorer",
    "named": "gan_jax.core.pieces:named", "image_sampler": "gan_jax.data.mnist:image_sampler", "Metric": "gan_jax.metrics.metric:Metric", "tasks": "gan_jax.tasks",
    "presets": "gan_jax.presets", "metrics": "gan_jax.metrics",
    # after the run
    "load": "gan_jax.runs:load", "Run": "gan_jax.runs:Run",
    # search and reporting
    "PBT": "gan_jax.search.population:PBT", "PBTOptions": "gan_jax.search.population:PBTOptions",
    "successive_halving": "gan_jax.search.population:successive_halving",
    "pooled_statistics": "gan_jax.search.population:pooled_statistics",
    "plotting": "gan_jax.reporting.plotting", "report": "gan_jax.reporting.report",
    # errors
    "GanJaxError": "gan_jax.errors:GanJaxError", "ConfigError": "gan_jax.errors:ConfigError",
    "DataError": "gan_jax.errors:DataError", "CheckpointError": "gan_jax.errors:CheckpointError",
    "ResourceError": "gan_jax.errors:ResourceError",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gan_jax' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    value = importlib.import_module(module)
    value = getattr(value, attribute) if attribute else value
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
