"""The errors gan_jax raises for bad input. Each message is one line naming the problem and the fix;
entry points turn any `GanJaxError` into that line on stderr and exit status 2.

Settings are named in backticks (`lr_g`, `data_dir`), so a command-line front end (gan_jax.cli) can
show them as its own flags without the library knowing about flags.
"""
from __future__ import annotations


class GanJaxError(ValueError):
    """Bad input, refused before anything is written."""


class ConfigError(GanJaxError):
    """A setting has a value gan_jax cannot run."""


class DataError(GanJaxError):
    """A data file is missing, truncated or malformed, or a dataset cannot be loaded."""


class CheckpointError(GanJaxError):
    """A checkpoint cannot be resumed: none there, unreadable, or written for a different config."""


class ResourceError(GanJaxError):
    """A run cannot fit in memory, or its output directory cannot be created."""
