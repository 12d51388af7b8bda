"""Plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fathom.report.files import atomic_path

__all__ = ["plot_accuracy_vs_depth"]


def plot_accuracy_vs_depth(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    title: str = "Test accuracy vs depth",
    chance: float | None = None,
) -> Path:
    """One line per model: mean test accuracy (%) against depth, with a ±1 std band.

    Args:
        rows: dicts with ``model``, ``depth``, ``test_acc_mean``, ``test_acc_std`` (fractions).
        path: PNG file to write (atomically).
        title: figure title.
        chance: accuracy of guessing the majority class (fraction), drawn as a dashed line.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for model in dict.fromkeys(r["model"] for r in rows):
        pts = sorted((r for r in rows if r["model"] == model), key=lambda r: r["depth"])
        depths = [r["depth"] for r in pts]
        mean = [100 * r["test_acc_mean"] for r in pts]
        std = [100 * r.get("test_acc_std", 0.0) for r in pts]
        (line,) = ax.plot(depths, mean, marker="o", label=model)
        ax.fill_between(
            depths,
            [m - s for m, s in zip(mean, std, strict=True)],
            [m + s for m, s in zip(mean, std, strict=True)],
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )
    if chance is not None:
        ax.axhline(100 * chance, color="grey", linestyle="--", linewidth=1, label="majority class")
    depths_all = sorted({r["depth"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths_all, [str(d) for d in depths_all])
    ax.set_xlabel("depth (message-passing layers, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
