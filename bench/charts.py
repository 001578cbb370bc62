"""PNG charts for bench/README.md (matplotlib, headless): bars with min-max whiskers, lines."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Series = dict[str, list[float]]  # "median", "min", "max": one value per label or x


def bars(path: Path, title: str, ylabel: str, labels: list[str], series: Series) -> Path:
    """Horizontal bars (one per case), medians with min-max whiskers over rounds."""
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.2))
    med = series["median"]
    low = [m - lo for m, lo in zip(med, series["min"], strict=True)]
    high = [hi - m for m, hi in zip(med, series["max"], strict=True)]
    ax.barh(labels, med, xerr=[low, high], color="#4c78a8", ecolor="#333", capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def lines(
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    xs: list[float],
    named: dict[str, Series],
    ylog: bool = False,
    dashed: Collection[str] = (),
) -> Path:
    """One line per case over xs (log scale, e.g. concurrent clients), medians with min-max
    bands; ``ylog`` when the values span decades; the cases in ``dashed`` (e.g. the baselines)
    drawn dashed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, series in named.items():
        style = "--" if name in dashed else "-"
        ax.plot(xs, series["median"], style, marker="o", label=name)
        ax.fill_between(xs, series["min"], series["max"], alpha=0.15)
    ax.set_xscale("log", base=2)
    if ylog:
        ax.set_yscale("log")
    ax.set_xticks(xs, [str(int(x)) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def stacked(
    path: Path, title: str, xlabel: str, labels: list[str], parts: dict[str, list[float]]
) -> Path:
    """Horizontal stacked bars: one bar per case, one colour per part (e.g. cold-start phases)."""
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.2))
    left = [0.0] * len(labels)
    for name, values in parts.items():
        ax.barh(labels, values, left=left, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
