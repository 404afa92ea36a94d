"""How a device's members are laid out: vmapped together in blocks of `block` members, the blocks one after
another. Which block trains fastest depends on the model, the members per device and the machine (2-core
CPU, DCGAN, 4 members per device: blocks of 1 ran 44.4 seed-steps/s, blocks of 4 29.2; R1 at 128 members
per device: blocks of 16 19.1K, of 128 16.3K), so on a CPU it is measured: short timed runs of each
candidate block, in rounds, ranked by their median, kept in a cache file per model, members per device and
machine. A layout changes a member's numbers only by float32 rounding; a resumed run keeps the layout it was
started with.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import statistics
from typing import Callable

PROBE_ENV = "GAN_JAX_PROBE_LAYOUT"  # "0" (or false, no, off): never time a probe, use the rule (as the tests do)
CPU_RULE_BLOCK = 16  # the rule where nothing is measured: blocks of up to 16 on a CPU
MAX_CANDIDATE = 64  # larger blocks lost on every model measured on a CPU
PROBE_ROUNDS = 6  # rounds of timing: each candidate once per round, in turn (never twice in a row)
PROBE_CUT_AFTER = 3  # rounds; then only the faster half of the candidates (at least two) go on, ranked by the
# median of their timings: a shared machine's slow or quick spell moves one timing, not a median (the best of
# 2 rounds had put R2's 64 members in blocks of 1, one lucky timing ahead of 4; they then ran 0.80x-0.92x the
# 16 members' rate, where blocks of 2 ran 1.05x-1.13x, 2026-12-06)
PROBE_STEPS = 20  # steps per timed run (fewer when a logged window is shorter): the run's step, in shorter windows
PROBE_SECONDS = 0.25  # at least, per timing of a candidate (and one call), all its calls counted (as a run is
# timed, not its fastest call)
PROBE_SEED_STEPS = 256  # seed-steps per timed call at most, down to one step a call: fewer steps for many
# members (64 r2_wide_r1 members had taken 14 s a call at 20 steps)


@dataclasses.dataclass(frozen=True)
class Layout:
    block: int
    chosen_by: str  # "given", "recorded" (a resumed run's), "probe", "cache", "rule", "one member"
    rates: dict = dataclasses.field(default_factory=dict)  # the probe's seed-steps/s per candidate block: the
    # median of its timings (fewer for a candidate dropped early)

    def to_json(self) -> dict:
        return {"member_block": self.block, "chosen_by": self.chosen_by,
                "probe_seed_steps_per_s": {str(b): round(r, 1) for b, r in self.rates.items()}}


def candidates(local: int) -> list[int]:
    """Blocks worth timing for `local` members per device: the powers of two that divide it, and `local`
    itself, up to MAX_CANDIDATE."""
    blocks = {b for b in (2 ** k for k in range(local.bit_length())) if local % b == 0} | {local}
    return sorted(b for b in blocks if b <= MAX_CANDIDATE) or [1]


def probing() -> bool:
    return os.environ.get(PROBE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_path() -> pathlib.Path:
    root = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(root) / "gan_jax" / "layouts.json"


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cached(key: str) -> Layout | None:
    try:
        entry = json.loads(cache_path().read_text())[key]
        rates = {int(b): float(r) for b, r in entry["rates"].items()}
        block = int(entry["block"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no cache, another machine's, or unreadable: measure again
    return Layout(block, "cache", rates) if block in rates else None


def remember(key: str, layout: Layout) -> None:
    path = cache_path()
    try:
        entries = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = {"block": layout.block, "rates": {str(b): r for b, r in layout.rates.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: the next run measures again


def ranked(rates: dict[int, float]) -> list[int]:
    """Blocks fastest first; of equal rates, the larger first."""
    return sorted(rates, key=lambda b: (rates[b], b), reverse=True)


def fastest(rates: dict[int, float]) -> int:
    """The block measured fastest. Not the larger of near ties: R2's 16 members, blocks of 4 within 3% of 2 in
    the probe, ran 10% to 21% slower than blocks of 2 in each of 4 alternating rounds (2026-12-06)."""
    return ranked(rates)[0]


def probe(local: int, measure: Callable[[int], float], key: str) -> Layout:
    """The fastest of `candidates(local)` by `measure(block) -> seed-steps/s`, each candidate's median timing
    over the rounds it ran in (PROBE_ROUNDS, PROBE_CUT_AFTER), from the cache when this model, member count
    and machine were measured before."""
    found = cached(key)
    if found is not None and local % found.block == 0:
        return found
    alive = candidates(local)
    timings: dict[int, list[float]] = {b: [] for b in alive}
    for r in range(PROBE_ROUNDS):
        for b in alive:
            timings[b].append(measure(b))
        if r + 1 == PROBE_CUT_AFTER:  # the faster half, rounded up
            medians = {b: statistics.median(timings[b]) for b in alive}
            alive = sorted(ranked(medians)[:max(2, (len(alive) + 1) // 2)])
    rates = {b: statistics.median(t) for b, t in timings.items()}
    layout = Layout(fastest({b: rates[b] for b in alive}), "probe", rates)
    remember(key, layout)
    return layout
