"""What ran: each piece of a GAN (sampler, generator, discriminator, loss, penalty, update rule) and each
metric function, named and fingerprinted, so a run records its own pieces rather than the names of the
preset it started from, and a resume with a different piece is refused.

A library piece is named by what the config calls it (`loss: non_saturating`). Anything else is named
`module:qualname` (or the name given with `named`) and fingerprinted by the sha256 of its source code (and,
for a flax module, its fields), so editing a custom loss between a run and its resume is noticed.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
from typing import Any, Callable

NAME_ATTRIBUTE = "__gan_jax_name__"
DATA_ATTRIBUTE = "__gan_jax_data_sha256__"  # a library function bound to data of its own: that data's sha256


def named(piece: Any, name: str) -> Any:
    """`piece` recorded under `name` (a function; for a NamedTuple piece such as a GANLoss, give its
    `name` field instead). Returns the piece."""
    setattr(piece, NAME_ATTRIBUTE, name)
    return piece


def name_of(piece: Any) -> str:
    """The name a piece is recorded under: its given name, else module:qualname."""
    given = getattr(piece, NAME_ATTRIBUTE, None) or (getattr(piece, "name", None) if _is_tuple(piece) else None)
    if given:
        return given
    if isinstance(piece, functools.partial):
        return f"partial({name_of(piece.func)})"
    target = piece if inspect.isfunction(piece) or inspect.isclass(piece) else type(piece)
    return f"{target.__module__}:{target.__qualname__}"


def fingerprint(piece: Any) -> str:
    """sha256 of what defines the piece: its source code (a function's, a class's, a NamedTuple's
    functions'), a partial's bound arguments, a flax module's field values."""
    return hashlib.sha256(_definition(piece).encode()).hexdigest()


def carrying(piece: Any, name: str, data_sha256: Callable[[], str]) -> Any:
    """`piece` (a library function bound to the user's data, such as `gan_jax.image_sampler`'s sampler)
    recorded as a custom piece: under `name`, fingerprinted by `data_sha256()` (computed once, when first
    recorded), so a run names what it trained on and a resume with other data is refused. Returns the piece."""
    setattr(piece, DATA_ATTRIBUTE, functools.cache(data_sha256))
    return named(piece, name)


def describe(piece: Any) -> dict:
    """{"name", "sha256"} of a custom piece (of a data-bound one, `carrying`, its data's sha256); a piece of
    gan_jax itself is recorded by name alone, so a library upgrade does not block a resume."""
    name, data_sha256 = name_of(piece), getattr(piece, DATA_ATTRIBUTE, None)
    if data_sha256 is not None:
        return {"name": name, "sha256": data_sha256()}
    return {"name": name} if is_library(piece) else {"name": name, "sha256": fingerprint(piece)}


def is_library(piece: Any) -> bool:
    """Whether gan_jax's own code defines the piece (a NamedTuple piece: all of its functions)."""
    if isinstance(piece, functools.partial):
        return is_library(piece.func)
    if _is_tuple(piece):
        return all(is_library(v) for v in piece if callable(v))
    target = piece if inspect.isfunction(piece) or inspect.isclass(piece) else type(piece)
    return (target.__module__ or "").split(".")[0] == "gan_jax"


def _is_tuple(piece: Any) -> bool:
    return isinstance(piece, tuple) and hasattr(piece, "_fields")


def _definition(piece: Any) -> str:
    if isinstance(piece, functools.partial):
        return _definition(piece.func) + repr(piece.args) + repr(sorted(piece.keywords.items()))
    if _is_tuple(piece):
        return type(piece).__qualname__ + "".join(_definition(v) if callable(v) else repr(v) for v in piece)
    if inspect.isfunction(piece) or inspect.isclass(piece):
        return _source(piece)
    return _source(type(piece)) + repr(piece)  # a module instance: its class and its fields


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # defined interactively: its bytecode and constants stand in
        code = getattr(obj, "__code__", None)
        return repr(code.co_code) + repr(code.co_consts) if code is not None else repr(obj)
