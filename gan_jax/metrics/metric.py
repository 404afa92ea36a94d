"""The declaration of an evaluation metric: its name, which way is better, what it measures. Each metrics
module declares its own (`METRICS`); a task lists the ones it reports, and a population search reads the
direction from there."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Metric:
    """One evaluation metric: its name (logged as `eval_<name>`), which way is better, what it measures."""

    name: str
    higher_is_better: bool
    help: str = ""

    @property
    def mode(self) -> str:
        """"max" or "min", as a population search ranks by it."""
        return "max" if self.higher_is_better else "min"


def higher(name: str, help: str = "") -> Metric:
    return Metric(name, True, help)


def lower(name: str, help: str = "") -> Metric:
    return Metric(name, False, help)
