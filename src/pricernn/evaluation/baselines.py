"""Baselines every model number stands beside, forecast from the same origins with prices up to the origin only.

naive, drift and moving average need no fitting; the AR(p) model of log returns is fitted on the training period
alone, its order chosen there by AIC: the linear benchmark a neural model must beat to earn its complexity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def baseline_forecasts(levels: np.ndarray, origin_rows: np.ndarray, steps: int, ma_window: int) -> dict:
    """Forecasts (M, steps) of the baselines from each origin row, using prices up to that row only.

    naive: the origin price for every horizon. drift: the random walk with drift, extending the average change
    per bar from the first row to the origin (Hyndman & Athanasopoulos, "Forecasting: principles and practice",
    section 5.2; R's ``rwf(drift=TRUE)``). ma: the mean of the last ``ma_window`` prices, flat.
    """
    origin_rows = np.asarray(origin_rows)
    last = levels[origin_rows]
    h = np.arange(1, steps + 1)
    slope = (last - levels[0]) / np.maximum(origin_rows, 1)
    cumulative = np.concatenate([[0.0], np.cumsum(levels)])
    first = np.maximum(origin_rows + 1 - ma_window, 0)
    moving_average = (cumulative[origin_rows + 1] - cumulative[first]) / (origin_rows + 1 - first)
    return {
        "naive": np.repeat(last[:, None], steps, axis=1),
        "drift": last[:, None] + slope[:, None] * h,
        "ma": np.repeat(moving_average[:, None], steps, axis=1),
    }


@dataclass(frozen=True)
class AutoRegression:
    """r_t = c + φ1 r_{t-1} + ... + φp r_{t-p} + e_t on log returns r_t = log(P_t / P_{t-1})."""

    intercept: float
    coefficients: tuple[float, ...]  # φ1 .. φp (empty for p = 0: a constant mean return, drift in log prices)

    @property
    def order(self) -> int:
        return len(self.coefficients)

    @classmethod
    def fit(cls, levels: np.ndarray, max_order: int = 10) -> AutoRegression:
        """Least squares on the returns of ``levels`` (the training period's prices, all > 0), the order
        0..``max_order`` minimising AIC = n log(σ²) + 2 (p + 1) (Akaike 1974, "A new look at the statistical
        model identification", IEEE TAC 19(6)), every order on the same n returns so the AICs compare."""
        returns = np.diff(np.log(levels))
        top = int(min(max_order, max(len(returns) // 10, 0)))
        y = returns[top:]
        lagged = np.column_stack(
            [returns[top - k : len(returns) - k] for k in range(1, top + 1)] or [np.empty((len(y), 0))]
        )
        best: tuple[float, np.ndarray] | None = None
        for p in range(top + 1):
            design = np.column_stack([np.ones(len(y)), lagged[:, :p]])
            beta, *_ = np.linalg.lstsq(design, y, rcond=None)
            sigma2 = float(np.mean((y - design @ beta) ** 2))
            aic = len(y) * np.log(max(sigma2, 1e-300)) + 2 * (p + 1)
            if best is None or aic < best[0]:
                best = (aic, beta)
        beta = best[1]
        return cls(float(beta[0]), tuple(float(b) for b in beta[1:]))

    def forecast(self, levels: np.ndarray, origin_rows: np.ndarray, steps: int) -> np.ndarray:
        """Price paths (M, steps) from each origin: returns forecast recursively, each fed back as the newest lag
        (all origins at once), then compounded from the origin price."""
        origin_rows = np.asarray(origin_rows)
        returns = np.concatenate([[0.0], np.diff(np.log(levels))])  # returns[t]: into row t
        p = self.order
        rows = origin_rows[:, None] - np.arange(p)[None, :]  # lag k-1 of origin o: the return into row o-k+1
        lags = np.where(rows >= 1, returns[np.clip(rows, 0, None)], 0.0)
        phi = np.asarray(self.coefficients)
        path = np.empty((len(origin_rows), steps))
        for step in range(steps):
            predicted = self.intercept + lags @ phi if p else np.full(len(origin_rows), self.intercept)
            path[:, step] = predicted
            if p:
                lags = np.concatenate([predicted[:, None], lags[:, :-1]], axis=1)
        return levels[origin_rows][:, None] * np.exp(np.cumsum(path, axis=1))
