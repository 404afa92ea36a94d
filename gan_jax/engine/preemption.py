"""Graceful stop on SIGTERM or SIGINT: a cluster preempts a job with SIGTERM and a grace period (SLURM,
Kubernetes). While `watch()` is active, the first such signal only sets a flag; the runner finishes its
current chunk, checkpoints, writes the summary so far and returns. A second SIGINT interrupts at once."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import jax
import numpy as np

SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class StopFlag:
    def __init__(self):
        self.signal: str | None = None

    def agreed(self) -> bool:
        """Whether to stop now: on every process the same answer (a multi-host run stops at one step when
        any process was signalled)."""
        mine = self.signal is not None
        if jax.process_count() == 1:
            return mine
        from jax.experimental import multihost_utils

        return bool(np.any(multihost_utils.process_allgather(np.asarray(mine))))


@contextlib.contextmanager
def watch() -> Iterator[StopFlag]:
    """Catch SIGTERM and SIGINT into a StopFlag for the duration (only in the main thread, where Python
    delivers signals); the previous handlers come back afterwards."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.signal = SIGNALS[signum]
        signal.signal(signum, previous[signum])  # a second signal acts as it would without us

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
