"""TensorBoard event files of a run, written as it trains, under `<run>/tensorboard/`: see them with
`tensorboard --logdir runs` (every run below `runs/`, side by side).

Each folder is one TensorBoard run; every folder uses the same tags, so one chart per metric overlays the
members and the quantiles (the run selector filters them, e.g. by the regex `quantiles` or `member_`):

    member_<i:03d>_seed_<seed>/   one per member, in runs of at most MAX_MEMBERS (64) members (in larger runs
                                  only the folders of members whose sample grids are shown, with those alone):
        train/<metric>               every logged step's training metrics (d_loss, g_loss, d_real, ...)
        eval/<metric>                every evaluation
        hparams/<name>               a traced hyperparameter, from the step a schedule or population search
                                     changed it (absent while it keeps its starting value)
        samples                      sample grids (image tasks; a few members, spread over the population)
        _hparams_/session_start_info the member's hyperparameters, seed and index at the start: one session of
                                     the HPARAMS view per member, whose metrics are the last values of its tags
    quantiles/<q>/                q in min, q25, median, q75, max: over all members (the NaNs of diverged
                                  members left out), at any number of members
        train/<metric>, eval/<metric>

Scalars are float32 (`simple_value`), at the steps the run's `metrics/` files hold; sample grids are PNG
images (the image plugin's format); the hyperparameters are the hparams plugin's session summaries. All are
TensorBoard's own protos written by its own `EventFileWriter`; no TensorFlow needed.

A new run starts from an empty folder; a resumed one (`resume_step`) keeps what was written before that step
(each folder's earlier event files become one, without the events from that step on) and appends to it, so
TensorBoard shows what an uninterrupted run shows.
"""
from __future__ import annotations

import io
import math
import pathlib
import shutil
import time
import warnings
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

MAX_MEMBERS = 64  # per-member folders (curves and HPARAMS sessions) for runs of at most this many members
QUANTILES = {"min": 0, "q25": 25, "median": 50, "q75": 75, "max": 100}  # folder name -> percentile (linear)
SESSION_TAG = "_hparams_/session_start_info"
EVENT_FILES = "events.out.tfevents.*"
QUEUE = 100_000  # events a folder's writer holds before `add_event` waits for its thread to write them
FLUSH_SECS = 5  # how often each writer's thread flushes what it wrote to disk (TensorBoard reloads every 5 s)


def member_folder(member: int, seed: int) -> str:
    return f"member_{member:03d}_seed_{seed}"


def quantile_folder(name: str) -> str:
    return f"quantiles/{name}"


def grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Images [n, h, w] or [n, h, w, c] (uint8, or floats in [0, 1]) tiled row by row into one uint8 image
    [rows * h, columns * w, c], the empty cells black. `columns` defaults to 8 when n is a multiple of 8 (the
    package's grids: 8 x 8 samples, or 8 per class), else ceil(sqrt(n))."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be [n, h, w] or [n, h, w, c] with c 1, 3 or 4; got shape {images.shape}")
    if images.dtype != np.uint8:
        images = np.round(np.clip(np.nan_to_num(images.astype(np.float32)), 0, 1) * 255).astype(np.uint8)
    n, h, w, c = images.shape
    columns = columns or (8 if n % 8 == 0 else math.ceil(math.sqrt(n)))
    rows = -(-n // columns)
    tiles = np.zeros((rows * columns, h, w, c), np.uint8)
    tiles[:n] = images
    return tiles.reshape(rows, columns, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, columns * w, c)


def png(image: np.ndarray) -> bytes:
    """One uint8 image [h, w, c] as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    """A hyperparameter value as the hparams plugin takes it (bool, number or string), or None to leave out."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class TensorBoard:
    """A run's event files (the module docstring's layout). `train` and `evaluation` take every member's
    values as MetricLog does. Each folder's writer encodes and writes its events on a thread of its own,
    while the run trains, and flushes them to disk every FLUSH_SECS; `flush` waits until all are on disk,
    `close` ends the files (also done when the writer is garbage collected)."""

    def __init__(self, directory: str | pathlib.Path, seeds: Sequence[int], hparams: Sequence[Mapping[str, Any]],
                 max_members: int = MAX_MEMBERS, resume_step: int | None = None):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import summary_v2
        from tensorboard.plugins.image import metadata as image_metadata
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util

        self._event_pb2, self._summary_pb2, self._hparams_pb = event_pb2, summary_pb2, summary_v2.hparams_pb
        self._image_metadata, self._tensor_util, self._file_writer = image_metadata, tensor_util, EventFileWriter
        self.directory = pathlib.Path(directory)
        self.seeds = [int(s) for s in seeds]
        self.per_member = len(self.seeds) <= max_members
        self._hparams = [dict(h) for h in hparams]  # the values last written, per member
        self._writers: dict[str, Any] = {}
        self._finalizer = weakref.finalize(self, _close_all, self._writers)
        sessions = set()  # folders whose kept events hold their session
        if resume_step is None:
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            sessions = self._keep_before(resume_step)
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in QUANTILES:
            self._writer(quantile_folder(name))
        if self.per_member:
            for member, seed in enumerate(self.seeds):
                folder = member_folder(member, seed)
                if folder not in sessions:
                    self._session(folder, member, resume_step or 0)

    # -- files ----------------------------------------------------------------------------------------------
    def _writer(self, folder: str):
        if folder not in self._writers:
            self._writers[folder] = self._file_writer(str(self.directory / folder), QUEUE, FLUSH_SECS)
        return self._writers[folder]

    def _keep_before(self, step: int) -> set[str]:
        """Rewrite each folder's event files as one new file without the events at `step` and later; returns
        the folders whose kept events include their hparams session."""
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader

        sessions = set()
        folders = sorted({p.parent for p in self.directory.rglob(EVENT_FILES)}) if self.directory.is_dir() else []
        for folder in folders:
            name = folder.relative_to(self.directory).as_posix()
            old = sorted(folder.glob(EVENT_FILES), key=_file_order)
            writer = self._writer(name)
            for path in old:
                for record in RawEventFileLoader(str(path)).Load():
                    event = self._event_pb2.Event.FromString(record)
                    if event.HasField("summary") and event.step < step:
                        writer.add_event(event)
                        if any(v.tag == SESSION_TAG for v in event.summary.value):
                            sessions.add(name)
            writer.flush()
            for path in old:
                path.unlink()
        return sessions

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        self._finalizer()

    # -- records --------------------------------------------------------------------------------------------
    def _session(self, folder: str, member: int, step: int) -> None:
        values = {k: _plain(v) for k, v in self._hparams[member].items()}
        values = {**{k: v for k, v in values.items() if v is not None}, "seed": self.seeds[member], "member": member}
        # the group name (one per session): unique across every run below a logdir, so each member is its own row
        summary = self._hparams_pb(values, trial_id=str((self.directory / folder).resolve()))
        self._writer(folder).add_event(self._event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def _scalars(self, folder: str, step: int, values: Mapping[str, float]) -> None:
        summary = self._summary_pb2.Summary(value=[self._summary_pb2.Summary.Value(tag=tag, simple_value=value)
                                                   for tag, value in values.items()])
        self._writer(folder).add_event(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _record(self, prefix: str, steps: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """values: {metric: [members, len(steps)]}, written per member and as quantiles over members."""
        if not values:
            return
        tags = [f"{prefix}/{k}" for k in values]
        stacked = np.stack([np.asarray(v, np.float32) for v in values.values()])  # [metrics, members, steps]
        if self.per_member:
            for member, seed in enumerate(self.seeds):
                for j, step in enumerate(steps):
                    self._scalars(member_folder(member, seed), step, dict(zip(tags, stacked[:, member, j].tolist())))
        percentile = np.nanpercentile if np.isnan(stacked).any() else np.percentile  # the same, without NaNs
        with warnings.catch_warnings():  # all-NaN (every member diverged): NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            quantiles = percentile(stacked, list(QUANTILES.values()), axis=1).astype(np.float32)
        for name, q in zip(QUANTILES, quantiles):  # q: [metrics, steps]
            for j, step in enumerate(steps):
                self._scalars(quantile_folder(name), step, dict(zip(tags, q[:, j].tolist())))

    def _hparams_changed(self, hparams: Sequence[Mapping[str, Any]] | None, step: int) -> None:
        """hparams/<name> of each member whose traced values changed since last written, at `step`: a
        schedule or a population search changes them at a chunk's boundary, the step of the evaluation there
        and the first step the next chunk logs."""
        if hparams is None or not self.per_member:
            return
        for member, (seed, now) in enumerate(zip(self.seeds, hparams)):
            before = self._hparams[member]
            changed = {k: v for k, v in now.items() if _plain(v) != _plain(before.get(k))}
            numbers = {f"hparams/{k}": float(v) for k, v in changed.items() if isinstance(_plain(v), (int, float))}
            if numbers:
                self._scalars(member_folder(member, seed), step, numbers)
            self._hparams[member] = dict(now)

    def train(self, steps: Sequence[int], values: Mapping[str, np.ndarray],
              hparams: Sequence[Mapping[str, Any]] | None = None) -> None:
        """One chunk's training metrics: `steps` [logs], `values` {metric: [members, logs]} (as `train/<metric>`).
        `hparams` (each member's traced values now) writes those that changed as `hparams/<name>`."""
        steps = np.asarray(steps).reshape(-1)
        self._hparams_changed(hparams, int(steps[0]))
        self._record("train", steps, dict(values))

    def evaluation(self, step: int, values: Mapping[str, np.ndarray],
                   hparams: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Every member's evaluation at `step`: {metric: [members]} (as `eval/<metric>`)."""
        self._hparams_changed(hparams, int(step))
        self._record("eval", np.asarray([step]), {k: np.asarray(v).reshape(-1, 1) for k, v in values.items()})

    def images(self, step: int, tag: str, images: np.ndarray, member: int = 0, columns: int | None = None) -> None:
        """A sample grid of `member` at `step`: `images` [n, h, w] or [n, h, w, c], uint8 or floats in [0, 1],
        tiled by `grid` and written as one PNG image under `tag` in the member's folder."""
        image = grid(images, columns)
        h, w = image.shape[:2]
        tensor = self._tensor_util.make_tensor_proto([str(w).encode(), str(h).encode(), png(image)])
        summary = self._summary_pb2.Summary(value=[self._summary_pb2.Summary.Value(
            tag=tag, tensor=tensor, metadata=self._image_metadata.create_summary_metadata(tag, ""))])
        self._writer(member_folder(member, self.seeds[member])).add_event(
            self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))


def _close_all(writers: dict) -> None:
    for writer in writers.values():
        writer.close()
    writers.clear()


def _file_order(path: pathlib.Path) -> tuple:
    """Event files in the order they were written: by their name's time, then its writer number
    (events.out.tfevents.<time>.<host>.<pid>.<n>), numerically."""
    parts = path.name.split(".")
    return (int(parts[3]) if parts[3].isdigit() else 0, int(parts[-1]) if parts[-1].isdigit() else 0, path.name)
