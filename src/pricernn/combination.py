"""Per horizon, the best forecast the validation period supports: which strategy's, and how far from the last price.

A model's multi-step forecasts can be worse than simply repeating the last price: recursive forecasts compound
their errors, and where the data hold no signal any predicted move is noise. Fitted on the validation period
(never on test data), per horizon h:

- with ``model.strategy=auto``, the strategy (the recursive one-step network, or the direct network with an
  output per horizon) whose validation RMSE is lower;
- a weight λ_h in [0, 1] toward the last price: forecast = last + λ_h (model - last). λ_h is the least-squares
  slope of the realised on the predicted relative moves (through the origin), kept only where it is significant:
  its one-sided p-value (Newey-West t-statistic, over the h-1 bars neighbouring origins share) must pass Holm's
  (1979, "A simple sequentially rejective multiple test procedure", Scand. J. Statistics 6(2)) step-down 5 % level
  over the H horizons, else λ_h = 0. On a random walk the validation period's chance correlations would otherwise
  keep weights near 1 about half the time; now they fall to 0 and the forecast is the last price. A λ above 1 is
  cut to 1: forecasts are never stretched beyond what the model says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pricernn.evaluation.significance import SIGNIFICANCE, hac_lags, newey_west_variance


@dataclass(frozen=True)
class Combination:
    """How the model's forecasts are combined, per horizon 1..H; stored in checkpoints as plain data. Beyond H
    (a longer forecast than was validated) the last horizon's choice and weight apply."""

    choice: tuple[str, ...]  # per horizon: "recursive" or "direct"
    shrink: tuple[float, ...]  # per horizon: λ in [0, 1]; all 1.0 with evaluation.shrink=false

    def apply(self, paths: dict[str, np.ndarray], last: np.ndarray) -> np.ndarray:
        """The combined price paths (M, steps) from each strategy's paths (M, steps) and the last prices (M,)."""
        steps = next(iter(paths.values())).shape[1]
        index = np.minimum(np.arange(steps), len(self.shrink) - 1)
        chosen = np.column_stack([paths[self.choice[i]][:, k] for k, i in enumerate(index)])
        return last[:, None] + np.asarray(self.shrink)[index][None, :] * (chosen - last[:, None])

    def strategy(self, k: int) -> str:
        """The strategy of horizon k+1 (the last validated one beyond them)."""
        return self.choice[min(k, len(self.choice) - 1)]

    def weight(self, k: int) -> float:
        """The weight toward the model of horizon k+1 (the last validated one beyond them)."""
        return self.shrink[min(k, len(self.shrink) - 1)]

    def unshrunk(self) -> Combination:
        """The same choice of strategy without any pull toward the last price: the model's own calls."""
        return Combination(self.choice, (1.0,) * len(self.shrink))

    def to_dict(self) -> dict:
        return {"choice": list(self.choice), "shrink": [float(s) for s in self.shrink]}

    @classmethod
    def from_dict(cls, state: dict) -> Combination:
        return cls(tuple(state["choice"]), tuple(float(s) for s in state["shrink"]))


def fit_combination(
    paths: dict[str, np.ndarray],
    actual: np.ndarray,
    last: np.ndarray,
    shrink: bool = True,
    dates: np.ndarray | None = None,
) -> Combination:
    """Fit the per-horizon choice (lowest RMSE among ``paths``, each (M, H) prices from consecutive origins) and,
    with ``shrink``, the weights toward the last price, on validation origins: ``actual`` (M, H) realised
    prices, ``last`` (M,) the origin prices, ``dates`` (M,) their dates (several assets of a panel share one)."""
    steps = actual.shape[1]
    # on a panel (several origins a date) errors relative to the last price, so that a $500 stock does not choose
    # for a $5 one; on one series, errors in price units
    scale = last if dates is not None and len(np.unique(dates)) < len(dates) else 1.0
    choice = tuple(
        min(paths, key=lambda name, k=k: float(np.mean(((paths[name][:, k] - actual[:, k]) / scale) ** 2)))
        for k in range(steps)
    )
    if not shrink:
        return Combination(choice, (1.0,) * steps)
    chosen = Combination(choice, (1.0,) * steps).apply(paths, last)
    predicted, realised = chosen / last[:, None] - 1.0, actual / last[:, None] - 1.0
    dates = np.arange(len(last)) if dates is None else np.asarray(dates)
    fits = [_slope(predicted[:, k], realised[:, k], k + 1, dates) for k in range(steps)]
    kept = _holm([pvalue for _, pvalue in fits])
    weights = (min(slope, 1.0) if keep else 0.0 for (slope, _), keep in zip(fits, kept, strict=True))
    return Combination(choice, tuple(float(w) for w in weights))


def _slope(predicted: np.ndarray, realised: np.ndarray, horizon: int, dates: np.ndarray) -> tuple[float, float]:
    """λ = Σ m a / Σ m² and the one-sided p-value of λ > 0; (0, 1) without moves. The variance sums the scores
    of each date first, then takes Newey-West's over the dates (Driscoll & Kraay 1998, "Consistent covariance
    matrix estimation with spatially dependent panel data", REStat 80(4)): assets of a panel move together on a
    day; for one series every date is its own and this is plain Newey-West."""
    sxx = float(predicted @ predicted)
    if sxx <= 0:
        return 0.0, 1.0
    slope = float(predicted @ realised) / sxx
    _, day = np.unique(dates, return_inverse=True)
    scores = np.bincount(day, weights=predicted * (realised - slope * predicted))  # one sum per date, in order
    lags = horizon - 1 + hac_lags(len(scores))
    variance = len(scores) * newey_west_variance(scores, lags) / sxx**2
    if variance <= 0:
        return slope, 1.0
    return slope, float(stats.norm.sf(slope / np.sqrt(variance)))


def _holm(pvalues: list[float]) -> list[bool]:
    """Holm's step-down procedure at :data:`SIGNIFICANCE`: the i-th smallest p-value (from 0) must be at most
    α / (m - i), and the first that is not stops the rest."""
    kept = [False] * len(pvalues)
    for i, k in enumerate(np.argsort(pvalues, kind="stable")):
        if pvalues[k] > SIGNIFICANCE / (len(pvalues) - i):
            break
        kept[k] = True
    return kept
