"""Piecewise-constant schedules of traced hyperparameters: from a given step on, a hyperparameter is every
member's starting value times a factor (a late learning-rate decay, a TTUR change; what a population
search found, replayed as a fixed recipe).

    Schedule.parse(["15000:lr_g*0.1,lr_d*0.1"])  # both learning rates a tenth of each member's from 15,000

`experiment.run` applies it between chunks (its steps become chunk boundaries). The values at a step
depend on the step and the members' starting values alone, so a resumed run continues it exactly.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from gan_jax.core.config import HParams
from gan_jax.errors import ConfigError

Change = tuple[int, tuple[tuple[str, float], ...]]  # (step, ((name, factor), ...))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """`changes`: (step, ((name, factor), ...)) in increasing step order; a factor multiplies the member's
    starting value and holds until a later change names that hyperparameter again."""

    changes: tuple[Change, ...] = ()

    @classmethod
    def parse(cls, texts: list[str] | tuple[str, ...]) -> "Schedule":
        """From 'STEP:NAME*FACTOR[,NAME*FACTOR...]' texts, e.g. '15000:lr_g*0.1,lr_d*0.1'."""
        changes = []
        for text in texts:
            step, sep, factors = text.partition(":")
            try:
                pairs = tuple((name.strip(), float(factor)) for name, factor in
                              (item.split("*") for item in factors.split(",")))
                changes.append((int(step), pairs))
            except ValueError:
                raise ConfigError(f"`schedule`: {text!r} is not STEP:NAME*FACTOR[,NAME*FACTOR...], "
                                  "e.g. '15000:lr_g*0.1,lr_d*0.1'") from None
        return cls(tuple(sorted(changes)))

    @property
    def steps(self) -> list[int]:
        return [step for step, _ in self.changes]

    def check(self, log_every: int) -> None:
        """Raise ConfigError for a change that could not happen as written. A change past a run's last
        step is allowed: it happens if the run is resumed with more steps."""
        known = HParams.specs()
        if len(set(self.steps)) != len(self.steps):
            raise ConfigError(f"`schedule`: two changes at one step ({self.steps}); put their factors in one")
        for step, factors in self.changes:
            if step <= 0 or step % log_every:
                raise ConfigError(f"`schedule`: step {step} must be a positive multiple of `log_every` {log_every}")
            for name, factor in factors:
                if name not in known:
                    raise ConfigError(f"`schedule`: {name!r} is not a traced hyperparameter; choose from "
                                      f"{sorted(known)}")
                if not (np.isfinite(factor) and factor > 0):
                    raise ConfigError(f"`schedule`: the factor of {name} at step {step} must be positive, "
                                      f"got {factor:g}")

    def factors(self, step: int) -> dict[str, float]:
        """{name: factor} in force at `step` (from the latest change at or before it naming each)."""
        current: dict[str, float] = {}
        for at, factors in self.changes:
            if at <= step:
                current.update(factors)
        return current

    def apply(self, start: HParams, step: int) -> HParams:
        """The members' values at `step`, from their starting values `start` (member-stacked, host)."""
        factors = self.factors(step)
        return start.replace(**{name: (np.asarray(getattr(start, name), np.float32) * np.float32(factor))
                                for name, factor in factors.items()})

    def stages(self, start: HParams) -> list[HParams]:
        """The values of every stage after the first: to validate before training."""
        return [self.apply(start, step) for step in self.steps]

    def to_json(self) -> list[dict]:
        return [{"step": step, "factors": dict(factors)} for step, factors in self.changes]

    def __bool__(self) -> bool:
        return bool(self.changes)
