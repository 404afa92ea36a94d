"""Benchmarks on the papers' own protocols: data and metric together, with the published rows to set ours
beside. A gan_jax row and a published row measure the same thing only under the same protocol.

Toy mixtures (PacGAN's protocol, Lin et al. 2018, as its code computes it; `gan_jax.metrics.toy`): 2,500
samples; each to the nearest mode by standardized distance; high quality below 3 std; a mode captured by
one high-quality sample; the share of high-quality samples; the reverse KL of the high-quality histogram
from uniform. Stacked MNIST (`gan_jax.metrics.stacked_mnist`): modes covered of 1,000 and their KL from uniform
on 26,000 samples. Published rows are mean +- standard error over the papers' trials, transcribed from the
authors' repository (fjxmlzn/PacGAN: Table1.png, Table2.png, Table3.png) as ../shared/PUBLISHED.md records them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from gan_jax.errors import ConfigError
from gan_jax.metrics import stats

SOURCE = "Lin, Khetan, Fanti, Oh: PacGAN, NeurIPS 2018 (arXiv 1712.04086); tables from github.com/fjxmlzn/PacGAN"


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    task: str  # "toy" or "stacked_mnist"
    dataset: str  # the data's name in gan_jax.data
    description: str
    metrics: dict[str, str]  # our metric name -> the published column it matches
    published: dict[str, dict[str, tuple[float, float]]]  # method -> column -> (mean, standard error)
    published_trials: str


_TOY_COLUMNS = {"modes_captured": "modes", "high_quality": "high quality", "mode_reverse_kl": "reverse KL"}


def _toy(ring: bool) -> dict:
    """PacGAN's Table 1, one dataset's three columns (high quality as a share, not %)."""
    rows = {  # modes, high quality %, reverse KL; ring then grid
        "GAN": ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09), (17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
        "ALI": ((6.6, 0.3), (97.6, 0.4), (0.36, 0.04), (24.1, 0.4), (95.7, 0.6), (0.14, 0.03)),
        "PacGAN2": ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03), (23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
        "PacGAN3": ((7.8, 0.1), (97.7, 0.3), (0.10, 0.02), (24.6, 0.4), (94.2, 0.4), (0.06, 0.02)),
        "PacGAN4": ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02), (24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
    }
    out = {}
    for method, values in rows.items():
        (m, hq, kl) = values[:3] if ring else values[3:]
        out[method] = {"modes_captured": m, "high_quality": (hq[0] / 100, hq[1] / 100), "mode_reverse_kl": kl}
    return out


_STACKED_COLUMNS = {"modes": "modes (of 1,000)", "mode_kl": "KL"}
_STACKED_VEEGAN = {  # PacGAN's Table 2 (VEEGAN's setting); the first four rows as VEEGAN reported them, no error
    "DCGAN (VEEGAN's report)": {"modes": (99.0, None), "mode_kl": (3.40, None)},
    "ALI": {"modes": (16.0, None), "mode_kl": (5.40, None)},
    "Unrolled GAN": {"modes": (48.7, None), "mode_kl": (4.32, None)},
    "VEEGAN": {"modes": (150.0, None), "mode_kl": (2.95, None)},
    "DCGAN (PacGAN's)": {"modes": (78.9, 6.46), "mode_kl": (4.50, 0.127)},
    "PacDCGAN2": {"modes": (1000.0, 0.0), "mode_kl": (0.06, 0.003)},
    "PacDCGAN3": {"modes": (1000.0, 0.0), "mode_kl": (0.06, 0.003)},
    "PacDCGAN4": {"modes": (1000.0, 0.0), "mode_kl": (0.07, 0.005)},
}

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("pacgan_ring", "toy", "pacgan_ring", "8 Gaussians at (cos 2 pi i/8, sin 2 pi i/8), std 0.01",
             _TOY_COLUMNS, _toy(ring=True), "10 trials"),
    Protocol("pacgan_grid", "toy", "pacgan_grid", "25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05",
             _TOY_COLUMNS, _toy(ring=False), "10 trials"),
    Protocol("veegan_ring", "toy", "veegan_ring", "8 Gaussians on a circle of radius 2, std 0.02 (VEEGAN's ring, "
             "gan_jax's ring8)", _TOY_COLUMNS, {}, ""),
    Protocol("veegan_grid", "toy", "veegan_grid", "25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.02 (VEEGAN gives no "
             "grid std; its ring's; gan_jax's grid25)", _TOY_COLUMNS, {}, ""),
    Protocol("stacked_mnist", "stacked_mnist", "stacked_mnist", "three MNIST digits as the channels of a 28x28x3 "
             "image, 1,000 modes, 26,000 samples", _STACKED_COLUMNS, _STACKED_VEEGAN,
             "10 trials for the PacDCGAN rows and PacGAN's DCGAN (VEEGAN's setting)"),
)}


def get(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ConfigError(f"`benchmark`: unknown benchmark {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


def mean_se_ci(values) -> dict[str, float]:
    """Mean, standard error (the papers' statistic) and 95% CI half-width (Student's t) of finite values."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return {"mean": float(v.mean()) if v.size else float("nan"), "se": float("nan"), "ci95": float("nan"),
                "n": int(v.size)}
    se = v.std(ddof=1) / np.sqrt(v.size)
    return {"mean": float(v.mean()), "se": float(se), "ci95": float(stats.t975(v.size - 1) * se),
            "n": int(v.size)}


def table(protocol: Protocol, ours: dict[str, dict[str, float]], label: str) -> str:
    """Our row (mean +- standard error, and the 95% CI) beside the published rows, as markdown."""
    columns = list(protocol.metrics)
    head = ["method"] + [protocol.metrics[c] for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, row in protocol.published.items():
        cells = [f"{row[c][0]:.4g}" + ("" if row[c][1] is None else f" +- {row[c][1]:.2g}") for c in columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    cells = [f"**{ours[c]['mean']:.4g} +- {ours[c]['se']:.2g}** (95% CI +- {ours[c]['ci95']:.2g})" for c in columns]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
    note = (f"Published: mean +- standard error over {protocol.published_trials} ({SOURCE}). "
            if protocol.published else "No published rows for this protocol. ")
    return "\n".join(lines) + f"\n\n{note}Ours: mean +- standard error over {ours[columns[0]]['n']} seeds, with its " \
        "95% CI (Student's t).\n"
