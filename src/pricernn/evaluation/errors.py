"""Point errors in price units beside every baseline on the same targets, the tests that say whether a difference
is real, and the plain-words verdict built only on those tests."""

from __future__ import annotations

import numpy as np

from pricernn.evaluation.significance import (
    SIGNIFICANCE,
    binomial_direction_pvalue,
    diebold_mariano,
    direction_test,
    information_coefficient,
)


def scores(actual: np.ndarray, predicted: np.ndarray, origin: np.ndarray, moves: bool = True) -> dict:
    """MSE, RMSE, MAE, MAPE (%) and directional accuracy of ``predicted`` against ``actual``.

    Directional accuracy is the share of forecasts whose move from the origin price has the sign of the actual
    move; a forecaster that never moves (naive: ``moves=False``) has none, so it is None (null in JSON, "–" in
    tables), and the reference for a model's is a coin's 0.5 and drift's "always bet on the trend".
    """
    error = predicted - actual
    mse = float(np.mean(error**2))
    same_sign = np.sign(predicted - origin) == np.sign(actual - origin)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(100.0 * np.mean(np.abs(error) / np.abs(actual))),
        "directional_accuracy": float(np.mean(same_sign)) if moves else None,
    }


def _log_moves(prices: np.ndarray, origin: np.ndarray) -> np.ndarray:
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
) -> dict:
    """Flat metrics for the model (key ``model``) and each baseline in ``forecasts`` on the same targets.

    ``actual`` and every forecast are (M, N): M consecutive origins, N horizons. Keys are ``{name}/h{h}/{metric}``
    with ``per_horizon``, else ``{name}/{metric}`` for the single column (the next bar). Beside the scores:
    ``skill`` = 1 - RMSE / naive RMSE and ``mase`` = MAE / ``mase_scale`` (the in-sample one-step naive MAE);
    for the model, Diebold-Mariano against naive (``dm_stat``, ``dm_pvalue``) and against the AR baseline when
    there is one (``dm_ar_stat``, ``dm_ar_pvalue``, ``rmse_ratio_ar``), the information coefficient (``ic``,
    ``ic_spearman``, ``ic_pvalue``, ``move_ratio``), Pesaran-Timmermann's direction test (``pt_stat``,
    ``pt_pvalue``) and, for the next bar only, the binomial test of directions against a coin
    (``direction_pvalue``). Every test allows for the overlap of h-step forecasts (pricernn.evaluation.significance).
    """
    out: dict = {}
    next_bar = _log_moves(actual[:, 0], origin)  # each origin's one-bar move: the overlap-free test variable
    for h in range(actual.shape[1]):
        prefix, horizon = (f"h{h + 1}/", h + 1) if per_horizon else ("", 1)
        naive_rmse = None
        for name in ("naive", *[n for n in forecasts if n != "naive"]):
            m = scores(actual[:, h], forecasts[name][:, h], origin, moves=name != "naive")
            naive_rmse = m["rmse"] if name == "naive" else naive_rmse
            m["skill"] = 1.0 - m["rmse"] / naive_rmse if naive_rmse > 0 else float("nan")
            m["mase"] = m["mae"] / mase_scale if mase_scale > 0 else float("nan")
            if name == model:
                m.update(_model_tests(actual[:, h], forecasts, name, h, origin, next_bar, horizon, per_horizon))
            out.update({f"{name}/{prefix}{k}": v for k, v in m.items()})
    return out


def _model_tests(
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    name: str,
    h: int,
    origin: np.ndarray,
    next_bar: np.ndarray,
    horizon: int,
    next_bar_only: bool,
) -> dict:
    predicted = forecasts[name][:, h]
    error = predicted - actual
    m: dict = {}
    m["dm_stat"], m["dm_pvalue"] = diebold_mariano(error, forecasts["naive"][:, h] - actual, horizon=horizon)
    if "ar" in forecasts:
        ar_error = forecasts["ar"][:, h] - actual
        m["dm_ar_stat"], m["dm_ar_pvalue"] = diebold_mariano(error, ar_error, horizon=horizon)
        m["rmse_ratio_ar"] = float(np.sqrt(np.mean(error**2) / np.mean(ar_error**2)))
    moves = _log_moves(predicted, origin), _log_moves(actual, origin)
    if np.isfinite(moves[0]).all() and np.isfinite(moves[1]).all() and np.isfinite(next_bar).all():
        m.update(information_coefficient(*moves, next_bar, horizon))
        m["pt_stat"], m["pt_pvalue"] = direction_test(*moves, next_bar, horizon)
    if not next_bar_only:
        hits = int(np.sum(np.sign(predicted - origin) == np.sign(actual - origin)))
        m["direction_pvalue"] = binomial_direction_pvalue(hits, len(actual))
    return m


def _p(value: float) -> str:
    return "< 1e-6" if value < 1e-6 else f"{value:.3g}"


def verdict(metrics: dict, model: str = "test", prefix: str = "") -> str:
    """One line of evidence and what it supports: the skill and its Diebold-Mariano p-value, the information
    coefficient and its p-value, the direction hit rate and Pesaran-Timmermann's p-value; "beats the last price"
    only where DM says so, "no evidence of skill" only where neither DM nor IC nor PT finds any."""
    found = {k.removeprefix(f"{model}/{prefix}"): v for k, v in metrics.items() if k.startswith(f"{model}/{prefix}")}
    skill, dm_stat, dm_p = found["skill"], found.get("dm_stat", float("nan")), found.get("dm_pvalue", 1.0)
    ic, ic_p, pt_p = found.get("ic", float("nan")), found.get("ic_pvalue", 1.0), found.get("pt_pvalue", 1.0)
    facts = [f"skill {100 * skill:+.2f} %", f"DM p {_p(dm_p)}"]
    if np.isfinite(ic):
        facts.append(f"IC {ic:+.3f} (p {_p(ic_p)})")
    if found.get("directional_accuracy") is not None:
        facts.append(f"direction {100 * found['directional_accuracy']:.1f} %")
    if "pt_pvalue" in found:  # undefined when the model calls one direction only: nothing to test
        facts.append(f"PT p {_p(pt_p)}" if np.isfinite(found["pt_stat"]) else "PT n/a (one direction called)")
    if dm_p < SIGNIFICANCE and dm_stat < 0:
        conclusion = "beats the last price significantly"
    elif dm_p < SIGNIFICANCE:
        conclusion = "significantly WORSE than the last price"
    elif (ic_p < SIGNIFICANCE and ic > 0) or pt_p < SIGNIFICANCE:
        conclusion = "its moves carry information (IC or PT), but its errors are not significantly below naive's"
    else:
        conclusion = "no evidence of skill beyond the last price"
    return f"{conclusion}: {', '.join(facts)}"
