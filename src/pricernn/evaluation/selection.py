"""Which of several models can be told apart from the best: the Model Confidence Set.

Hansen, Lunde & Nason (2011, "The Model Confidence Set", Econometrica 79(2)), with their T_max statistic: from the
set M of models, each model's loss relative to the mean loss of M, d_i = mean_t (L_it - mean_{j in M} L_jt), is
standardised by its bootstrap standard error; the test of equal predictive ability is the largest of them, its
null distribution the bootstrap's (the same resamples at every step). While the test rejects at level α, the
model with the largest statistic is removed; what is left is the set that contains the best model with
probability at least 1 - α. A model's MCS p-value is the largest p-value of the tests up to its removal (the last
model left has 1), so the set at any level is the models whose p-value is at least that level.

The bootstrap resamples dates in blocks (a moving block bootstrap, Künsch 1989, "The jackknife and the bootstrap
for general stationary observations", Annals of Statistics 17(3)), so that losses that depend on each other from
day to day (volatility clusters; h-step forecasts that share h - 1 bars) keep that dependence: blocks of
max(h, ceil(n^(1/3))) dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConfidenceSet:
    """The models kept at ``level`` (column indices of the losses), every model's MCS p-value, and the order in
    which the others were removed (worst first)."""

    level: float
    kept: tuple[int, ...]
    pvalues: tuple[float, ...]
    removed: tuple[int, ...]


def block_length(n: int, horizon: int = 1) -> int:
    """Dates per bootstrap block: at least the forecast horizon (h-step errors share h - 1 bars), and n^(1/3),
    the rate that keeps a block bootstrap of a mean consistent (Hall, Horowitz & Jing 1995, Biometrika 82(3))."""
    return max(int(horizon), int(np.ceil(n ** (1 / 3))))


def bootstrap_means(losses: np.ndarray, resamples: int, block: int, seed: int = 0) -> np.ndarray:
    """Means of ``losses`` (n, m) over ``resamples`` moving-block resamples of the dates, each n dates long (the
    last block cut short): (resamples, m). Sums of blocks come from cumulative sums, not by gathering dates."""
    n = len(losses)
    block = min(block, n)
    rng = np.random.default_rng(seed)
    count = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, count))
    cumulative = np.vstack([np.zeros(losses.shape[1]), np.cumsum(losses, axis=0)])
    lengths = np.full(count, block)
    lengths[-1] = n - block * (count - 1)
    sums = (cumulative[starts + lengths] - cumulative[starts]).sum(axis=1)
    return sums / n


def model_confidence_set(
    losses: np.ndarray, level: float = 0.1, resamples: int = 1000, horizon: int = 1, seed: int = 0
) -> ConfidenceSet:
    """The Model Confidence Set at ``level`` of the models whose losses are the columns of ``losses`` (n dates,
    m models; lower is better), with the T_max statistic and a moving block bootstrap (module docstring). The
    elimination runs on until one model is left, so that every model has its MCS p-value."""
    losses = np.asarray(losses, dtype=float)
    n, m = losses.shape
    means = losses.mean(axis=0)
    boot = bootstrap_means(losses, resamples, block_length(n, horizon), seed)
    alive, removed = list(range(m)), []
    pvalues = np.ones(m)
    running = 0.0
    while len(alive) > 1:
        d = means[alive] - means[alive].mean()
        spread = (boot[:, alive] - boot[:, alive].mean(axis=1, keepdims=True)) - d
        scale = np.sqrt((spread**2).mean(axis=0))
        if not (scale > 0).all():  # identical losses: nothing tells these apart
            break
        t = d / scale
        p = float(((spread / scale).max(axis=1) >= t.max()).mean())
        running = max(running, p)
        worst = alive[int(np.argmax(t))]
        pvalues[worst] = running
        alive.remove(worst)
        removed.append(worst)
    kept = tuple(k for k in range(m) if pvalues[k] >= level)
    return ConfidenceSet(level, kept, tuple(float(p) for p in pvalues), tuple(removed))
