"""Figures from host arrays (numpy). Training code never imports this module."""
from __future__ import annotations

import math
import pathlib
from typing import Sequence

import numpy as np


def subplots(*grid, figsize, **kwargs):
    """(figure, axes) without pyplot: no global figure state and no backend to choose, so the library
    draws headless and a caller's own matplotlib settings stay untouched."""
    from matplotlib.figure import Figure  # here, not at import: entry points start without matplotlib

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _save_gif(fig, draw, frames: int, path: pathlib.Path, fps: int) -> pathlib.Path:
    from matplotlib.animation import FuncAnimation, PillowWriter

    FuncAnimation(fig, draw, frames=frames).save(path, writer=PillowWriter(fps=fps))
    return path


def real_data(real: np.ndarray, path: pathlib.Path, title: str = "real data") -> pathlib.Path:
    fig, ax = subplots(figsize=(5, 4))
    ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:blue")
    ax.set(title=title, xlabel="x", ylabel="y")
    return _save(fig, path)


def setting_label(setting: dict) -> str:
    """'lr 0.0001, beta1 0.5': a setting's values (both learning rates as one `lr` when equal)."""
    setting = dict(setting)
    if "lr_g" in setting and "lr_d" in setting and setting["lr_g"] == setting["lr_d"]:
        setting = {"lr": setting.pop("lr_g"), **{k: v for k, v in setting.items() if k != "lr_d"}}
    return ", ".join(f"{k} {v:.3g}" for k, v in setting.items())


def setting_groups(summary: dict, shown: Sequence[int] | None = None) -> list[dict]:
    """The groups a figure averages over, from summary.json's `by_setting`: [{"label", "rows", "n",
    "pooled"}], `rows` indexing the members whose curves are given (`shown`: their member indices, e.g.
    `Result.history_members`; default all), `n` the group's size. One group when every member shares a
    setting; a PBT population is one group, `pooled`."""
    position = {int(m): j for j, m in enumerate(range(summary["n_members"]) if shown is None else shown)}
    groups = summary.get("by_setting") or [{"setting": {}, "members": list(range(summary["n_members"]))}]
    return [{"label": "PBT population" if g.get("pooled") else setting_label(g["setting"]),
             "rows": [position[m] for m in g["members"] if m in position], "n": len(g["members"]),
             "pooled": bool(g.get("pooled"))} for g in groups]


def averaged(n: int, shown: int, group: dict | None, what: str = "mean") -> str:
    """A legend's words for what a line averages: 'mean over 4 seeds, lr 0.0001'; 'members' where the
    members are not known to share a setting (no `group`) or are a pooled population."""
    unit = "seeds" if group is not None and not group["pooled"] else "members"
    of = f"{shown} of {n}" if shown != n else f"{n}"
    label = group["label"] if group is not None else ""
    return f"{what} over {of} {unit}" + (f", {label}" if label else "")


def loss_curves(steps: np.ndarray, d_loss: np.ndarray, g_loss: np.ndarray, path: pathlib.Path,
                seeds: Sequence[int], medians: tuple[np.ndarray, np.ndarray] | None = None,
                groups: list[dict] | None = None) -> pathlib.Path:
    """D and G loss against step, one thin line per member given (with its seed) plus the median over
    members: `medians` (D's, G's) when given (over a whole population whose curves were sampled), else
    over the members given. With `groups` of several settings (`setting_groups`), each setting's members
    in a colour of their own and each setting's median over its members given, labelled with the setting;
    `medians` (pooled over settings) is then not drawn."""
    fig, axes = subplots(1, 2, figsize=(11, 4), sharex=True)
    several = groups is not None and len(groups) > 1
    for ax, losses, k, name in ((axes[0], d_loss, 0, "discriminator"), (axes[1], g_loss, 1, "generator")):
        if several:
            for g, color in zip(groups, _colors(len(groups))):
                if not g["rows"]:
                    continue
                ax.plot(steps, losses[g["rows"]].T, c=color, lw=0.5, alpha=0.4)
                with np.errstate(all="ignore"):
                    median = np.nanmedian(losses[g["rows"]], axis=0)
                ax.plot(steps, median, c=color, lw=1.6, label=averaged(g["n"], len(g["rows"]), g, "median"))
        else:
            median = medians[k] if medians else np.nanmedian(losses, axis=0)
            n = groups[0]["n"] if groups else (len(seeds) if not medians else None)
            for member, seed in enumerate(seeds):
                ax.plot(steps, losses[member], lw=0.6, alpha=0.6, label=f"seed {seed}" if len(seeds) <= 8 else None)
            label = "median" if n is None else averaged(n, n, groups[0] if groups else None, "median")
            ax.plot(steps, median, c="k", lw=1.4, label=label)
        ax.set(title=f"{name} loss", xlabel="step", ylabel="loss")
        ax.legend(fontsize=7, ncol=2 if not several else 1)
    return _save(fig, path)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["tab10"](i % 10) for i in range(n)]


def _scatter_real_fake(ax, real: np.ndarray, fake: np.ndarray, title: str, lims=None):
    ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:blue", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:orange", label="generated")
    ax.set_title(title, fontsize=9)
    if lims is not None:
        ax.set(xlim=lims[0], ylim=lims[1])


def _limits(real: np.ndarray, pad: float = 0.25):
    lo, hi = real.min(0), real.max(0)
    span = hi - lo
    return (lo[0] - pad * span[0], hi[0] + pad * span[0]), (lo[1] - pad * span[1], hi[1] + pad * span[1])


def snapshot_grid(snapshots: Sequence[tuple[int | str, np.ndarray]], real: np.ndarray, path: pathlib.Path,
                  max_panels: int = 12, title: str = "") -> pathlib.Path:
    """Real vs generated samples at evenly spaced snapshots (the first and last always shown); a panel is
    titled "step N" for an integer step, else by its own label."""
    idx = np.unique(np.linspace(0, len(snapshots) - 1, min(max_panels, len(snapshots))).round().astype(int))
    cols = min(4, len(idx))
    rows = math.ceil(len(idx) / cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    lims = _limits(real)
    for ax, i in zip(axes.flat, idx):
        step, fake = snapshots[i]
        _scatter_real_fake(ax, real, fake, f"step {step}" if isinstance(step, int) else step, lims)
    for ax in axes.flat[len(idx):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, markerscale=3)
    fig.suptitle(title)
    return _save(fig, path)


def snapshot_gif(snapshots: Sequence[tuple[int, np.ndarray]], real: np.ndarray, path: pathlib.Path,
                 fps: int = 5, title: str = "") -> pathlib.Path:
    """Animated real vs generated samples, one frame per snapshot."""
    fig, ax = subplots(figsize=(5, 4))
    lims = _limits(real)

    def draw(i):
        ax.clear()
        step, fake = snapshots[i]
        _scatter_real_fake(ax, real, fake, f"{title} step {step}", lims)
        ax.legend(loc="upper center", fontsize=7, markerscale=3)

    return _save_gif(fig, draw, len(snapshots), path, fps)


def feature_space(before: dict[str, np.ndarray], after: dict[str, np.ndarray], path: pathlib.Path,
                  update: str) -> pathlib.Path:
    """D's 2-D feature space of real and generated samples before and after one `update` (D or G),
    with the centroid of each set; an arrow shows where the fake centroid moved."""
    fig, axes = subplots(1, 2, figsize=(11, 4.5))
    for ax, feats, when in ((axes[0], before, "before"), (axes[1], after, "after")):
        real, fake = feats["real"], feats["fake"]
        ax.scatter(real[:, 0], real[:, 1], s=3, c="tab:blue", alpha=0.5, label="real")
        ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:orange", alpha=0.5, label="generated")
        for pts, color, name in ((real, "navy", "real centroid"), (fake, "darkred", "fake centroid")):
            c = pts.mean(0)
            ax.scatter([c[0]], [c[1]], s=160, marker="*", c=color, edgecolors="w", label=name, zorder=3)
        if when == "after":
            c0, c1 = before["fake"].mean(0), fake.mean(0)
            ax.annotate("", xy=c1, xytext=c0, arrowprops=dict(arrowstyle="->", color="darkred", lw=1.5), zorder=4)
        gap = np.linalg.norm(real.mean(0) - fake.mean(0))
        ax.set(title=f"D features {when} the {update} update (centroid gap {gap:.3g})",
               xlabel="feature 1", ylabel="feature 2")
        ax.legend(fontsize=7, markerscale=1)
    return _save(fig, path)


def metric_bands(steps: np.ndarray, metrics: dict[str, np.ndarray], path: pathlib.Path,
                 over_members: dict[str, list[dict]] | None = None, groups: list[dict] | None = None) -> pathlib.Path:
    """Each metric against step: mean with its 95% confidence band (`over_members`: per step, mean_ci95
    over a whole population whose values were sampled; else over the members given), and each member given
    faintly. The legend says what the mean is over: "mean over 4 seeds" when `groups` (`setting_groups`)
    says the members share one setting, "members" when not told. With `groups` of several settings, one
    mean and band per setting, each over its own members given ("mean over 4 seeds, lr 0.0001"), never one
    over two settings (`over_members`, pooled, is then not drawn)."""
    from gan_jax.metrics.stats import mean_ci95

    fig, axes = subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    several = groups is not None and len(groups) > 1
    for ax, (name, values) in zip(axes.flat, metrics.items()):
        if several:
            bands = [(g, [mean_ci95(values[g["rows"], t]) for t in range(values.shape[1])], color)
                     for g, color in zip(groups, _colors(len(groups))) if g["rows"]]
        else:
            pooled = (over_members or {}).get(name)
            summaries = pooled or [mean_ci95(values[:, t]) for t in range(values.shape[1])]
            group = groups[0] if groups else None
            bands = [(group, summaries, "tab:blue")]
        for group, summaries, color in bands:
            rows = group["rows"] if several else slice(None)
            mean = np.array([s["mean"] for s in summaries])
            half = np.nan_to_num(np.array([s["ci95"] for s in summaries]))
            n = summaries[-1]["n"]
            total = group["n"] if group is not None and several else n
            ax.plot(steps, values[rows].T, c="grey" if not several else color, lw=0.5, alpha=0.4)
            ax.plot(steps, mean, c=color, lw=1.6, label=averaged(total, n, group))
            ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2,
                            label="95% CI" if not several else None)
        ax.set(title=name, xlabel="step")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _tile(images: np.ndarray, rows: int) -> np.ndarray:
    """[n, h, w] (or [n, h, w, 3], colour) -> one [rows*h, cols*w] mosaic with 1-pixel gaps."""
    n, h, w = images.shape[:3]
    cols = math.ceil(n / rows)
    canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1) + images.shape[3:], np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = image
    return canvas


def image_grid(images: np.ndarray, path: pathlib.Path, rows: int, title: str = "") -> pathlib.Path:
    """Images in [0, 1], shape [n, h, w] (grey) or [n, h, w, 3] (colour), as a grid with `rows` rows."""
    fig, ax = subplots(figsize=(0.6 * math.ceil(len(images) / rows) + 0.6, 0.6 * rows + 0.5))
    ax.imshow(np.nan_to_num(_tile(images, rows), nan=1.0), cmap="gray", vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def image_gif(frames: Sequence[tuple[int, np.ndarray]], path: pathlib.Path, rows: int, fps: int = 4,
              title: str = "") -> pathlib.Path:
    """Animated image grids, one frame per (step, images in [0, 1])."""
    fig, ax = subplots(figsize=(0.5 * math.ceil(len(frames[0][1]) / rows) + 0.5, 0.5 * rows + 0.6))

    def draw(i):
        ax.clear()
        step, images = frames[i]
        ax.imshow(np.nan_to_num(_tile(images, rows), nan=1.0), cmap="gray", vmin=0, vmax=1)
        ax.set(xticks=[], yticks=[], title=f"{title} step {step}")

    return _save_gif(fig, draw, len(frames), path, fps)
