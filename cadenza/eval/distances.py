"""Yang & Lerch (2018)'s comparison of two sets of pieces, feature by feature, as mgeval.

For one feature: the intra-set distances (every pair of pieces inside a set) and the
inter-set distances (every piece of one set against every piece of the other), Euclidean
on the flattened feature; a Gaussian kernel density estimate of each; and how much the
real set's intra-set density and the inter-set density agree: their overlapped area (1 is
the same distribution) and the KL divergence KL(intra_real || inter) (0 is the same).
mgeval uses scipy's gaussian_kde; this is the same estimate (Scott's bandwidth) in numpy,
with both densities evaluated on one grid rather than on a grid per set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

GRID_POINTS = 1000
_MIN_BANDWIDTH = 1e-6  # a feature that never varies still gets a (very narrow) density


def intra_set_distances(values: np.ndarray) -> np.ndarray:
    """Distances between every pair of pieces in one set: values is (pieces, ...)."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    i, j = np.triu_indices(len(flat), k=1)
    return np.linalg.norm(flat[i] - flat[j], axis=1)


def inter_set_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between every piece of `a` and every piece of `b`."""
    fa = a.reshape(len(a), -1).astype(np.float64)
    fb = b.reshape(len(b), -1).astype(np.float64)
    return np.linalg.norm(fa[:, None, :] - fb[None, :, :], axis=2).ravel()


def bandwidth(samples: np.ndarray) -> float:
    """Scott's rule, as scipy.stats.gaussian_kde picks it for one dimension."""
    spread = float(np.std(samples, ddof=1)) if len(samples) > 1 else 0.0
    return max(spread * len(samples) ** -0.2, _MIN_BANDWIDTH)


def kde(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The Gaussian kernel density estimate of `samples`, evaluated at `grid`. The kernel is
    never narrower than two grid steps, so that the grid sees it (a set whose distances
    barely vary beside a set whose distances vary a lot)."""
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 0.0
    h = max(bandwidth(samples), 2 * step)
    z = (grid[:, None] - samples[None, :]) / h
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(samples) * h * np.sqrt(2 * np.pi))


def density_grid(*sets: np.ndarray) -> np.ndarray:
    """One grid that holds nearly all the mass of every set's density (4 bandwidths out)."""
    low = min(float(s.min()) - 4 * bandwidth(s) for s in sets)
    high = max(float(s.max()) + 4 * bandwidth(s) for s in sets)
    return np.linspace(low, high, GRID_POINTS)


def overlapped_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area under min(pdf_a, pdf_b): 1 for the same density, 0 for disjoint ones."""
    grid = density_grid(a, b)
    low = np.minimum(kde(a, grid), kde(b, grid))
    return float(((low[1:] + low[:-1]) / 2).sum() * (grid[1] - grid[0]))  # trapezoid rule


def kl_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """KL(pdf_a || pdf_b) in nats, on a shared grid; each density is floored at a tiny
    value so that a density with no mass where the other has some gives a large, finite
    number rather than infinity."""
    grid = density_grid(a, b)
    p, q = kde(a, grid), kde(b, grid)
    p, q = np.maximum(p / p.sum(), 1e-12), np.maximum(q / q.sum(), 1e-12)
    return float((p * np.log(p / q)).sum())


@dataclass
class FeatureComparison:
    """One row of Yang & Lerch's table: distances in the feature's own unit."""

    feature: str
    intra_real: tuple[float, float]  # mean, std
    intra_generated: tuple[float, float]
    inter: tuple[float, float]
    kl: float  # KL(intra_real || inter)
    overlap: float  # OA(intra_real, inter)

    def to_dict(self) -> dict:
        return asdict(self)


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std())


def compare_feature(name: str, real: np.ndarray, generated: np.ndarray) -> FeatureComparison:
    """Compare one feature's values over two sets, each (pieces, ...) with >= 2 pieces."""
    if len(real) < 2 or len(generated) < 2:
        raise ValueError("each set needs at least two pieces to have intra-set distances")
    intra_real = intra_set_distances(real)
    intra_generated = intra_set_distances(generated)
    inter = inter_set_distances(real, generated)
    return FeatureComparison(
        feature=name,
        intra_real=_mean_std(intra_real),
        intra_generated=_mean_std(intra_generated),
        inter=_mean_std(inter),
        kl=kl_divergence(intra_real, inter),
        overlap=overlapped_area(intra_real, inter),
    )


def stack_features(per_piece: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """[{feature: value}] per piece -> {feature: (pieces, ...) array}."""
    return {name: np.stack([p[name] for p in per_piece]) for name in per_piece[0]}
