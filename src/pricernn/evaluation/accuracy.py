"""Point errors in price units beside every baseline on the same targets, and for the model the tests that say
whether a difference is real (pricernn.evaluation.significance)."""

from __future__ import annotations

import numpy as np

from pricernn.evaluation.significance import calls, diebold_mariano, direction_test, information_coefficient


def scores(actual: np.ndarray, predicted: np.ndarray, origin: np.ndarray) -> dict:
    """MSE, RMSE, MAE, MAPE (%) and directional accuracy of ``predicted`` against ``actual``.

    Directional accuracy is the share of direction calls (a forecast moving away from the origin price) that
    the actual move follows; a forecaster that calls none (naive predicts no move) has none: None (null in JSON,
    "–" in tables). Its reference is a coin's 0.5 and drift's "always bet on the trend", not naive.
    """
    error = predicted - actual
    mse = float(np.mean(error**2))
    called = calls(predicted - origin)
    made = called != 0
    hits = called[made] == np.sign(actual - origin)[made]
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(100.0 * np.mean(np.abs(error) / np.abs(actual))),
        "directional_accuracy": float(np.mean(hits)) if made.any() else None,
    }


def log_moves(prices: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """log(price / origin), or NaN where a price is not positive (a spread, a negative futures price)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((prices > 0) & (origin > 0), np.log(prices / origin), np.nan)


def score_forecasts(
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    origin: np.ndarray,
    mase_scale: float,
    model: str = "test",
    per_horizon: bool = True,
    calls_from: np.ndarray | None = None,
) -> dict:
    """Flat metrics for the model (key ``model``) and each baseline in ``forecasts`` on the same targets.

    ``actual`` and every forecast are (M, N): M consecutive origins, N horizons. Keys are ``{name}/h{h}/{metric}``
    with ``per_horizon``, else ``{name}/{metric}`` for the single column (the next bar). Beside the scores:
    ``skill`` = 1 - RMSE / naive RMSE and ``mase`` = MAE / ``mase_scale`` (the in-sample one-step naive MAE);
    for the model, Diebold-Mariano against naive (``dm_stat``, ``dm_pvalue``) and against the AR baseline when
    there is one (``dm_ar_stat``, ``dm_ar_pvalue``, ``rmse_ratio_ar``), the information coefficient (``ic``,
    ``ic_spearman``, ``ic_pvalue``, ``move_ratio``) and the direction test: Pesaran-Timmermann's for the next bar
    (``pt_stat``, ``pt_pvalue``), its overlap-robust counterpart per horizon (``dir_stat``, ``dir_pvalue``).
    ``calls_from`` (M, N): the model's forecasts before they were pulled toward the last price, which the
    direction and information figures read (its calls; shrinking changes how far a forecast moves, not where).
    """
    out: dict = {}
    next_bar = log_moves(actual[:, 0], origin)  # each origin's one-bar move: the overlap-free test variable
    for h in range(actual.shape[1]):
        prefix, horizon = (f"h{h + 1}/", h + 1) if per_horizon else ("", 1)
        naive_rmse = None
        for name in ("naive", *[n for n in forecasts if n != "naive"]):
            m = scores(actual[:, h], forecasts[name][:, h], origin)
            naive_rmse = m["rmse"] if name == "naive" else naive_rmse
            m["skill"] = 1.0 - m["rmse"] / naive_rmse if naive_rmse > 0 else float("nan")
            m["mase"] = m["mae"] / mase_scale if mase_scale > 0 else float("nan")
            if name == model:
                called = forecasts[name][:, h] if calls_from is None else calls_from[:, h]
                m["directional_accuracy"] = scores(actual[:, h], called, origin)["directional_accuracy"]
                m.update(_model_tests(actual[:, h], forecasts, name, called, h, origin, next_bar, horizon, per_horizon))
            out.update({f"{name}/{prefix}{k}": v for k, v in m.items()})
    return out


def _model_tests(
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    name: str,
    called: np.ndarray,
    h: int,
    origin: np.ndarray,
    next_bar: np.ndarray,
    horizon: int,
    per_horizon: bool,
) -> dict:
    error = forecasts[name][:, h] - actual
    m: dict = {}
    m["dm_stat"], m["dm_pvalue"] = diebold_mariano(error, forecasts["naive"][:, h] - actual, horizon=horizon)
    if "ar" in forecasts:
        ar_error = forecasts["ar"][:, h] - actual
        m["dm_ar_stat"], m["dm_ar_pvalue"] = diebold_mariano(error, ar_error, horizon=horizon)
        m["rmse_ratio_ar"] = float(np.sqrt(np.mean(error**2) / np.mean(ar_error**2)))
    moves = log_moves(called, origin), log_moves(actual, origin)
    if np.isfinite(moves[0]).all() and np.isfinite(moves[1]).all() and np.isfinite(next_bar).all():
        m.update(information_coefficient(*moves, next_bar, horizon))
        test = "dir" if per_horizon else "pt"
        statistic, pvalue = direction_test(*moves, next_bar, horizon)
        # one direction called throughout: nothing to test, so no p-value (null in metrics.json)
        m[f"{test}_stat"], m[f"{test}_pvalue"] = statistic, pvalue if np.isfinite(statistic) else float("nan")
    return m
