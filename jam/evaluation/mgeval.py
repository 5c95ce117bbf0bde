"""Comparing two sets of melodies feature by feature, after Yang & Lerch (2018), pure numpy.

For one feature (a scalar or a vector per melody) and two sets, a *reference* R (e.g. the
true continuations) and a *generated* set G:

- intra-set distances: Euclidean distances between all pairs of melodies within one set;
- inter-set distances: distances between every melody of G and every melody of R;
- each distance sample is smoothed into a density with a Gaussian kernel density estimate
  (bandwidth by Scott's rule; a sample larger than :data:`MAX_KDE_SAMPLES` is represented by
  a fixed, seeded random subset of that size, which moves the overlap by about 0.01);
- the **overlap area** of the densities of intra(R) and inter(G, R) (1: G sits among the
  references the way they sit among themselves; 0: G is elsewhere), and the
  **KL divergence** KL(intra(R) || inter(G, R)) in nats (0 is best).

Implemented here from the paper's description; not derived from the MGEval code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_POINTS = 512
MAX_KDE_SAMPLES = 5000
_CHUNK = 4096
_FLOOR = 1e-12


def _as_rows(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    return x.reshape(len(x), -1)


def intra_set_distances(features: np.ndarray) -> np.ndarray:
    """Distances between all unordered pairs of rows (n (n-1) / 2 values)."""
    x = _as_rows(features)
    i, j = np.triu_indices(len(x), k=1)
    return np.linalg.norm(x[i] - x[j], axis=1)


def inter_set_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between every row of ``a`` and every row of ``b`` (len(a) * len(b) values)."""
    x, y = _as_rows(a), _as_rows(b)
    squared = (x**2).sum(axis=1)[:, None] + (y**2).sum(axis=1)[None, :] - 2 * x @ y.T
    return np.sqrt(np.maximum(squared, 0.0)).reshape(-1)


def bandwidth(samples: np.ndarray) -> float:
    """Scott's rule, with a floor so a set of equal values still has a (narrow) density."""
    samples = np.asarray(samples, dtype=np.float64)
    spread = float(samples.std(ddof=1)) if samples.size > 1 else 0.0
    scale = max(spread, 1e-3 * max(1.0, float(np.abs(samples).max(initial=0.0))))
    return scale * max(samples.size, 1) ** (-1 / 5)


def kde_samples(samples: np.ndarray) -> np.ndarray:
    """The samples a density is estimated from: all, or a seeded subset of MAX_KDE_SAMPLES."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    if samples.size <= MAX_KDE_SAMPLES:
        return samples
    return np.random.default_rng(0).choice(samples, MAX_KDE_SAMPLES, replace=False)


def kde(samples: np.ndarray, grid: np.ndarray, width: float | None = None) -> np.ndarray:
    """Gaussian kernel density of ``samples`` evaluated on ``grid`` (integrates to ~1)."""
    samples = kde_samples(samples)
    h = bandwidth(samples) if width is None else width
    density = np.zeros(grid.size)
    for i in range(0, samples.size, _CHUNK):  # bounded memory for large distance samples
        z = (grid[:, None] - samples[None, i : i + _CHUNK]) / h
        density += np.exp(-0.5 * z**2).sum(axis=1)
    return density / (samples.size * h * np.sqrt(2 * np.pi))


def density_grid(a: np.ndarray, b: np.ndarray, points: int = GRID_POINTS) -> np.ndarray:
    """A grid covering both samples and four bandwidths beyond them."""
    pad = 4 * max(bandwidth(a), bandwidth(b))
    low = min(float(np.min(a)), float(np.min(b))) - pad
    high = max(float(np.max(a)), float(np.max(b))) + pad
    return np.linspace(low, high, points)


def _integral(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoidal rule (numpy's own is named differently across the versions we support)."""
    return float(((y[1:] + y[:-1]) * np.diff(x)).sum() / 2)


def overlap_and_kl(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Overlap area (0..1) of the two samples' densities, and KL(p_a || p_b) in nats."""
    a, b = kde_samples(a), kde_samples(b)
    grid = density_grid(a, b)
    p, q = kde(a, grid), kde(b, grid)
    overlap = _integral(np.minimum(p, q), grid)
    p, q = p / _integral(p, grid), q / _integral(q, grid)
    integrand = p * (np.log(np.maximum(p, _FLOOR)) - np.log(np.maximum(q, _FLOOR)))
    return overlap, max(_integral(integrand, grid), 0.0)


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area under the minimum of the two samples' densities (0..1)."""
    return overlap_and_kl(a, b)[0]


def kl_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """KL(p_a || p_b) in nats between the two samples' densities."""
    return overlap_and_kl(a, b)[1]


@dataclass
class SetComparison:
    """One feature, generated set against reference set."""

    intra_reference: np.ndarray
    intra_generated: np.ndarray
    inter: np.ndarray
    overlap: float
    kl: float

    def summary(self) -> dict[str, float]:
        return {
            "overlap": self.overlap,
            "kl": self.kl,
            "intra_reference_mean": float(self.intra_reference.mean()),
            "intra_generated_mean": float(self.intra_generated.mean()),
            "inter_mean": float(self.inter.mean()),
        }


def compare_sets(generated: np.ndarray, reference: np.ndarray) -> SetComparison:
    """Intra/inter distance distributions of one feature; each set needs at least 2 rows
    (rows with NaN, i.e. melodies where the feature is undefined, are dropped)."""
    g, r = _as_rows(generated), _as_rows(reference)
    g, r = g[~np.isnan(g).any(axis=1)], r[~np.isnan(r).any(axis=1)]
    if len(g) < 2 or len(r) < 2:
        raise ValueError("each set needs at least two melodies with the feature defined")
    intra_r, intra_g, inter = intra_set_distances(r), intra_set_distances(g), inter_set_distances(g, r)
    return SetComparison(intra_r, intra_g, inter, *overlap_and_kl(intra_r, inter))
