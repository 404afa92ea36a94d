"""Command-line value types: each parses one flag's text or raises argparse.ArgumentTypeError naming the
problem (so argparse reports one line and exit status 2)."""
from __future__ import annotations

import argparse

from gan_jax.core.config import Traced


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def widths(text: str) -> tuple[int, ...]:
    """'128,128' -> (128, 128): layer widths, each a positive integer."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    return values


def traced_value(spec: Traced):
    """A parser of one value of a traced hyperparameter, checked against its declared range."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not spec.contains(value):
            raise argparse.ArgumentTypeError(f"must be finite and in {spec.describe()}, got {text}")
        return value
    return parse
