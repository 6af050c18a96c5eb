"""The pictures of an evaluation report: transition matrices and distance densities.

Piano rolls come from cadenza.render.plot_piano_roll. Figure and FigureCanvasAgg rather
than pyplot, as there: no global state, no GUI backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cadenza.eval.distances import density_grid, inter_set_distances, intra_set_distances, kde
from cadenza.render import NOTE_NAMES


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_transition_matrices(
    matrices: dict[str, np.ndarray], path: Path, title: str = "pitch-class transitions"
) -> Path:
    """Side by side heat maps of 12 x 12 pitch-class transition matrices (e.g. the mean over
    real pieces and over samples), one colour scale for all."""
    fig = _figure(4.2 * len(matrices) + 0.8, 4.2)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    top = max(float(m.max()) for m in matrices.values()) or 1.0
    image = None
    for ax, (label, matrix) in zip(axes, matrices.items(), strict=True):
        image = ax.imshow(matrix, cmap="magma", vmin=0, vmax=top, origin="upper")
        ax.set_xticks(range(12), NOTE_NAMES, fontsize=7)
        ax.set_yticks(range(12), NOTE_NAMES, fontsize=7)
        ax.set_xlabel("to")
        ax.set_ylabel("from")
        ax.set_title(label)
    fig.colorbar(image, ax=list(axes), label="share of transitions", shrink=0.8)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_distance_densities(
    real: dict[str, np.ndarray], generated: dict[str, np.ndarray], path: Path,
    labels: tuple[str, str] = ("real", "generated"),
) -> Path:
    """One panel per feature: the densities of the intra-set distances of each set and of
    the inter-set distances (Yang & Lerch's figure)."""
    names = list(real)
    cols = 3
    rows = -(-len(names) // cols)
    fig = _figure(4.2 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        curves = {
            f"intra {labels[0]}": intra_set_distances(real[name]),
            f"intra {labels[1]}": intra_set_distances(generated[name]),
            "inter": inter_set_distances(real[name], generated[name]),
        }
        grid = density_grid(*curves.values())
        for (label, distances), style in zip(curves.items(), ("-", "--", ":"), strict=True):
            ax.plot(grid, kde(distances, grid), style, label=label, linewidth=1.6)
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.set_xlabel("distance", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
