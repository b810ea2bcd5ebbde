"""Would trading on the forecasts have paid, after costs, beside simply holding the asset over the same bars?

A sign strategy on the one-step forecasts: at each origin, long when the forecast is above the last price, short
(or flat, ``short=False``) when below, for the next bar. Costs are charged on every change of position, in basis
points of the capital traded. Figures are annualised with the data's bars a year (252 for business days, 365 for
7-day crypto, the observed count for intraday bars: pricernn.data.calendar).
"""

from __future__ import annotations

import numpy as np

from pricernn.evaluation.significance import mean_return_test


def strategy_returns(
    anchor: np.ndarray, predicted: np.ndarray, actual: np.ndarray, short: bool = True, cost_bps: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar simple returns of the sign strategy after costs, and its positions (+1, 0, -1).

    Position t = sign(predicted_t - anchor_t) (negative positions become 0 without ``short``), held from the
    origin price ``anchor_t`` to ``actual_t``; the cost of moving from position t-1 to t (starting flat) is
    |Δposition| × cost_bps / 10,000. A forecast equal to the last price means no position."""
    position = np.sign(np.asarray(predicted, dtype=float) - anchor)
    if not short:
        position = np.maximum(position, 0.0)
    move = np.asarray(actual, dtype=float) / anchor - 1.0
    turnover = np.abs(np.diff(np.concatenate([[0.0], position])))
    return position * move - turnover * cost_bps / 1e4, position


def performance(returns: np.ndarray, periods_per_year: float) -> dict[str, float]:
    """Annualised figures of per-bar simple returns: ``annual_return`` (compound: the growth of 1 over the
    period, per year), ``annual_vol`` (std × √bars a year), ``sharpe`` (mean / std × √bars a year, no risk-free
    rate), ``sharpe_pvalue`` (is the mean return zero? :func:`mean_return_test`) and ``max_drawdown`` (the
    deepest fall of the equity curve from its running peak, as a fraction)."""
    r = np.asarray(returns, dtype=float)
    equity = np.cumprod(1.0 + r)
    years = len(r) / periods_per_year
    growth = float(equity[-1]) if len(r) else 1.0
    std = float(r.std(ddof=1)) if len(r) > 1 else float("nan")
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))
    return {
        "annual_return": growth ** (1 / years) - 1 if years > 0 and growth > 0 else float("nan"),
        "annual_vol": std * np.sqrt(periods_per_year),
        "sharpe": float(r.mean() / std * np.sqrt(periods_per_year)) if std and std > 0 else float("nan"),
        "sharpe_pvalue": mean_return_test(r)[1],
        "max_drawdown": float(np.max(1.0 - np.concatenate([[1.0], equity]) / peak)),
    }


def trading_check(
    anchor: np.ndarray,
    predicted: np.ndarray,
    actual: np.ndarray,
    periods_per_year: float,
    short: bool = True,
    cost_bps: float = 5.0,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Flat metrics ``trade/…`` of the sign strategy and ``buyhold/…`` of holding the asset over the same bars,
    plus both equity curves (growth of 1). ``trade/turnover`` is the capital traded per year (2 = in and out
    once a year), ``trade/hit_rate`` the share of bars in the market that made money, ``trade/exposure`` the
    share of bars in the market."""
    returns, position = strategy_returns(anchor, predicted, actual, short, cost_bps)
    hold = np.asarray(actual, dtype=float) / anchor - 1.0
    invested = position != 0
    metrics = {f"trade/{k}": v for k, v in performance(returns, periods_per_year).items()}
    traded = np.abs(np.diff(np.concatenate([[0.0], position])))
    metrics["trade/turnover"] = float(traded.sum() / len(returns) * periods_per_year)
    metrics["trade/hit_rate"] = float(np.mean(returns[invested] > 0)) if invested.any() else float("nan")
    metrics["trade/exposure"] = float(invested.mean())
    metrics.update({f"buyhold/{k}": v for k, v in performance(hold, periods_per_year).items()})
    return metrics, np.cumprod(1.0 + returns), np.cumprod(1.0 + hold)
