"""Honest scores in price units: the model beside naive, drift and moving-average baselines on the same targets,
per horizon, with significance tests and a lag-copy diagnostic. Pure numpy/scipy: no model, no files."""

from __future__ import annotations

import numpy as np
from scipy import stats

BASELINES = ("naive", "drift", "ma")
SIGNIFICANCE = 0.05


def scores(actual: np.ndarray, predicted: np.ndarray, origin: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, MAE, MAPE (%) and directional accuracy of ``predicted`` against ``actual``.

    Directional accuracy is the share of forecasts whose move from the origin price has the sign of the actual
    move. The naive forecast predicts no move, so it scores the share of days with no move (about 0): the
    reference for a model's directional accuracy is a coin's 0.5, not the naive row.
    """
    error = predicted - actual
    mse = float(np.mean(error**2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(100.0 * np.mean(np.abs(error) / np.abs(actual))),
        "directional_accuracy": float(np.mean(np.sign(predicted - origin) == np.sign(actual - origin))),
    }


def diebold_mariano(error_model: np.ndarray, error_reference: np.ndarray, horizon: int = 1) -> tuple[float, float]:
    """Diebold-Mariano test of equal squared-error loss, with the Harvey-Leybourne-Newbold correction.

    ``d_t = e_model² - e_reference²``; the long-run variance sums the autocovariances of ``d`` up to lag h-1
    (h-step errors overlap), the statistic is scaled by ``sqrt((T + 1 - 2h + h(h-1)/T) / T)`` and compared with
    Student's t with T-1 degrees of freedom. Returns (statistic, two-sided p-value); a negative statistic
    means the model's loss is lower. Identical losses give (nan, 1.0): there is nothing to test.
    """
    d = np.asarray(error_model, dtype=float) ** 2 - np.asarray(error_reference, dtype=float) ** 2
    n, h = len(d), int(horizon)
    centred = d - d.mean()
    gammas = [centred[k:] @ centred[: n - k] / n for k in range(min(h, n))]
    variance = gammas[0] + 2 * sum(gammas[1:])
    if variance <= 0:  # the Bartlett-free sum can go negative for long horizons: keep the lag-0 term only
        variance = gammas[0]
    if variance <= 0 or n < 2:
        return float("nan"), 1.0
    dm = d.mean() / np.sqrt(variance / n)
    statistic = dm * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return float(statistic), float(2 * stats.t.sf(abs(statistic), df=n - 1))


def direction_pvalue(actual: np.ndarray, predicted: np.ndarray, origin: np.ndarray) -> float:
    """Two-sided binomial test that the share of correctly predicted directions differs from a coin's 50%."""
    hits = int(np.sum(np.sign(predicted - origin) == np.sign(actual - origin)))
    return float(stats.binomtest(hits, len(actual), 0.5).pvalue)


def copy_lag(actual: np.ndarray, predicted: np.ndarray, max_lag: int = 5) -> tuple[int, float]:
    """The lag k at which the day-to-day moves of the one-step predictions correlate best with the actual moves
    k days earlier, and that correlation. A forecaster that anticipates moves peaks at 0; one that repeats
    yesterday's price peaks at 1 (its move today is the actual move of yesterday). Prices themselves would
    correlate near 1 at every lag, which is why moves are compared."""
    moves_pred, moves_act = np.diff(predicted), np.diff(actual)
    corrs = []
    for k in range(max_lag + 1):
        a, b = moves_pred[k:], moves_act[: len(moves_act) - k]
        ok = len(a) > 2 and a.std() > 0 and b.std() > 0
        corrs.append(float(np.corrcoef(a, b)[0, 1]) if ok else float("nan"))
    if np.all(np.isnan(corrs)):
        return -1, float("nan")
    best = int(np.nanargmax(corrs))
    return best, corrs[best]


def baseline_forecasts(levels: np.ndarray, origin_rows: np.ndarray, steps: int, ma_window: int) -> dict:
    """Forecasts (M, steps) of the baselines from each origin row, using prices up to that row only.

    naive: the origin price for every horizon. drift: the random walk with drift, extending the average daily
    change from the first row to the origin (Hyndman's ``rwf(drift=TRUE)``). ma: the mean of the last
    ``ma_window`` prices, flat.
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


def score_forecasts(
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    origin: np.ndarray,
    mase_scale: float,
    model: str = "test",
    per_horizon: bool = True,
) -> dict[str, float]:
    """Flat metrics for the model (key ``model``) and each baseline in ``forecasts`` on the same targets.

    ``actual`` and every forecast are (M, N): M origins, N horizons. Keys are ``{name}/h{h}/{metric}`` with
    ``per_horizon``, else ``{name}/{metric}`` for the single column. Beside the scores: ``skill`` =
    1 - RMSE / naive RMSE, ``mase`` = MAE / ``mase_scale`` (the in-sample one-step naive MAE), and for the model
    the Diebold-Mariano test against naive (``dm_stat``, ``dm_pvalue``) and the binomial test of its direction
    (``direction_pvalue``).
    """
    out: dict[str, float] = {}
    for h in range(actual.shape[1]):
        prefix = f"h{h + 1}/" if per_horizon else ""
        naive_rmse = None
        for name in ("naive", *[n for n in forecasts if n != "naive"]):
            m = scores(actual[:, h], forecasts[name][:, h], origin)
            naive_rmse = m["rmse"] if name == "naive" else naive_rmse
            m["skill"] = 1.0 - m["rmse"] / naive_rmse if naive_rmse > 0 else float("nan")
            m["mase"] = m["mae"] / mase_scale if mase_scale > 0 else float("nan")
            if name == model:
                errors = forecasts[name][:, h] - actual[:, h], forecasts["naive"][:, h] - actual[:, h]
                m["dm_stat"], m["dm_pvalue"] = diebold_mariano(*errors, horizon=h + 1)
                m["direction_pvalue"] = direction_pvalue(actual[:, h], forecasts[name][:, h], origin)
            out.update({f"{name}/{prefix}{k}": v for k, v in m.items()})
    return out


def verdict(metrics: dict[str, float], model: str = "test", prefix: str = "") -> str:
    """One plain sentence: does the model beat naive, and is the difference significant?"""
    ratio = metrics[f"{model}/{prefix}rmse"] / metrics[f"naive/{prefix}rmse"]
    stat, p = metrics.get(f"{model}/{prefix}dm_stat", float("nan")), metrics.get(f"{model}/{prefix}dm_pvalue", 1.0)
    if np.isnan(stat):
        return f"RMSE ratio to naive {ratio:.4f}; the errors equal naive's, so there is nothing to test"
    side = "lower" if stat < 0 else "higher"
    if p < SIGNIFICANCE:
        word = "beats" if stat < 0 else "is worse than"
        return f"the model {word} naive significantly (RMSE ratio {ratio:.4f}, DM p = {p:.3g})"
    return f"no significant difference from naive (RMSE ratio {ratio:.4f}, {side} loss, DM p = {p:.3g})"
