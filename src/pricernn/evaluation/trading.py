"""Would trading on the forecasts have paid, after costs, beside simply holding the asset over the same bars?

A sign strategy on the one-step forecasts: at each origin, long when the forecast is above the last price, short
(or flat, ``short=False``) when below, for the next bar. Costs are charged on every change of position, in basis
points of the capital traded. Figures are annualised with the data's bars a year (252 for business days, 365 for
7-day crypto, the observed count for intraday bars: pricernn.data.frequency).
"""

from __future__ import annotations

import numpy as np

from pricernn.evaluation.significance import calls, mean_return_test

# Fewer bars than this make annualised figures extrapolations of noise (2 bars: "-98 % a year"): reported as n/a
MIN_BARS = 20


def strategy_returns(
    anchor: np.ndarray, predicted: np.ndarray, actual: np.ndarray, short: bool = True, cost_bps: float = 5.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar simple returns of the sign strategy after costs, its positions (+1, 0, -1) and its trades.

    Position t = the direction forecast t calls (negative positions become 0 without ``short``; a forecast of no
    move means no position), held from the origin price ``anchor_t`` to ``actual_t``; moving from position t-1 to
    t (starting flat) trades |Δposition| and costs that × cost_bps / 10,000."""
    position = calls(np.asarray(predicted, dtype=float) - anchor)
    if not short:
        position = np.maximum(position, 0.0)
    move = np.asarray(actual, dtype=float) / anchor - 1.0
    traded = np.abs(np.diff(np.concatenate([[0.0], position])))
    return position * move - traded * cost_bps / 1e4, position, traded


def performance(returns: np.ndarray, periods_per_year: float) -> dict[str, float]:
    """Annualised figures of per-bar simple returns: ``annual_return`` (compound: the growth of 1 over the
    period, per year), ``annual_vol`` (std × √bars a year), ``sharpe`` (mean / std × √bars a year, no risk-free
    rate), ``sharpe_pvalue`` (is the mean return zero? :func:`mean_return_test`) and ``max_drawdown`` (the
    deepest fall of the equity curve from its running peak, as a fraction)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < MIN_BARS:
        return dict.fromkeys(("annual_return", "annual_vol", "sharpe", "sharpe_pvalue", "max_drawdown"), float("nan"))
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
    share of bars in the market, ``trade/vs_hold_pvalue`` whether its mean return per bar differs from holding's
    (Newey-West: in a rising market a long-biased strategy without skill still earns, like holding does).
    Prices must be positive (simple returns of a spread that crosses zero mean nothing): the caller checks."""
    returns, position, traded = strategy_returns(anchor, predicted, actual, short, cost_bps)
    hold = np.asarray(actual, dtype=float) / anchor - 1.0
    invested = position != 0
    metrics = {f"trade/{k}": v for k, v in performance(returns, periods_per_year).items()}
    metrics["trade/turnover"] = float(traded.sum() / len(returns) * periods_per_year)
    metrics["trade/hit_rate"] = float(np.mean(returns[invested] > 0)) if invested.any() else float("nan")
    metrics["trade/exposure"] = float(invested.mean())
    metrics["trade/vs_hold_pvalue"] = mean_return_test(returns - hold)[1] if len(returns) >= MIN_BARS else float("nan")
    metrics.update({f"buyhold/{k}": v for k, v in performance(hold, periods_per_year).items()})
    return metrics, np.cumprod(1.0 + returns), np.cumprod(1.0 + hold)
