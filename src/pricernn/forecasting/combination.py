"""Per horizon, the best forecast the validation period supports: which strategy's, around which drift, and how
far from the last price.

A model's multi-step forecasts can be worse than simply repeating the last price: recursive forecasts compound
their errors, a network carries the mean move of the period it trained on (and recursion amplifies it), and where
the data hold no signal any predicted move is noise. So a forecast at horizon h is

    last · (1 + h d + λ_h (m_h − c_h))

with m_h the chosen network's predicted relative move, and, fitted without test data:

- the strategy (with ``model.strategy=auto``): the recursive one-step network or the direct network with an output
  per horizon, whichever has the lower validation RMSE;
- d, an explicit drift per bar: 0 by default, or with ``evaluation.drift=true`` (:func:`fit_drift`) the training
  period's mean one-step move where a HAC t-test finds it and the validation period, which its estimate never
  saw, confirms it; else 0, as almost always for prices (a few hundred days cannot tell a drift of a few basis
  points a day from noise). The drift at horizon h is h d, never more: the network's own drift is not compounded
  by its recursion. Off by default because the risk is lopsided: a drift that persists gains a few per cent of
  RMSE at 10 bars, one that reverses after validation loses far more (a 12 bp a day trend that turned: 1.24x
  naive's RMSE at h = 10), and no test on the past can tell the two apart;
- c_h, the network's mean predicted move at horizon h over the validation origins: its drift, removed, so λ_h
  weighs only its calls, the moves it predicts above or below its average;
- λ_h in [0, 1], the least-squares slope of the realised moves on those centred calls with an intercept (both
  centred on the validation period), kept only where it is significant: its one-sided p-value (Newey-West over the
  h-1 bars neighbouring origins share, Driscoll-Kraay across the assets of a panel) must pass Holm's (1979, "A
  simple sequentially rejective multiple test procedure", Scand. J. Statistics 6(2)) step-down 5 % level over the
  H horizons, else λ_h = 0 and the forecast is the last price moved by the drift. A λ above 1 is cut to 1.

What the guard protects against: chance correlations of a validation period (on a random walk it keeps a weight
in a few per cent of them), a network's drift, and a trend the validation period happened to share with the
network's calls (the intercept takes the period's mean move, so only calls that lead the moves around it count).
What it does not: a change of the relation itself after validation (a signal that stops or turns), a network
whose drift differs between validation and test, or, with ``evaluation.drift=true``, a drift strong enough to
pass both tests that then reverses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pricernn.evaluation.significance import SIGNIFICANCE, hac_lags, newey_west_variance


@dataclass(frozen=True)
class Combination:
    """How the model's forecasts are combined, per horizon 1..H; stored in checkpoints as plain data. Beyond H
    (a longer forecast than was validated) the last horizon's choice and weight apply, its centre grows in
    proportion to the horizon (the network's drift per bar at H) and the drift is h d as everywhere."""

    choice: tuple[str, ...]  # per horizon: "recursive" or "direct"
    shrink: tuple[float, ...]  # per horizon: λ in [0, 1]; all 1.0 with evaluation.shrink=false
    center: tuple[float, ...] = ()  # per horizon: the network's mean predicted relative move, removed; () none
    drift: float = 0.0  # the explicit drift, a relative move per bar

    def moves(self, paths: dict[str, np.ndarray], last: np.ndarray) -> np.ndarray:
        """The chosen strategy's predicted relative moves (M, steps) from each strategy's paths (M, steps)."""
        steps = next(iter(paths.values())).shape[1]
        index = np.minimum(np.arange(steps), len(self.choice) - 1)
        chosen = np.column_stack([paths[self.choice[i]][:, k] for k, i in enumerate(index)])
        return chosen / last[:, None] - 1.0

    def apply(self, paths: dict[str, np.ndarray], last: np.ndarray) -> np.ndarray:
        """The combined price paths (M, steps) from each strategy's paths (M, steps) and the last prices (M,)."""
        moves = self.moves(paths, last)
        steps = moves.shape[1]
        weights = np.asarray([self.weight(k) for k in range(steps)])
        trend = self.drift * np.arange(1, steps + 1)
        return last[:, None] * (1.0 + trend + weights * (moves - self.centre(steps)))

    def centre(self, steps: int) -> np.ndarray:
        """The network's mean predicted move removed at horizons 1..``steps``: beyond the validated ones, the last
        one's per bar times the horizon."""
        if not self.center:
            return np.zeros(steps)
        known, horizon = np.asarray(self.center), np.arange(1, steps + 1)
        beyond = known[-1] * horizon / len(known)
        return np.where(horizon <= len(known), known[np.minimum(horizon, len(known)) - 1], beyond)

    def strategy(self, k: int) -> str:
        """The strategy of horizon k+1 (the last validated one beyond them)."""
        return self.choice[min(k, len(self.choice) - 1)]

    def weight(self, k: int) -> float:
        """The weight toward the model of horizon k+1 (the last validated one beyond them)."""
        return self.shrink[min(k, len(self.shrink) - 1)]

    def unshrunk(self) -> Combination:
        """The same forecasts without any pull toward the last price: the network's calls around the drift."""
        return Combination(self.choice, (1.0,) * len(self.shrink), self.center, self.drift)

    def to_dict(self) -> dict:
        return {
            "choice": list(self.choice),
            "shrink": [float(s) for s in self.shrink],
            "center": [float(c) for c in self.center],
            "drift": float(self.drift),
        }

    @classmethod
    def from_dict(cls, state: dict) -> Combination:
        """From :meth:`to_dict`; a checkpoint written before centres and drifts has neither (both 0)."""
        center = tuple(float(c) for c in state.get("center") or ())
        return cls(
            tuple(state["choice"]), tuple(float(s) for s in state["shrink"]), center, float(state.get("drift", 0))
        )


def fit_combination(
    paths: dict[str, np.ndarray],
    actual: np.ndarray,
    last: np.ndarray,
    shrink: bool = True,
    dates: np.ndarray | None = None,
    drift: float = 0.0,
) -> Combination:
    """Fit the per-horizon choice (lowest RMSE among ``paths``, each (M, H) prices from consecutive origins) and,
    with ``shrink``, the centres and weights (module docstring) on validation origins: ``actual`` (M, H)
    realised prices, ``last`` (M,) the origin prices, ``dates`` (M,) their dates (several assets of a panel share
    one); ``drift`` per bar (:func:`fit_drift`) is kept. Without ``shrink``: the network's raw forecasts."""
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
    moves = Combination(choice, (1.0,) * steps).moves(paths, last)
    center = moves.mean(axis=0)
    realised = actual / last[:, None] - 1.0
    # both sides centred: the slope of a regression with an intercept, blind to the validation period's trend
    calls, surprises = moves - center, realised - realised.mean(axis=0)
    dates = np.arange(len(last)) if dates is None else np.asarray(dates)
    fits = [_slope(calls[:, k], surprises[:, k], k + 1, dates) for k in range(steps)]
    kept = _holm([pvalue for _, pvalue in fits])
    weights = (min(slope, 1.0) if keep else 0.0 for (slope, _), keep in zip(fits, kept, strict=True))
    return Combination(choice, tuple(float(w) for w in weights), tuple(float(c) for c in center), drift)


def fit_drift(
    train: np.ndarray, train_dates: np.ndarray, validation: np.ndarray, validation_dates: np.ndarray
) -> float:
    """The drift per bar a forecast keeps: the training period's mean one-step relative move ``train`` (dated
    ``train_dates``; a panel's assets are averaged within a date first) where its two-sided t-test rejects 0 at
    :data:`SIGNIFICANCE` and the validation period's moves, which the estimate never saw, confirm it (same sign,
    one-sided test at the same level); else 0. The t-statistics use Newey-West's long-run variance of the daily
    means (Newey & West 1987, Econometrica 55(3)). Two tests on separate periods: a trend that one period alone
    shows (the validation years happened to rise) is not kept."""
    mean, t = _mean_t(train, train_dates)
    if not np.isfinite(t) or 2 * stats.norm.sf(abs(t)) >= SIGNIFICANCE:
        return 0.0
    later, t_later = _mean_t(validation, validation_dates)
    confirmed = np.isfinite(t_later) and np.sign(later) == np.sign(mean) and stats.norm.sf(abs(t_later)) < SIGNIFICANCE
    return float(mean) if confirmed else 0.0


def _mean_t(moves: np.ndarray, dates: np.ndarray) -> tuple[float, float]:
    """The mean of the daily mean moves and its t-statistic (Newey-West); (0, nan) with fewer than 2 days."""
    _, day = np.unique(np.asarray(dates), return_inverse=True)
    daily = np.bincount(day, weights=np.asarray(moves, dtype=float)) / np.bincount(day)
    if len(daily) < 2:
        return 0.0, float("nan")
    variance = newey_west_variance(daily, hac_lags(len(daily))) / len(daily)
    mean = float(daily.mean())
    return mean, (mean / np.sqrt(variance) if variance > 0 else float("nan"))


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
